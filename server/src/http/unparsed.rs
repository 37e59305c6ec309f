//! hyper's own answers to a request it cannot parse, in linkbox's envelope, and the close
//! that lingers after an answer the client is still sending to.
//!
//! When a request head is malformed (400), larger than the limits (431) or its target too
//! long (414), hyper answers by itself before any route runs: a status line,
//! `connection: close`, `content-length: 0`, `date`, and no body. A client's JSON parser
//! then has nothing to read. [`Enveloped`] is the connection's I/O as hyper sees it: it
//! recognises exactly that head among what hyper writes, and writes in its place the same
//! status with linkbox's envelope for requests no API claims (`{"error": {"code",
//! "message"}}`, as for an unknown path) saying what was wrong, then lets hyper close the
//! connection as it meant to.
//!
//! Which vendor API a request meant is read off the first bytes of the request as they
//! arrived ([`Start`]): a request line whose path an API claims gets that API's envelope
//! (M2M's `{"success": false, "error": …}` with `INVALID_REQUEST`, Leaf's problem body
//! naming the path), any other linkbox's own, like every answer to a path no surface
//! claims. Those bytes are the first read after the connection opened or after an answer
//! was written: for pipelined requests, whose next head may already have been read, they
//! can be an earlier request's, and the envelope is then that request's API's.
//!
//! # Lingering close
//! Such a client is often still sending: a head of megabytes, of which hyper read its limit.
//! So is one whose body is too large to wait for (413, `Connection: close`), perhaps after
//! a pause, its body sent a moment after its head. Closed with that unread, the socket
//! would answer the rest with a reset, which can reach the client before it reads the
//! answer: it sees a broken pipe, not the 431 or the 413. So after such an answer (the
//! service says so for a body left unread: [`Enveloped::unread`]), or at any close that
//! finds bytes nobody read, the connection lingers as a web
//! server's does (nginx's `lingering_close`): linkbox closes its sending side, then reads
//! and discards what the client still sends, until the client closes too, or for at most
//! [`LINGER`] and [`LINGER_BYTES`], and only then closes the socket. Every other close is
//! as it was.
//!
//! What is recognised is narrow on purpose: one status of the three, those three headers
//! and nothing else, and no body. Every answer linkbox's routes give has a `content-type`
//! and a body, so none of them is ever taken for it. A write that carries anything before
//! or after such a head (a response still being flushed ahead of it) is passed through as
//! hyper wrote it.

use std::borrow::Cow;
use std::future::Future;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::StatusCode;
use linkbox_contracts::sandbox::{SandboxErrorBody, SandboxErrorDetail, codes};
use linkbox_contracts::{leaf, m2m};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// The largest request head hyper buffers, request line and headers together.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The most header fields a request may carry.
pub const MAX_HEADERS: usize = 100;
/// How long a connection answered before its request could be read lingers at most.
/// [design]
pub const LINGER: Duration = Duration::from_secs(5);
/// How much a lingering connection reads and discards at most. [design]
pub const LINGER_BYTES: usize = 64 * 1024 * 1024;

/// A connection's I/O that writes linkbox's envelope where hyper would answer a request it
/// could not parse with an empty body, and then lingers before it closes.
pub(super) struct Enveloped<T> {
    inner: T,
    /// The answer being written in place of hyper's head.
    replacing: Option<Replacement>,
    /// Such an answer went out: the close lingers.
    answered: bool,
    /// The lingering close under way.
    lingering: Option<Lingering>,
    /// Set by the service when it answered with part of a request's body unread
    /// ([`Enveloped::unread`]): the close lingers even if none of the rest has come yet.
    unread: Arc<AtomicBool>,
    /// The first bytes of the request being read.
    start: Start,
}

/// The first bytes of a request as they arrived: enough of its request line to tell which
/// API its path belongs to. Copied from the reads after the connection opened or an answer
/// went out, until the path has ended; read only when hyper could not parse the request.
struct Start {
    bytes: [u8; START_BYTES],
    len: usize,
    /// Spaces among the bytes kept: the second ends the path.
    spaces: u8,
    /// The next read starts a request.
    next: bool,
}

/// How much of a request's start is kept: a request line's method and a path of any of the
/// APIs with room to spare.
const START_BYTES: usize = 512;

impl Start {
    fn new() -> Start {
        Start {
            bytes: [0; START_BYTES],
            len: 0,
            spaces: 0,
            next: true,
        }
    }

    /// Notes `read`, the bytes just read, while the start of a request's line is still
    /// wanted: from the first byte past any empty lines, until the path has ended (the
    /// space after it, its query, the line's end) or [`START_BYTES`] are kept. Only those
    /// bytes are looked at: a few dozen a request.
    fn read(&mut self, read: &[u8]) {
        let mut read = read;
        if self.len == 0 {
            let skipped = read
                .iter()
                .position(|&byte| byte != b'\r' && byte != b'\n')
                .unwrap_or(read.len());
            read = &read[skipped..];
        }
        let room = START_BYTES - self.len;
        let mut taken = read.len().min(room);
        for (at, &byte) in read[..taken].iter().enumerate() {
            let ended = match byte {
                b' ' => {
                    self.spaces += 1;
                    self.spaces == 2
                }
                b'?' | b'\n' => true,
                _ => false,
            };
            if ended {
                taken = at + 1;
                self.next = false;
                break;
            }
        }
        self.bytes[self.len..self.len + taken].copy_from_slice(&read[..taken]);
        self.len += taken;
        if self.len == START_BYTES {
            self.next = false;
        }
    }

    /// A request begins with the next read: what was kept is forgotten.
    fn begin(&mut self) {
        self.len = 0;
        self.spaces = 0;
        self.next = true;
    }

    /// The path of the request line begun, as far as it was kept: what follows the method,
    /// up to its query, a space or the end of what was kept; the path part of an
    /// absolute-form target; a byte that is not UTF-8 is read as U+FFFD, so a bad byte in
    /// `/partner/…` still names M2M. `None` when nothing was read or no path can be told.
    fn path(&self) -> Option<Cow<'_, str>> {
        let bytes = &self.bytes[..self.len];
        let target = &bytes[bytes.iter().position(|&byte| byte == b' ')? + 1..];
        let end = target
            .iter()
            .position(|&byte| matches!(byte, b' ' | b'?' | b'#' | b'\r' | b'\n'))
            .unwrap_or(target.len());
        let target = String::from_utf8_lossy(&target[..end]);
        let start = match target.split_once("://") {
            Some((scheme, rest)) => scheme.len() + 3 + rest.find('/')?,
            None => 0,
        };
        if !target[start..].starts_with('/') {
            return None;
        }
        Some(match target {
            Cow::Borrowed(target) => Cow::Borrowed(&target[start..]),
            Cow::Owned(mut target) => Cow::Owned(target.split_off(start)),
        })
    }
}

/// A close that waits for the client to stop sending.
struct Lingering {
    /// The sending side is closed.
    shut: bool,
    drained: usize,
    until: Pin<Box<Sleep>>,
}

/// An answer written instead of the `stands_for` bytes hyper asked to write.
struct Replacement {
    bytes: Vec<u8>,
    written: usize,
    stands_for: usize,
}

impl Replacement {
    /// What to write instead of `head`, when it is hyper's own answer to a request it could
    /// not parse, to a request for `path` ([`enveloped`]).
    fn of(head: &[u8], path: Option<&str>) -> Option<Replacement> {
        Some(Replacement {
            bytes: enveloped(head, path)?,
            written: 0,
            stands_for: head.len(),
        })
    }
}

impl<T> Enveloped<T> {
    pub(super) fn new(inner: T) -> Enveloped<T> {
        Enveloped {
            inner,
            replacing: None,
            answered: false,
            lingering: None,
            unread: Arc::default(),
            start: Start::new(),
        }
    }

    /// What the service sets when it answers with part of a request's body unread: the
    /// connection's close then lingers.
    pub(super) fn unread(&self) -> Arc<AtomicBool> {
        self.unread.clone()
    }
}

impl<T: AsyncWrite + Unpin> Enveloped<T> {
    /// Writes what is left of the replacement; once all of it is out, tells hyper its head
    /// was written whole.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        let Some(replacement) = self.replacing.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        while replacement.written < replacement.bytes.len() {
            let rest = &replacement.bytes[replacement.written..];
            match ready!(Pin::new(&mut self.inner).poll_write(cx, rest)) {
                Ok(0) => return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into())),
                Ok(written) => replacement.written += written,
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
        let stands_for = replacement.stands_for;
        self.replacing = None;
        self.answered = true;
        Poll::Ready(Ok(stands_for))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Enveloped<T> {
    /// Whether the client has sent what nobody read, at a close: a body too large to wait
    /// for, answered with `Connection: close`. What is read here is discarded.
    fn poll_unread(&mut self, cx: &mut Context<'_>) -> bool {
        let mut scratch = [0u8; 1024];
        let mut buf = ReadBuf::new(&mut scratch);
        matches!(
            Pin::new(&mut self.inner).poll_read(cx, &mut buf),
            Poll::Ready(Ok(())) if !buf.filled().is_empty()
        )
    }

    /// Closes the sending side, then discards what the client still sends until it closes
    /// too, or [`LINGER`] or [`LINGER_BYTES`] run out. Whatever ends it, the close is done:
    /// the answer is out, and the socket is dropped next.
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let lingering = self.lingering.get_or_insert_with(|| Lingering {
            shut: false,
            drained: 0,
            until: Box::pin(tokio::time::sleep(LINGER)),
        });
        if !lingering.shut {
            if ready!(Pin::new(&mut self.inner).poll_shutdown(cx)).is_err() {
                return Poll::Ready(Ok(()));
            }
            lingering.shut = true;
        }
        let mut scratch = [0u8; 8 * 1024];
        loop {
            if lingering.drained >= LINGER_BYTES || lingering.until.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match ready!(Pin::new(&mut self.inner).poll_read(cx, &mut buf)) {
                Ok(()) if !buf.filled().is_empty() => lingering.drained += buf.filled().len(),
                // The client closed, or the connection broke.
                Ok(()) | Err(_) => return Poll::Ready(Ok(())),
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Enveloped<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.start.next && matches!(read, Poll::Ready(Ok(()))) {
            this.start.read(&buf.filled()[before..]);
        }
        read
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Enveloped<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.replacing.is_none() {
            let Some(replacement) = Replacement::of(buf, this.start.path().as_deref()) else {
                this.start.begin();
                return Pin::new(&mut this.inner).poll_write(cx, buf);
            };
            this.replacing = Some(replacement);
        }
        this.poll_replacement(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.replacing.is_none() {
            let mut written = bufs.iter().filter(|buf| !buf.is_empty());
            let alone = match (written.next(), written.next()) {
                (Some(head), None) => Some(head),
                _ => None,
            };
            let Some(replacement) =
                alone.and_then(|head| Replacement::of(head, this.start.path().as_deref()))
            else {
                this.start.begin();
                return Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
            };
            this.replacing = Some(replacement);
        }
        this.poll_replacement(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.lingering.is_none()
            && !this.answered
            && !this.unread.load(Ordering::Relaxed)
            && !this.poll_unread(cx)
        {
            return Pin::new(&mut this.inner).poll_shutdown(cx);
        }
        this.poll_linger(cx)
    }
}

/// The answer to write instead of `head`, when `head` is hyper's own answer to a request
/// (for `path`, when it could be told) it could not parse: in the envelope of the API the
/// path belongs to.
fn enveloped(head: &[u8], path: Option<&str>) -> Option<Vec<u8>> {
    // hyper's answer is about a hundred bytes; most writes are told apart by the status.
    if head.len() > 256 || !head.starts_with(b"HTTP/1.") {
        return None;
    }
    let code = head.get(9..12)?;
    if !matches!(code, b"400" | b"414" | b"431") {
        return None;
    }
    let mut headers = [httparse::EMPTY_HEADER; 3];
    let mut parsed = httparse::Response::new(&mut headers);
    if parsed.parse(head).ok()? != httparse::Status::Complete(head.len()) {
        return None;
    }
    let status = StatusCode::from_u16(parsed.code?).ok()?;
    let mut date = None;
    let mut closes = false;
    let mut empty = false;
    for header in parsed.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("date") {
            date = Some(header.value);
        } else if name.eq_ignore_ascii_case("connection") {
            closes = header.value.eq_ignore_ascii_case(b"close");
        } else if name.eq_ignore_ascii_case("content-length") {
            empty = header.value == b"0";
        }
    }
    let date = date.filter(|_| closes && empty)?;
    let (content_type, body) = body(status, path)?;
    let line_end = head.windows(2).position(|pair| pair == b"\r\n")?;
    let mut answer = Vec::with_capacity(head.len() + body.len() + 64);
    answer.extend_from_slice(&head[..line_end]);
    answer.extend_from_slice(b"\r\ncontent-type: ");
    answer.extend_from_slice(content_type.as_bytes());
    answer.extend_from_slice(b"\r\nconnection: close\r\n");
    answer.extend_from_slice(format!("content-length: {}\r\ndate: ", body.len()).as_bytes());
    answer.extend_from_slice(date);
    answer.extend_from_slice(b"\r\n\r\n");
    answer.extend_from_slice(&body);
    Some(answer)
}

/// The content type and body of the answer `status` to a request for `path`: the envelope
/// of the API the path belongs to, or linkbox's own.
fn body(status: StatusCode, path: Option<&str>) -> Option<(&'static str, Vec<u8>)> {
    let message = message(status).to_owned();
    match path {
        Some(path) if crate::m2m::owns(path) => {
            let envelope = m2m::ErrorEnvelope {
                success: false,
                error: m2m::ErrorDetail {
                    code: m2m::ErrorCode::InvalidRequest,
                    message,
                },
            };
            Some((
                "application/json",
                linkbox_contracts::json::to_vec(&envelope).ok()?,
            ))
        }
        Some(path) if crate::leaf::owns(path) => {
            let problem = leaf::Problem {
                kind: leaf::PROBLEM_WITH_MESSAGE.to_owned(),
                title: status.canonical_reason().unwrap_or("Error").to_owned(),
                status: status.as_u16(),
                detail: message,
                path: path.to_owned(),
                message: leaf::http_message(status.as_u16()),
                field_errors: None,
            };
            Some((
                leaf::PROBLEM_CONTENT_TYPE,
                linkbox_contracts::json::to_vec(&problem).ok()?,
            ))
        }
        // An end user's page: a page, never an API's JSON.
        Some(path) if crate::pages::owns(path) => Some((
            "text/html; charset=utf-8",
            crate::pages::failure_page(status, &message)
                .into_string()
                .into_bytes(),
        )),
        _ => {
            let envelope = SandboxErrorBody {
                error: SandboxErrorDetail {
                    code: codes::INVALID_REQUEST.to_owned(),
                    message,
                },
            };
            Some((
                "application/json",
                linkbox_contracts::json::to_vec(&envelope).ok()?,
            ))
        }
    }
}

/// What was wrong with a request answered `status` before it could be read.
pub(super) fn message(status: StatusCode) -> &'static str {
    match status {
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            "The request head is too large: linkbox reads at most 64 KiB of request line and \
             headers, and at most 100 header fields"
        }
        StatusCode::URI_TOO_LONG => "The request target is too long",
        _ => {
            "The request is not well-formed HTTP/1.1: its request line or a header could not \
             be parsed"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const HYPER_431: &[u8] =
        b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\n\
        content-length: 0\r\ndate: Sat, 05 Dec 2026 10:50:08 GMT\r\n\r\n";

    fn split(answer: &[u8]) -> (String, serde_json::Value) {
        let text = String::from_utf8(answer.to_vec()).expect("utf-8");
        let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
        let length = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length: "))
            .expect("a length");
        assert_eq!(length, body.len().to_string(), "{head}");
        (
            head.to_owned(),
            serde_json::from_str(body).expect("a JSON body"),
        )
    }

    #[test]
    fn hypers_empty_answers_get_the_envelope_with_their_status_and_date() {
        let answer = enveloped(HYPER_431, None).expect("recognised");
        let (head, body) = split(&answer);
        assert!(
            head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{head}"
        );
        assert!(
            head.contains("content-type: application/json\r\n"),
            "{head}"
        );
        assert!(head.contains("connection: close\r\n"), "{head}");
        assert!(
            head.ends_with("date: Sat, 05 Dec 2026 10:50:08 GMT"),
            "{head}"
        );
        assert_eq!(body["error"]["code"], "INVALID_REQUEST");
        let message = body["error"]["message"].as_str().expect("a message");
        assert!(message.contains("64 KiB"), "{message}");

        for (status, says) in [
            ("400 Bad Request", "not well-formed"),
            ("414 URI Too Long", "too long"),
        ] {
            let head = format!(
                "HTTP/1.1 {status}\r\nconnection: close\r\ncontent-length: 0\r\n\
                 date: Sat, 05 Dec 2026 10:50:08 GMT\r\n\r\n"
            );
            let (written, body) = split(&enveloped(head.as_bytes(), None).expect("recognised"));
            assert!(written.starts_with(&format!("HTTP/1.1 {status}\r\n")));
            let message = body["error"]["message"].as_str().expect("a message");
            assert!(message.contains(says), "{message}");
        }
    }

    #[test]
    fn the_path_is_read_off_the_start_of_the_request_line() {
        let path_of = |bytes: &[u8]| {
            let mut start = Start::new();
            start.read(bytes);
            start.path().map(Cow::into_owned)
        };
        assert_eq!(
            path_of(b"GET /partner/links?limit=1 HTTP/1.1\r\nHost: x").as_deref(),
            Some("/partner/links")
        );
        assert_eq!(
            path_of(b"\r\nPOST http://x:1/services/widgets/api/magic-link HTTP/1.1").as_deref(),
            Some("/services/widgets/api/magic-link")
        );
        assert_eq!(path_of(b"GET /partner/li").as_deref(), Some("/partner/li"));
        // A byte that is not UTF-8 does not hide which API the path names.
        assert_eq!(
            path_of(b"GET /partner/links/\xff HTTP/1.1").as_deref(),
            Some("/partner/links/\u{fffd}")
        );
        assert_eq!(path_of(b"GARBAGE\r\n\r\n"), None);
        assert_eq!(path_of(b"GET * HTTP/1.1"), None);
        assert_eq!(path_of(b""), None);
        let long = format!("GET /{} HTTP/1.1", "a".repeat(2 * START_BYTES));
        assert_eq!(
            path_of(long.as_bytes()).map(|path| path.len()),
            Some(START_BYTES - 4)
        );
        // A line in pieces is kept until its path has ended, then not until an answer is
        // written.
        let mut start = Start::new();
        start.read(b"\r\nGET /services/wid");
        start.read(b"gets/api/x HTTP/1.1\r\n");
        start.read(b"GET /partner/links HTTP/1.1\r\n");
        assert_eq!(start.path().as_deref(), Some("/services/widgets/api/x"));
        start.begin();
        start.read(b"GET /partner/links HTTP/1.1\r\n");
        assert_eq!(start.path().as_deref(), Some("/partner/links"));
    }

    /// A request whose path an API claims is answered in that API's envelope.
    #[test]
    fn hypers_answers_take_the_envelope_of_the_api_of_the_path() {
        let (head, body) = split(&enveloped(HYPER_431, Some("/partner/links")).expect("m2m"));
        assert!(
            head.contains("content-type: application/json\r\n"),
            "{head}"
        );
        assert_eq!(body["success"], false);
        assert_eq!(body["error"]["code"], "INVALID_REQUEST");
        let leaf_path = "/services/widgets/api/magic-link/provider";
        let (head, body) = split(&enveloped(HYPER_431, Some(leaf_path)).expect("leaf"));
        assert!(
            head.contains("content-type: application/problem+json\r\n"),
            "{head}"
        );
        assert_eq!(body["status"], 431);
        assert_eq!(body["path"], leaf_path);
        assert_eq!(body["title"], "Request Header Fields Too Large");
        assert!(
            body["detail"]
                .as_str()
                .is_some_and(|detail| detail.contains("64 KiB"))
        );
        let (_, body) = split(&enveloped(HYPER_431, Some("/nowhere")).expect("linkbox's"));
        assert_eq!(body["error"]["code"], "INVALID_REQUEST");
        assert!(body.get("success").is_none());
    }

    #[test]
    fn answers_of_routes_and_other_writes_pass_as_they_are() {
        let date = "date: Sat, 05 Dec 2026 10:50:08 GMT\r\n";
        for head in [
            // A route's 400: it has a content type and a body.
            format!(
                "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n\
                 content-length: 97\r\n{date}\r\n"
            ),
            // Kept alive, or with a body.
            format!("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n{date}\r\n"),
            format!(
                "HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 2\r\n{date}\r\n"
            ),
            // Another status, or the head followed by anything.
            format!(
                "HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n{date}\r\n"
            ),
            format!(
                "HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n{date}\r\n{{}}"
            ),
            "HTTP/1.1 201 Created\r\n".to_owned(),
            "{\"success\":true}".to_owned(),
        ] {
            assert!(enveloped(head.as_bytes(), None).is_none(), "{head}");
        }
    }

    /// Writes `bufs` through an [`Enveloped`] whose peer reads at most `window` bytes at a
    /// time, and returns what the peer received.
    async fn through(window: usize, bufs: &[&[u8]], vectored: bool) -> Vec<u8> {
        let (near, mut far) = tokio::io::duplex(window);
        let mut enveloped = Enveloped::new(near);
        let reading = tokio::spawn(async move {
            let mut received = Vec::new();
            far.read_to_end(&mut received).await.expect("read");
            received
        });
        for buf in bufs {
            let mut at = 0;
            while at < buf.len() {
                let written = if vectored {
                    enveloped
                        .write_vectored(&[IoSlice::new(&[]), IoSlice::new(&buf[at..])])
                        .await
                } else {
                    enveloped.write(&buf[at..]).await
                };
                at += written.expect("written");
            }
        }
        enveloped.shutdown().await.expect("shut down");
        drop(enveloped);
        reading.await.expect("the reader")
    }

    #[tokio::test]
    async fn the_envelope_goes_out_whole_through_a_narrow_pipe_and_hyper_is_told_its_head_went() {
        let expected = enveloped(HYPER_431, None).expect("recognised");
        for vectored in [false, true] {
            // Seven bytes at a time: the replacement takes many writes, each `Pending` in
            // between, and the caller sees its own head written once, whole.
            let received = through(7, &[HYPER_431], vectored).await;
            assert_eq!(received, expected, "vectored: {vectored}");
        }
        let ordinary: &[&[u8]] = &[b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n", b"{}"];
        let received = through(5, ordinary, true).await;
        assert_eq!(received, ordinary.concat());
    }

    /// An end user's page refused before it could be read is a page too.
    #[test]
    fn a_page_refused_unread_is_a_page() {
        for path in ["/widget/link_x/m2m-basic", "/magic-link/abc"] {
            let answer = enveloped(HYPER_431, Some(path)).expect("a page");
            let text = String::from_utf8(answer).expect("text");
            assert!(text.contains("content-type: text/html"), "{text}");
            assert!(
                text.contains("<h1>431 Request Header Fields Too Large</h1>"),
                "{text}"
            );
        }
    }
}
