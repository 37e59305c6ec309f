//! The request log: one line per request on the `linkbox::request` target, written when its
//! response is ready — method, path (no query: it may carry user data), status,
//! milliseconds, the tenant label (a partner slug or `leaf:<username>`, never a key or
//! token; an M2M key in any of them is redacted as in the journal) and every `X-Linkbox-Warning` the response carries, joined by `; `. The
//! subscriber (`main.rs`) renders it as text or, with `--log-format json`, as the same
//! fields in JSON; `LINKBOX_LOG=linkbox::request=off` silences it.
//!
//! Lines are `info`, but the health check's are `debug` ([`level`]): a container's or a CI
//! step's probe asks every second or so, and its lines would bury the requests a developer
//! reads the log for. `LINKBOX_LOG=linkbox::request=debug` shows them too.

use std::borrow::Cow;
use std::time::Duration;

use http::Method;
use linkbox_contracts::m2m::WARNING_HEADER;
use tracing::Level;
use warp::reply::Response;

/// The tracing target of request lines.
pub const TARGET: &str = "linkbox::request";

/// The level of `path`'s request line.
pub fn level(path: &str) -> Level {
    if path == HEALTH {
        Level::DEBUG
    } else {
        Level::INFO
    }
}

/// The health check's path.
const HEALTH: &str = "/_sandbox/health";

/// Whether a request line at `level` is written at all: when not, the pipeline keeps
/// nothing for it.
pub fn enabled(level: Level) -> bool {
    if level == Level::DEBUG {
        tracing::enabled!(target: TARGET, Level::DEBUG)
    } else {
        tracing::enabled!(target: TARGET, Level::INFO)
    }
}

/// Logs one request at `level`.
pub fn request(
    level: Level,
    method: &Method,
    path: &str,
    response: &Response,
    elapsed: Duration,
    tenant: Option<&str>,
) {
    let status = response.status().as_u16();
    let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    // A key sent by mistake in the path, as the method or as a Leaf account's name is not
    // written out, as the journal does not show it.
    let method = crate::keys::without_keys(method.as_str());
    let path = &*crate::keys::without_keys(path);
    let tenant = &*tenant.map_or(Cow::Borrowed("-"), crate::keys::without_keys);
    let warnings: Vec<&str> = response
        .headers()
        .get_all(WARNING_HEADER)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    let warnings = (!warnings.is_empty())
        .then(|| crate::keys::without_keys(&warnings.join("; ")).into_owned());
    let warnings = warnings.as_deref();
    // A macro's level is fixed where it is written: one call per level.
    if level == Level::DEBUG {
        tracing::debug!(target: TARGET, %method, path, status, ms, tenant, warnings, "request");
    } else {
        tracing::info!(target: TARGET, %method, path, status, ms, tenant, warnings, "request");
    }
}

/// The text log's event format: tracing's default (`Full`) for every line, and for request
/// lines the same bytes written directly. A request line went through tracing's general
/// formatter at about 10,000 instructions (its field visitor, padding, the styles it asks
/// for even with colour off, the date formatted field by field), a fifth of what a whole
/// create-link costs linkbox; written here it is the timestamp (its second cached per
/// thread), the level, the target and each field as tracing writes it. With colour, inside
/// a span, or for any other target, the default formatter writes the line.
#[derive(Debug, Default)]
pub struct TextLines {
    full: tracing_subscriber::fmt::format::Format,
}

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for TextLines
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        if meta.target() != TARGET || writer.has_ansi_escapes() || ctx.event_scope().is_some() {
            return self.full.format_event(ctx, writer, event);
        }
        stamp::write(&mut writer, std::time::SystemTime::now())?;
        let level = match *meta.level() {
            Level::TRACE => "TRACE",
            Level::DEBUG => "DEBUG",
            Level::INFO => " INFO",
            Level::WARN => " WARN",
            _ => "ERROR",
        };
        writer.write_str(level)?;
        writer.write_str(" ")?;
        writer.write_str(TARGET)?;
        writer.write_str(": ")?;
        let mut fields = Fields {
            writer: &mut writer,
            first: true,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_char('\n')
    }
}

/// A request line's fields, written as tracing's default visitor writes them: `message`
/// bare, every other field `name=` and its `Debug` (strings quoted and escaped), one space
/// between.
struct Fields<'w, 'a> {
    writer: &'w mut tracing_subscriber::fmt::format::Writer<'a>,
    first: bool,
    result: std::fmt::Result,
}

impl Fields<'_, '_> {
    fn field(&mut self, name: &str, value: &dyn std::fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        let space = if std::mem::take(&mut self.first) {
            ""
        } else {
            " "
        };
        self.result = if name == "message" {
            write!(self.writer, "{space}{value:?}")
        } else {
            write!(self.writer, "{space}{name}={value:?}")
        };
    }
}

impl tracing::field::Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.field("message", &format_args!("{value}"));
        } else {
            self.field(field.name(), &value);
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.field(field.name(), value);
    }
}

/// The line's timestamp as tracing's `SystemTime` writes it, `2026-02-10T12:00:00.123456Z`:
/// the part to the second formatted once a second per thread.
mod stamp {
    use std::cell::RefCell;
    use std::fmt::Write;
    use std::time::{SystemTime, UNIX_EPOCH};

    use time::macros::format_description;

    thread_local! {
        /// The second last formatted on this thread, and its text.
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }

    /// Writes `at`, then a space.
    pub fn write(writer: &mut impl Write, at: SystemTime) -> std::fmt::Result {
        let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
        let second = since.as_secs();
        SECOND.with_borrow_mut(|(cached, text)| {
            if *cached != second {
                text.clear();
                let moment = i64::try_from(second)
                    .ok()
                    .and_then(|second| time::OffsetDateTime::from_unix_timestamp(second).ok())
                    .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
                let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
                text.push_str(&moment.format(format).unwrap_or_default());
                *cached = second;
            }
            writer.write_str(text)
        })?;
        write!(writer, ".{:06}Z ", since.subsec_micros())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use http::{HeaderValue, StatusCode};

    use super::*;

    /// Lines written to memory.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("buffer").extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
        type Writer = Buffer;

        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    fn response(status: StatusCode, warnings: &[&'static str]) -> Response {
        let mut response = Response::new(bytes::Bytes::new().into());
        *response.status_mut() = status;
        for warning in warnings {
            response
                .headers_mut()
                .append(WARNING_HEADER, HeaderValue::from_static(warning));
        }
        response
    }

    /// Every kind of line `emit` logs, through tracing's own formatter or [`TextLines`].
    fn written(text_lines: bool, emit: &dyn Fn()) -> String {
        let buffer = Buffer::default();
        let builder = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(Level::TRACE)
            .with_writer(buffer.clone());
        if text_lines {
            let subscriber = builder.event_format(TextLines::default()).finish();
            tracing::subscriber::with_default(subscriber, emit);
        } else {
            tracing::subscriber::with_default(builder.finish(), emit);
        }
        let bytes = buffer.0.lock().expect("buffer").clone();
        String::from_utf8(bytes).expect("utf-8")
    }

    #[test]
    fn request_lines_are_the_bytes_tracing_writes_but_for_the_time() {
        let emit = || {
            let created = response(StatusCode::CREATED, &["ignored field a", "ignored field b"]);
            request(
                Level::INFO,
                &Method::POST,
                "/partner/links",
                &created,
                Duration::from_millis(3),
                Some("p117c2bcb"),
            );
            let ok = response(StatusCode::OK, &[]);
            request(
                Level::DEBUG,
                &Method::GET,
                HEALTH,
                &ok,
                Duration::ZERO,
                None,
            );
            let odd = Method::from_bytes(b"PATCH").expect("a method");
            let path = "/odd \"path\"\\\t\u{1b}[31m é \u{200b}";
            let missing = response(StatusCode::NOT_FOUND, &[]);
            request(
                Level::INFO,
                &odd,
                path,
                &missing,
                Duration::MAX,
                Some("leaf:ana"),
            );
            // Another target, and a request line inside a span: tracing's formatter.
            tracing::info!(target: "linkbox", answer = 42, text = "x y", "another target");
            let span = tracing::info_span!("outer", n = 1);
            let _entered = span.enter();
            request(Level::INFO, &Method::GET, "/", &ok, Duration::ZERO, None);
        };
        let (ours, theirs) = (written(true, &emit), written(false, &emit));
        let strip = |text: &str| -> Vec<String> {
            text.lines()
                .map(|line| {
                    let (stamp, rest) = line.split_once(' ').expect("a timestamp");
                    assert_eq!(stamp.len(), 27, "{stamp}");
                    assert!(
                        time::OffsetDateTime::parse(
                            stamp,
                            &time::format_description::well_known::Rfc3339
                        )
                        .is_ok()
                    );
                    rest.to_owned()
                })
                .collect()
        };
        let (ours, theirs) = (strip(&ours), strip(&theirs));
        assert_eq!(ours.len(), 5, "{ours:?}");
        assert_eq!(ours, theirs);
        assert!(ours[0].ends_with(
            "request method=POST path=\"/partner/links\" status=201 ms=3 tenant=\"p117c2bcb\" \
             warnings=\"ignored field a; ignored field b\""
        ));
    }

    /// A key sent by mistake as the method, in the path (as sent or percent-encoded), as a
    /// Leaf account's name, or quoted by a warning is not written out.
    #[test]
    fn a_line_quotes_no_key() {
        let emit = || {
            let method =
                Method::from_bytes(b"m2m_test_LEAK1xxxxxxxxxxxxxxxxxxxxxxxxxxx").expect("a method");
            let warned = response(
                StatusCode::OK,
                &["ignored unknown field \"M2M_TEST_LEAK2xxxxxxxxxxxxxxxxxxxxxxxxxxx\""],
            );
            request(
                Level::INFO,
                &method,
                "/partner/links/m2m%5Ftest%5FLEAK3xxxxxxxxxxxxxxxxxxxxxxxxxxx",
                &warned,
                Duration::ZERO,
                Some("leaf:m2m_live_LEAK4xxxxxxxxxxxxxxxxxxxxxxxxxxx"),
            );
        };
        for text_lines in [true, false] {
            let line = written(text_lines, &emit);
            assert!(!line.contains("LEAK"), "{line}");
            assert_eq!(line.matches("[redacted]").count(), 4, "{line}");
        }
    }

    #[test]
    fn the_timestamp_is_tracings_to_the_microsecond() {
        let at = UNIX_EPOCH + Duration::new(1_770_724_800, 123_456_789);
        let mut text = String::new();
        stamp::write(&mut text, at).expect("written");
        assert_eq!(text, "2026-02-10T12:00:00.123456Z ");
        // The next second on the same thread is not the cached one.
        text.clear();
        stamp::write(&mut text, at + Duration::from_secs(1)).expect("written");
        assert_eq!(text, "2026-02-10T12:00:01.123456Z ");
        let now = SystemTime::now();
        text.clear();
        stamp::write(&mut text, now).expect("written");
        assert_eq!(text.len(), 28);
    }
}
