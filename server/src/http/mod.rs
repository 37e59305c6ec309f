//! Serving: the connection loop ([`serve`]) and the pipeline every request goes through on
//! its way to a route and back.
//!
//! For each request, in order: the caller is resolved once ([`identity::resolve`]); outside
//! `/_sandbox`, the fault table may delay, answer or drop it (`faulted`); the surfaces'
//! route tables find its handler — or say the path is known with another method (405 with
//! `Allow`), or that no surface has it (404), each in the envelope of the API whose paths
//! it is under; outside `/_sandbox` it is recorded in the journal; and with a state file,
//! its response waits until everything it changed is durable; and one line goes to the
//! request log (`log`). A request to an API shadowed with `--shadow-m2m`/`--shadow-leaf`
//! skips faults, routes, journal read-back and CORS: the vendor answers it ([`shadow`]);
//! its unread body is drained and its line logged all the same. A body-less control API
//! `GET` whose route gives a fixed answer (the health check, [`Router::get_fixed`]) needs
//! none of these steps but CORS and the log line, and is answered before any of them.

mod cors;
mod faulted;
mod held;
mod leftover;
mod log;
mod serve;
mod shadow;
mod unparsed;
mod workers;

pub use log::TextLines;
pub use serve::{serve, serve_with};

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use bytes::Buf;
use futures_util::StreamExt;
use futures_util::future::Either;
use http::{Method, StatusCode};
use linkbox_contracts::m2m::ErrorCode;
use linkbox_contracts::sandbox::{JOURNAL_BODY_LIMIT, codes};
use warp::reply::Response;

use crate::app::App;
use crate::app::replica::Hint;
use crate::faults::Action;
use crate::offload;
use crate::ops::identity;
use crate::wire::{BodyStream, DropConnection, Found, Request, Router};
use crate::{control, docs, journal, leaf, m2m, pages, webhooks};
use unparsed::{MAX_HEAD_BYTES, MAX_HEADERS};

/// One API's routes and the envelope its refusals speak.
struct Surface {
    router: Router,
    not_found: fn(&Method, &str) -> Response,
    wrong_method: fn(&Method, &str, String) -> Response,
}

/// Every surface, and which one speaks for a path none of them serves.
struct Surfaces {
    m2m: Surface,
    leaf: Surface,
    /// The end user's pages, whose refusals are pages too.
    pages: Surface,
    sandbox: Surface,
    /// `--shadow-m2m`, `--shadow-leaf`: the APIs forwarded to the vendor.
    shadow: Option<shadow::Shadow>,
    /// The bodies held at once, answers' too ([`held`]).
    bodies: Arc<crate::bodies::Bodies>,
}

impl Surfaces {
    fn new(app: &App) -> Surfaces {
        Surfaces {
            shadow: shadow::Shadow::new(app),
            bodies: app.bodies.clone(),
            m2m: Surface {
                router: m2m::routes(),
                not_found: m2m::not_found,
                wrong_method: m2m::wrong_method,
            },
            leaf: Surface {
                router: leaf::routes(),
                not_found: leaf::not_found,
                wrong_method: leaf::wrong_method,
            },
            pages: Surface {
                router: pages::end_user_routes(),
                not_found: pages::not_found,
                wrong_method: pages::wrong_method,
            },
            sandbox: Surface {
                router: control::routes()
                    .merge(pages::routes())
                    .merge(docs::routes()),
                not_found: control::not_found,
                wrong_method: control::wrong_method,
            },
        }
    }

    /// The surface whose envelope answers for `path`.
    fn for_path(&self, path: &str) -> &Surface {
        if m2m::owns(path) {
            &self.m2m
        } else if leaf::owns(path) {
            &self.leaf
        } else if pages::owns(path) {
            &self.pages
        } else {
            &self.sandbox
        }
    }

    /// Every route of every surface, for the test that holds them to the OpenAPI document.
    #[cfg(test)]
    fn list(&self) -> Vec<(Method, String)> {
        [&self.m2m, &self.leaf, &self.pages, &self.sandbox]
            .into_iter()
            .flat_map(|surface| surface.router.list())
            .map(|(method, path)| (method.clone(), path.to_owned()))
            .collect()
    }
}

/// The pipeline above as one service: hyper's request in, the response out.
///
/// linkbox reads a request's parts itself instead of through a chain of warp filters: the
/// chain copied the headers, boxed an empty body and moved each request's large future
/// into one more state, and cost about 2.5 µs of a health check's 15 (`docs/benchmarks.md`).
#[derive(Clone)]
pub struct Pipeline {
    app: App,
    surfaces: Arc<Surfaces>,
}

impl Pipeline {
    /// The pipeline over `app`'s routes.
    pub fn new(app: App) -> Pipeline {
        let surfaces = Arc::new(Surfaces::new(&app));
        Pipeline { app, surfaces }
    }

    /// The answer to `request`.
    pub fn answer<B>(&self, request: http::Request<B>) -> Answer
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if let Some(response) = self.fixed(&request) {
            return Either::Left(std::future::ready(response));
        }
        let request = self.request(request);
        let surfaces = self.surfaces.clone();
        Either::Right(Box::pin(async move { handle(&surfaces, request).await }))
    }

    /// The 400 to an HTTP/1.1 request off a connection without a `Host` header (RFC 9112
    /// §3.2; HTTP/1.0 may leave it out, HTTP/2 carries `:authority` instead), in its API's
    /// envelope and with CORS for an allowed origin; `None` for any other request.
    pub fn without_host<B>(&self, request: &http::Request<B>) -> Option<Response> {
        if request.version() != http::Version::HTTP_11
            || request.headers().contains_key(http::header::HOST)
        {
            return None;
        }
        let envelope = Envelope::of(request.uri().path(), request.headers());
        let origin = cors::allowed_origin(&self.app.settings, request.headers());
        let refusal = envelope.error(
            StatusCode::BAD_REQUEST,
            (ErrorCode::InvalidRequest, codes::INVALID_REQUEST),
            "An HTTP/1.1 request must have a Host header; this one has none".to_owned(),
        );
        Some(cors::decorate(origin, refusal))
    }

    /// The answer to a control API `GET` whose route gives a fixed answer (the health
    /// check), made at once: such a request needs none of the pipeline's steps but CORS
    /// and its log line — no caller, no faults or journal (the control API has neither), no
    /// body, nothing to wait for in the state file. A probe asks often, and it costs about
    /// as much as hyper's own work on it (`docs/benchmarks.md`). A request with a body goes
    /// the whole way, so what it sent is drained as usual.
    fn fixed<B: hyper::body::Body>(&self, request: &http::Request<B>) -> Option<Response> {
        let path = request.uri().path();
        if request.method() != Method::GET || !is_control(path) || !request.body().is_end_stream() {
            return None;
        }
        // Several `Host`s are refused ([`head_refusal`]): such a head goes the whole way.
        if request
            .headers()
            .get_all(http::header::HOST)
            .iter()
            .nth(1)
            .is_some()
        {
            return None;
        }
        let started = Instant::now();
        let answer = self.surfaces.sandbox.router.fixed(path)?;
        let origin = cors::allowed_origin(&self.app.settings, request.headers());
        let response = cors::decorate(origin, answer());
        let level = log::level(path);
        let logged = log::enabled(level).then(|| (level, Method::GET, path.to_owned(), None));
        log_line(logged, &response, started);
        Some(response)
    }

    /// `request` as the routes read it, its caller resolved.
    fn request<B>(&self, request: http::Request<B>) -> Request
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (mut parts, body) = request.into_parts();
        targets_host(&parts.uri, &mut parts.headers);
        // A body already at its end (a GET, `Content-Length: 0`) is no body to read.
        let body = (!body.is_end_stream()).then(|| boxed(body));
        let path = parts.uri.path();
        let caller = identity::resolve_for(&self.app, &parts.headers, m2m::owns(path));
        // The vendor's M2M service routes as Express does: `/partner/links/` and
        // `/PARTNER/links` are `/partner/links`.
        let path = match path.get(..8) {
            Some(start) if start.eq_ignore_ascii_case("/partner") => {
                self.surfaces.m2m.router.canonical(path)
            }
            _ => None,
        }
        .unwrap_or_else(|| path.to_owned());
        Request::new(
            self.app.clone(),
            parts.method,
            path,
            parts.uri.query().unwrap_or_default().to_owned(),
            parts.headers,
            caller,
            body,
        )
        .with_version(parts.version)
    }
}

/// A request whose target names its host (HTTP/1's absolute form, `GET http://host/path`,
/// or HTTP/2's `:authority`) is for that host, whatever its `Host` header says (RFC 9112
/// §3.2.2, RFC 9113 §8.3.1): `Host` becomes the target's host and port, so that every
/// reader of it — the keyless admin's check that the request names this machine, the
/// `Origin` comparison, the URLs answers build — reads the host the request is for. Before
/// this, `GET http://evil.example/_sandbox/reset` with `Host: 127.0.0.1` passed as this
/// machine's.
fn targets_host(uri: &http::Uri, headers: &mut http::HeaderMap) {
    let Some(authority) = uri.authority() else {
        return;
    };
    // The host and port only: a user name in the target is no part of the host.
    let host = match authority.port_u16() {
        Some(port) => format!("{}:{port}", authority.host()),
        None => authority.host().to_owned(),
    };
    if let Ok(value) = http::HeaderValue::from_str(&host) {
        headers.insert(http::header::HOST, value);
    }
}

/// One request's answer on its way: a fixed answer, ready, or the pipeline's work, boxed
/// once where it is made (hyper and the connection loop move it a few times more, and the
/// pipeline's state is several KB).
pub type Answer =
    Either<std::future::Ready<Response>, std::pin::Pin<Box<dyn Future<Output = Response> + Send>>>;

/// The body as the handlers read it: its data, in order, with trailers left out.
fn boxed<B>(body: B) -> BodyStream
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use http_body_util::BodyExt;
    body.into_data_stream()
        .map(|chunk| match chunk {
            Ok(mut chunk) => Ok(chunk.copy_to_bytes(chunk.remaining())),
            Err(error) => Err(std::io::Error::other(error)),
        })
        .boxed()
}

async fn handle(surfaces: &Arc<Surfaces>, request: Request) -> Response {
    let started = Instant::now();
    let body = request.body_slot();
    let declared = request
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    let head = request.method.clone();
    let http2 = request.version == http::Version::HTTP_2;
    let waits = request
        .headers
        .get(http::header::EXPECT)
        .is_some_and(|expect| expect.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    // Read off the request before it moves on, and only what the steps after the handler
    // use: while the request log is on, its fields.
    let logged = log_fields(&request);
    let shadowed = surfaces
        .shadow
        .as_ref()
        .and_then(|shadow| Some((shadow, shadow.covers(&request.path)?)));
    let mut request = request;
    if let Some(shadow) = &surfaces.shadow {
        // A shadowed Leaf client holds the vendor's token: its shadow account stands in,
        // for its control requests as for its shares, report and journal.
        match shadowed {
            Some(_) => shadow.forwarded_caller(&mut request),
            None if is_control(&request.path) => shadow.control_caller(&mut request),
            None => {}
        }
    }
    // An answer held whole counts in the share its request's body would ([`held`]).
    let share = request.caller.body_share();
    let envelope = Envelope::of(&request.path, &request.headers);
    let response = match shadowed {
        // The vendor's answer, untouched: no faults, journal read-back or CORS of linkbox's.
        Some((shadow, (api, base))) => shadow::forward(surfaces, shadow, api, base, request).await,
        None => {
            if let Some((status, message)) = head_refusal(&request) {
                let origin = cors::allowed_origin(&request.app.settings, &request.headers);
                let code = (ErrorCode::InvalidRequest, codes::INVALID_REQUEST);
                cors::decorate(origin, envelope.error(status, code, message.into()))
            } else {
                unpanicked(&envelope, answer(surfaces, request, started, &envelope)).await
            }
        }
    };
    // An HTTP/2 stream's unread body is its own: the answer goes out at once, the rest is
    // read behind it. Over HTTP/1 it shares the connection with the next request.
    let response = if http2 {
        leftover::drain_behind(&body);
        response
    } else {
        leftover::drain(&body, declared, waits, response).await
    };
    let response = leftover::head(&head, response);
    let response = if held::is_large(&response) {
        let refuse = |refused| envelope.busy(refused, is_safe(&head));
        Box::pin(held::held(response, &surfaces.bodies, share, refuse)).await
    } else {
        response
    };
    log_line(logged, &response, started);
    response
}

/// Whether `method` changes nothing: an answer to it refused changes nothing either.
fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Why a request whose head hyper read is still not served, if it is not: the status and
/// message of its answer, in the envelope of its API.
///
/// - RFC 9112 §3.2: a request carries one `Host`. Of several, which host was meant cannot
///   be told, and a proxy in front may have read the other. (One without any is refused as
///   it comes off its connection: [`Pipeline::without_host`].)
/// - Over HTTP/2, the head limits hyper holds an HTTP/1 head to ([`MAX_HEAD_BYTES`],
///   [`MAX_HEADERS`]): HPACK's decoder is given room for them ([`serve`]), and the answer is
///   this envelope rather than the HTTP/2 layer's empty 431.
fn head_refusal(request: &Request) -> Option<(StatusCode, &'static str)> {
    match request.version {
        _ if request
            .headers
            .get_all(http::header::HOST)
            .iter()
            .nth(1)
            .is_some() =>
        {
            Some((
                StatusCode::BAD_REQUEST,
                "A request must have one Host header; this one has several",
            ))
        }
        http::Version::HTTP_2 if head_too_large(request) => Some((
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            unparsed::message(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
        )),
        _ => None,
    }
}

/// Whether an HTTP/2 request's head is past what an HTTP/1 head may hold: its target and
/// its header fields' names and values, or their number.
fn head_too_large(request: &Request) -> bool {
    let fields: usize = request
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    request.headers.len() > MAX_HEADERS
        || request.path.len() + request.query.len() + fields > MAX_HEAD_BYTES
}

/// linkbox's own answer: faults, the route, the journal, the durability wait and CORS. In a
/// sandbox shared by replicas all of it but CORS runs in one database transaction holding
/// the tenant's lock ([`App::within`]); the caller is resolved again inside it, against the
/// tenant as the database has it.
async fn answer(
    surfaces: &Surfaces,
    request: Request,
    started: Instant,
    envelope: &Envelope,
) -> Response {
    let app = request.app.clone();
    let control = is_control(&request.path);
    // The allowed origin (nothing while CORS is off), read before the request moves on.
    let origin = cors::allowed_origin(&app.settings, &request.headers);
    let mut request = request;
    let hint = hint_of(&app, surfaces, &mut request).await;
    // Outside the control API, a fault may strike the request: the fault table is locked
    // for it when one in force matches its method and path.
    let strikable = (app.replica.is_some() && !control).then(|| {
        let callers = [true, false].map(|m2m| identity::tenant_hint(&app, &request.headers, m2m));
        (request.method.clone(), request.path.clone(), callers)
    });
    let target = strikable
        .as_ref()
        .map(|(method, path, callers)| crate::app::replica::Target {
            method,
            path,
            callers: [callers[0].as_deref(), callers[1].as_deref()],
        });
    let within = app
        .within_request(&hint, target, async {
            let mut request = request;
            if hint != Hint::Nothing {
                request.caller =
                    identity::resolve_for(&app, &request.headers, m2m::owns(&request.path));
            }
            crate::persist::tracking(respond(surfaces, request, control, started)).await
        })
        .await;
    let (response, wrote) = match within {
        Ok(answered) => answered,
        Err(error) => (unavailable(envelope, &error), false),
    };
    // Every answer waits until what it may show is in the file; only a request that changed
    // something hears that the file could not be written (503), the others are answered.
    let mut response = if wrote {
        durable(&app, envelope, response).await
    } else {
        let _ = app.sink.settled().await;
        response
    };
    if let Some(Deferred(delay)) = response.extensions_mut().remove::<Deferred>() {
        tokio::time::sleep(delay).await;
    }
    cors::decorate(origin, response)
}

/// What a request may touch in a shared sandbox ([`replica_hint`]), its body read first
/// where it must be ([`reads_first`]). Two requests name their tenant in their body, not
/// their headers: a Leaf login its account, whatever token it carries (the token's account
/// is not the one a login counts under `--max-tenants`: [`login_hint`]), and a dashboard
/// button the credential its form carries ([`button_hint`]).
async fn hint_of(app: &App, surfaces: &Surfaces, request: &mut Request) -> Hint {
    let hint = replica_hint(app, surfaces, request);
    if reads_first(request, &hint) {
        read_as_routed(surfaces, request).await;
    }
    match hint {
        hint if app.replica.is_none() => hint,
        // Boxed: the database's future is large, and the case rare.
        Hint::Everything if pages::owns(&request.path) => {
            Box::pin(unseen_page_hint(app, request)).await
        }
        // Only a login's `POST` acts on an account; any other method of it is refused
        // (405) whatever token it carries, and must not wait for (or make) that account.
        _ if request.path == leaf::AUTHENTICATE && request.method != Method::POST => Hint::Stranger,
        hint if request.method != Method::POST => hint,
        _ if request.path == leaf::AUTHENTICATE => login_hint(surfaces, request).await,
        Hint::Journal if pages::dashboard::owns(&request.path) => button_hint(app, request).await,
        hint => hint,
    }
}

/// The tenant a Leaf page of a link this replica has not seen acts on: the account the
/// database says made the link, or none (the page says there is no such link). Under every
/// tenant's lock, a stranger's page of a made-up id took this replica's exclusive turn and
/// then waited for any tenant another replica held: every request of this replica waited
/// behind it. A database it cannot ask leaves it as it was, for the transaction to refuse.
async fn unseen_page_hint(app: &App, request: &Request) -> Hint {
    let id = page_and_id(&request.path).1.unwrap_or_default();
    match app.magic_link_owner(&id).await {
        Ok(Some(username)) => Hint::Tenant {
            name: identity::leaf_label(&username),
            create: false,
        },
        Ok(None) => Hint::Stranger,
        Err(_) => Hint::Everything,
    }
}

/// The tenant a Leaf login acts on in a shared sandbox: the account its body's `username`
/// names (made by the login when new), its body read before its transaction, as its route
/// reads it. A body naming none is refused by the route and reaches no tenant. Under every
/// tenant's lock, a login waited for any tenant another request held (a restore of many
/// links), and every request of its replica waited behind it.
async fn login_hint(surfaces: &Surfaces, request: &mut Request) -> Hint {
    read_as_routed(surfaces, request).await;
    let body = request.body(linkbox_contracts::leaf::MAX_BODY_BYTES).await;
    let username = leaf::validate::json_object(&request.headers, body)
        .ok()
        .and_then(|body| Some(body.get("username")?.as_str()?.to_owned()))
        // One the route refuses (blank, past its length, holding U+0000) reaches no
        // tenant: made a tenant's row first, a name of kilobytes was past what the database
        // indexes, and one holding U+0000 is no text PostgreSQL stores.
        .filter(|username| {
            !username.trim().is_empty()
                && !username.contains('\0')
                && username.chars().count() <= linkbox_contracts::leaf::USERNAME_MAX_CHARS
        });
    match username {
        Some(username) => Hint::Tenant {
            name: identity::leaf_label(&username),
            create: true,
        },
        None => Hint::Stranger,
    }
}

/// What a dashboard button's form may reach in a shared sandbox, its form read (before the
/// transaction): the admin's, everything, as the admin's page; a tenant's, its own row and
/// journal, as its page (its clock button moves the sandbox's clock: everything); a form
/// whose credential is refused, or that has none where there is an admin token, nothing
/// (the sign-in page). Every tenant's lock for any form, even an empty one, made a
/// stranger's button stop every request of its replica for as long as it worked.
async fn button_hint(app: &App, request: &mut Request) -> Hint {
    let form = pages::form_pairs(
        request.body(pages::dashboard::DASHBOARD_FORM_BYTES).await,
        pages::dashboard::DASHBOARD_FORM_BYTES,
    )
    .unwrap_or_default();
    let credential = match pages::dashboard::headers(&form) {
        Some(headers) => headers,
        None if app.settings.admin_token.is_none() => request.headers.clone(),
        None => return Hint::Nothing,
    };
    match identity::journal_reader(app, &credential) {
        identity::JournalReader::Admin => Hint::Journal,
        identity::JournalReader::Tenant(_) if request.path.ends_with("/clock") => Hint::Journal,
        identity::JournalReader::Tenant(name) => Hint::TenantJournal(name),
        identity::JournalReader::Refused => Hint::Nothing,
    }
}

/// Whether a request's body is read before its transaction of the shared database, rather
/// than by its route inside it: a client that sends its body slowly (or not at all, for
/// the 30 s a body is waited for) must not hold the locks of its tenant, or of every tenant,
/// while it does, as it would stop every replica's requests behind them. A request that
/// holds no lock is read by its route as ever; so is one whose credentials its route will
/// refuse before reading any body — a Leaf route's without a token, a control request
/// refused or of a type it does not read — so that it is still answered before its body
/// is read. (A fault answering or dropping such a request in its route's place reads no
/// body in a shared sandbox: see [`gate`].) A dashboard button's form carries its
/// credential in its body: it is read first whatever its headers say.
fn reads_first(request: &Request, hint: &Hint) -> bool {
    match hint {
        Hint::Nothing => false,
        Hint::Tenant { .. } => true,
        _ if identity::tenantless(&request.path) => true,
        // A dashboard button's credential is in its form: its body is read whoever sent it.
        _ if pages::dashboard::owns(&request.path) => true,
        _ if is_control(&request.path) => !crate::control::refuses_unread(request),
        _ => false,
    }
}

/// A fault's delay left for after the request's transaction of the shared database
/// ([`gate`]): waited out before the answer goes, holding no lock.
#[derive(Clone, Copy)]
struct Deferred(std::time::Duration);

/// The route's answer, behind the fault table and recorded in the journal (both only
/// outside the control API).
async fn respond(
    surfaces: &Surfaces,
    request: Request,
    control: bool,
    started: Instant,
) -> Response {
    if control {
        return dispatch(surfaces, request).await;
    }
    let app = request.app.clone();
    let mut unanswered = Unanswered {
        entry: Some(Entry {
            app: app.clone(),
            time: app.clock.now(),
            method: request.method.clone(),
            opening: journal::Opening::of(&request.path, &request.query, &request.headers),
            tenant: request.caller.tenant().cloned(),
            established: request.caller.tenant_exists(),
            body: request.body_slot(),
            started,
        }),
    };
    let response = gate(&app, surfaces, request, |request| {
        dispatch(surfaces, request)
    })
    .await;
    let (response, response_body) = read_back(response).await;
    let Some(Entry {
        time,
        method,
        opening,
        tenant,
        established,
        body,
        ..
    }) = unanswered.entry.take()
    else {
        return response;
    };
    let request_body = body.read_whole();
    // A dropped request was answered nothing: no status, rather than the 200 its unsent
    // response holds.
    let dropped = response.extensions().get::<DropConnection>().is_some();
    let status = (!dropped).then(|| response.status().as_u16());
    // In a sandbox shared by replicas a fault's delay is waited out after the request's
    // transaction, where this is recorded ([`Deferred`]): the answer comes that much later.
    let deferred = response
        .extensions()
        .get::<Deferred>()
        .map_or(std::time::Duration::ZERO, |Deferred(delay)| *delay);
    let duration_ms = u64::try_from((started.elapsed() + deferred).as_millis()).unwrap_or(u64::MAX);
    // Recording redacts and copies what it keeps: for bodies past what is kept raw (in a
    // shared sandbox, past a few kilobytes of anything), heavy work of its own.
    let lengths =
        [&request_body, &response_body].map(|body| body.as_ref().map_or(0, |body| body.len()));
    let heavy = app.journal.heavy_to_record(opening.bytes(), &lengths);
    let whose = heavy.then(|| tenant.clone()).flatten();
    let record = move |response_headers: &http::HeaderMap| {
        app.journal.record(journal::Request {
            method,
            opening,
            status,
            time,
            tenant,
            established,
            duration_ms,
            request_body: request_body.as_deref(),
            response_headers,
            response_body: response_body.as_deref(),
        });
    };
    if heavy {
        let headers = response.headers().clone();
        Box::pin(offload::run(whose, move || record(&headers))).await;
    } else {
        record(response.headers());
    }
    response
}

/// The hold a hung-up request's body takes to wait for a heavy thread to record it
/// ([`journal::Journal::heavy_to_record`]), in the share of callers without a tenant; `None`
/// when recording it is light, or the bodies' bound has no room: it is then recorded where
/// its request was dropped. Waiting, the body outlives its request's own hold, and queued
/// unbounded, hung-up uploads held what no bound counted.
fn hold_to_record(app: &App, head: usize, length: usize) -> Option<crate::bodies::Hold> {
    if !app.journal.heavy_to_record(head, &[length]) {
        return None;
    }
    let mut hold = app.bodies.hold(None);
    hold.grow(u64::try_from(length).unwrap_or(u64::MAX)).ok()?;
    Some(hold)
}

/// What a vendor request's journal entry is made of, taken before its handler runs.
struct Entry {
    app: App,
    time: time::OffsetDateTime,
    method: Method,
    opening: journal::Opening,
    tenant: Option<Arc<str>>,
    established: bool,
    body: crate::wire::BodySlot,
    started: Instant,
}

/// A vendor request's entry, journaled if its future is dropped before it is answered: its
/// client hung up (during a fault's delay, or while its body was awaited), and hyper
/// dropped the work. It is journaled as answered nothing (`dropped`, no status), as a
/// request a fault drops is: a client testing its timeouts against `delayMs` finds every
/// attempt it made, as many as the fault's `hits` counted.
struct Unanswered {
    entry: Option<Entry>,
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        let Some(entry) = self.entry.take() else {
            return;
        };
        let request_body = entry.body.read_whole();
        let duration_ms = u64::try_from(entry.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let length = request_body.as_ref().map_or(0, |body| body.len());
        let queued = hold_to_record(&entry.app, entry.opening.bytes(), length);
        let whose = queued.is_some().then(|| entry.tenant.clone()).flatten();
        let record = move || {
            entry.app.journal.record(journal::Request {
                method: entry.method,
                opening: entry.opening,
                status: None,
                time: entry.time,
                tenant: entry.tenant,
                established: entry.established,
                duration_ms,
                request_body: request_body.as_deref(),
                response_headers: &http::HeaderMap::new(),
                response_body: None,
            });
        };
        // Recording redacts and copies what it keeps, as an answered request's does: for a
        // body of megabytes (a stranger's upload, hung up on), on a heavy thread, or every
        // request of the serving thread waited seconds behind it.
        match (tokio::runtime::Handle::try_current(), queued) {
            (Ok(runtime), Some(hold)) => {
                runtime.spawn(offload::run(whose, move || {
                    record();
                    drop(hold);
                }));
            }
            _ => record(),
        }
    }
}

/// What a request may touch in a sandbox shared by replicas: on the vendor APIs, the
/// tenant its credentials name; an end user's page, the tenant its link's id names
/// ([`page_tenant`]: a page view must not lock every tenant of every replica);
/// authenticate, the control API, the dashboard and a Leaf page whose link this replica has
/// not seen, anything. A request of no tenant outside the control API — a vendor API's
/// without usable credentials (refused: the login aside, every Leaf route takes a token),
/// the documents, the landing page, a page whose address names no link, a path no route
/// serves (a browser's `/favicon.ico`) — locks no tenant, but a fault may strike it and the
/// journal records it: [`Hint::Stranger`], which reads the fault table as the database has
/// it. Nothing at all: the health check, a control path no route serves or a method none
/// takes, the dashboard's sign-in page, and a control request every route refuses whatever
/// the state ([`identity::refused_whatever_the_state`]) — a stranger's requests must not
/// stop every tenant's.
fn replica_hint(app: &App, surfaces: &Surfaces, request: &Request) -> Hint {
    if app.replica.is_none() {
        return Hint::Nothing;
    }
    let path = request.path.as_str();
    let create = !matches!(request.method, Method::GET | Method::HEAD | Method::OPTIONS);
    let m2m = m2m::owns(path);
    if m2m || leaf::owns(path) {
        return match identity::tenant_hint(app, &request.headers, m2m) {
            Some(name) => Hint::Tenant { name, create },
            // Every Leaf route but the one that issues tokens refuses a request without one;
            // that one's `POST` acts on the account its body names ([`login_hint`]), and
            // any other method of it is refused.
            None => Hint::Stranger,
        };
    }
    if path == "/_sandbox/health" {
        return Hint::Nothing;
    }
    let control = is_control(path);
    if !control && (docs::owns(path) || path == "/") {
        return Hint::Stranger;
    }
    let routed = matches!(
        surfaces.for_path(path).router.find(&request.method, path),
        Found::Route(..)
    );
    if !routed {
        return if control {
            Hint::Nothing
        } else {
            Hint::Stranger
        };
    }
    if pages::owns(path) {
        return match page_tenant(app, path) {
            // Its link's tenant exists, or the page finds no link: it makes no tenant.
            PageTenant::Of(name) => Hint::Tenant {
                name,
                create: false,
            },
            PageTenant::NoLink => Hint::Stranger,
            PageTenant::Unseen => Hint::Everything,
        };
    }
    let dashboard = pages::dashboard::owns(path);
    if dashboard && request.method != Method::POST {
        // A button's address opened as a page is only sent back to the dashboard.
        if path != "/_sandbox/ui" {
            return Hint::Nothing;
        }
        // The sign-in page, asked for without a credential or with one every route refuses,
        // shows nothing of anyone.
        let credential = pages::dashboard::headers(&crate::wire::query_pairs(&request.query));
        if app.settings.admin_token.is_some()
            && credential
                .as_ref()
                .is_none_or(|headers| identity::refused_whatever_the_state(app, headers))
        {
            return Hint::Nothing;
        }
        // A tenant's page shows its own state and requests: its own row locked and its own
        // journal read back, as its journal request does. Every tenant's locks and the whole
        // journal read back, for a made-up key that sees nothing, cost every tenant a wait
        // that grew with the journal.
        return match identity::journal_reader(app, &credential.unwrap_or_default()) {
            identity::JournalReader::Admin => Hint::Journal,
            identity::JournalReader::Tenant(name) => Hint::TenantJournal(name),
            identity::JournalReader::Refused => Hint::Nothing,
        };
    }
    // A control request every route refuses; the dashboard's buttons carry their credential
    // in the body, not yet read.
    if !dashboard && identity::refused_whatever_the_state(app, &request.headers) {
        return Hint::Nothing;
    }
    // The dashboard shows the newest requests of every tenant it may see: the journal read
    // back whole, as the admin's journal request reads it.
    if dashboard {
        return Hint::Journal;
    }
    if path == "/_sandbox/requests" || path.starts_with("/_sandbox/requests/") {
        return match identity::journal_reader(app, &request.headers) {
            identity::JournalReader::Admin => Hint::Journal,
            identity::JournalReader::Tenant(name) => Hint::TenantJournal(name),
            identity::JournalReader::Refused => Hint::Nothing,
        };
    }
    // A snapshot's restore replaces its partner's state and nothing else: it locks that
    // partner alone, its row made first when missing. Under every tenant's lock, a restore
    // of many links stopped every replica's requests for as long as it took.
    if path == "/_sandbox/snapshot"
        && request.method == Method::PUT
        && let Some(name) = identity::tenant_hint(app, &request.headers, true)
    {
        return Hint::Tenant { name, create: true };
    }
    // A control request that writes nothing reads what its caller may see: a tenant's own
    // state (its row, with the clock and the faults every request reads), the admin's
    // everything. Under every tenant's lock, a made-up key's `GET /_sandbox/clock` took
    // this replica's exclusive turn and waited for any tenant another replica held.
    if !create {
        return match identity::journal_reader(app, &request.headers) {
            identity::JournalReader::Admin => Hint::Everything,
            identity::JournalReader::Tenant(name) => Hint::Tenant {
                name,
                create: false,
            },
            identity::JournalReader::Refused => Hint::Nothing,
        };
    }
    // A request that may write, by a tenant: its row is made first when missing.
    match create
        .then(|| control_writer(app, &request.headers))
        .flatten()
    {
        Some(name) => Hint::Caller(name),
        None => Hint::Everything,
    }
}

/// The tenant a control write acts on, whose row it makes first when missing: the one its
/// scope acts on ([`identity::Caller::scope`]), which takes a valid Leaf token before a key
/// (`None`: the admin's, or no tenant's). Named by the key, a seed carrying both made and
/// locked the partner's row and seeded the account, whose first write on another replica
/// then ran beside it (one `externalId`, two users).
fn control_writer(app: &App, headers: &http::HeaderMap) -> Option<String> {
    match identity::resolve(app, headers).scope(app) {
        Ok(scope) => scope.slug().map(str::to_owned),
        Err(_) => identity::tenant_hint(app, headers, true)
            .or_else(|| identity::tenant_hint(app, headers, false)),
    }
}

/// The tenant an end user's page acts for (a widget's or a Leaf page's, addressed by its
/// link's id), as [`identity::tenant_hint`] names a tenant: a widget's link id names its
/// partner; a Leaf page's, its account once this process has seen the link (an id is a
/// random UUID, made once by one account, so an owner seen is the owner).
///
/// The id is read as the page's route reads it, percent-decoded
/// ([`crate::wire::path_param`]): read as sent, `link_%70…` named a tenant that does not
/// exist, and the page acted on the partner it decodes to without its lock.
fn page_tenant(app: &App, path: &str) -> PageTenant {
    let (page, id) = page_and_id(path);
    let Some(id) = id else {
        return PageTenant::NoLink;
    };
    let named = match page {
        "widget" => identity::link_slug(&id).map(str::to_owned),
        // An id of another form names no link, whether this replica has seen it or not.
        "magic-link" if !crate::store::leaf::is_magic_link_id(&id) => None,
        "magic-link" => {
            return app
                .store
                .leaf()
                .owner_of_link(&id)
                .map_or(PageTenant::Unseen, |account| {
                    PageTenant::Of(identity::leaf_label(&account.username))
                });
        }
        _ => None,
    };
    named.map_or(PageTenant::NoLink, PageTenant::Of)
}

/// An end user's page's name and the link id its address holds, percent-decoded as its
/// route reads it ([`crate::wire::path_param`]).
fn page_and_id(path: &str) -> (&str, Option<String>) {
    let mut segments = path.trim_start_matches('/').split('/');
    let page = segments.next().unwrap_or_default();
    (page, segments.next().map(crate::wire::path_param))
}

/// Whose an end user's page is ([`page_tenant`]).
#[derive(Debug, PartialEq, Eq)]
enum PageTenant {
    /// The tenant its link's id names.
    Of(String),
    /// A Leaf page's link this replica has not seen: any tenant's, or none.
    Unseen,
    /// No link's: its address names none (a widget's id that is no link id).
    NoLink,
}

/// Seconds a client is asked to wait when the shared database is unavailable.
const UNAVAILABLE_RETRY_AFTER_SECS: u32 = 1;

/// The answer while the shared database cannot be reached: 503 in the envelope of the API
/// whose path it is, with `Retry-After`. Nothing is served from a copy that may be stale;
/// nothing was changed, unless the connection was lost while the request's changes were
/// being committed, when the message says they may have been saved.
fn unavailable(envelope: &Envelope, error: &crate::persist::shared::Unavailable) -> Response {
    if error.busy {
        tracing::warn!(%error, "answering 503: a lock was held past the lock timeout");
    } else {
        tracing::error!(%error, in_doubt = error.in_doubt, "answering 503: the shared database is unavailable");
    }
    // Where the database is, and what its driver said, are for linkbox's log, not for any
    // caller: a stranger's key reads this too.
    let message = if error.in_doubt {
        "The sandbox's shared database stopped answering while this request's changes were \
         being saved, so they may or may not have been saved (linkbox's log says why). Read \
         the resource again before retrying (linkbox reconnects by itself)."
    } else if error.busy {
        "The sandbox is busy: another request (on this replica or another) held what this \
         one needs for longer than linkbox waits. Nothing was changed; try again shortly."
    } else {
        "The sandbox's shared database is unavailable (linkbox's log says why). Nothing was \
         changed; try again shortly (linkbox reconnects by itself)."
    }
    .to_owned();
    let mut response = envelope.failure(
        StatusCode::SERVICE_UNAVAILABLE,
        "STATE_UNAVAILABLE",
        message,
    );
    response.headers_mut().insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from(UNAVAILABLE_RETRY_AFTER_SECS),
    );
    response
}

/// `answer`'s response, or, if it panics, a 500 in `envelope`. A panic is a bug in
/// linkbox; without this its connection would close with no answer at all. What the
/// request changed is not rolled back in memory (with a database, its transaction is), so
/// the message says it may have been applied. Locks are `parking_lot`'s, which a panic does
/// not poison, so the next request is served as usual.
async fn unpanicked(envelope: &Envelope, answer: impl Future<Output = Response>) -> Response {
    use futures_util::FutureExt;
    match std::panic::AssertUnwindSafe(answer).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => internal(envelope, panic.as_ref()),
    }
}

/// The 500 for a request whose handler panicked.
fn internal(envelope: &Envelope, panic: &(dyn std::any::Any + Send)) -> Response {
    let cause = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic");
    tracing::error!(cause, "answering 500: the request's handler panicked");
    let message = String::from(
        "linkbox failed while answering this request (a bug; it is in linkbox's log). It may \
         have been applied in part: read the resource again before retrying.",
    );
    envelope.failure(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", message)
}

/// The API whose envelope speaks for linkbox's own failure of a request (a 500 or 503),
/// read off its path before the request moves on. Only a Leaf path is kept: Leaf's problem
/// body names it, the other envelopes do not, so their requests copy nothing.
enum Envelope {
    M2m,
    Leaf(String),
    Sandbox,
    /// An end user's page ([`pages::owns`]): an HTML page, as a browser shows one.
    Page,
}

impl Envelope {
    /// The envelope for a request to `path`: an end user's page is answered as a page,
    /// but the Leaf page's upload (`/magic-link/{id}/upload`) asked for by a client that
    /// takes no HTML ([`pages::takes_html`]) in Leaf's problem body, as the upload's own
    /// refusals are.
    fn of(path: &str, headers: &http::HeaderMap) -> Envelope {
        if m2m::owns(path) {
            Envelope::M2m
        } else if leaf::owns(path) {
            Envelope::Leaf(path.to_owned())
        } else if pages::owns(path) {
            let upload = path.starts_with("/magic-link/") && path.ends_with("/upload");
            if upload && !pages::takes_html(headers) {
                Envelope::Leaf(path.to_owned())
            } else {
                Envelope::Page
            }
        } else {
            Envelope::Sandbox
        }
    }

    /// `status` with `message`: M2M's `INTERNAL_ERROR`, Leaf's problem body, or the control
    /// API's `control_code`.
    fn failure(&self, status: StatusCode, control_code: &'static str, message: String) -> Response {
        self.error(status, (ErrorCode::InternalError, control_code), message)
    }

    /// The 503 (`Retry-After: 1`) to a body, or an answer, that cannot be held now
    /// ([`crate::bodies`]), as each API answers a request body it has no room for; an
    /// answer to a request that changed something says so (`safe` false).
    fn busy(&self, refused: crate::bodies::Refused, safe: bool) -> Response {
        let message = if safe {
            crate::wire::busy_message(refused)
        } else {
            crate::wire::ANSWER_BUSY
        };
        match self {
            Envelope::M2m => m2m::error::ApiError::Busy(message).into_response(),
            Envelope::Leaf(path) => leaf::error::ApiError::Busy(message).into_response(path),
            Envelope::Sandbox => control::error::ControlError::Busy(message).into_response(),
            Envelope::Page => {
                let mut response = pages::failure(StatusCode::SERVICE_UNAVAILABLE, message);
                response.headers_mut().insert(
                    http::header::RETRY_AFTER,
                    http::HeaderValue::from(crate::wire::BUSY_RETRY_AFTER_SECS),
                );
                response
            }
        }
    }

    /// `status` with `message` in this envelope, with the M2M or the control API's `code`.
    fn error(
        &self,
        status: StatusCode,
        (m2m_code, control_code): (ErrorCode, &'static str),
        message: String,
    ) -> Response {
        match self {
            Envelope::M2m => m2m::error::error_response(status, m2m_code, message),
            Envelope::Leaf(path) => leaf::error::problem_with(status, path, message),
            Envelope::Sandbox => control::error(status, control_code, message),
            Envelope::Page => pages::failure(status, &message),
        }
    }
}

/// What the request log reads off a request before it moves on: nothing while its line
/// would not be written.
type LogFields = Option<(tracing::Level, Method, String, Option<Arc<str>>)>;

fn log_fields(request: &Request) -> LogFields {
    let level = log::level(&request.path);
    log::enabled(level).then(|| {
        (
            level,
            request.method.clone(),
            request.path.clone(),
            request.caller.tenant().cloned(),
        )
    })
}

/// The request's log line, when it is written.
fn log_line(fields: LogFields, response: &Response, started: Instant) {
    if let Some((level, method, path, tenant)) = fields {
        log::request(
            level,
            &method,
            &path,
            response,
            started.elapsed(),
            tenant.as_deref(),
        );
    }
}

/// Bodies the journal reads back from a response: anything larger passes unread.
const READ_BACK_LIMIT: u64 = 1024 * 1024;

/// The response's body for the journal, and the response to send, unchanged. Only bodies
/// whose whole size is known and at most [`READ_BACK_LIMIT`] are read.
async fn read_back(response: Response) -> (Response, Option<bytes::Bytes>) {
    use http_body_util::BodyExt;
    let known = hyper::body::Body::size_hint(response.body()).exact();
    if known.is_none_or(|size| size > READ_BACK_LIMIT) {
        return (response, None);
    }
    let (parts, body) = response.into_parts();
    match body.collect().await {
        Ok(collected) => {
            let bytes = collected.to_bytes();
            (
                Response::from_parts(parts, bytes.clone().into()),
                Some(bytes),
            )
        }
        Err(error) => {
            tracing::error!(%error, "a response body could not be read back");
            (
                Response::from_parts(parts, bytes::Bytes::new().into()),
                None,
            )
        }
    }
}

/// The fault table's say on a vendor request: a delay, then the real handler, a faulted
/// answer or a dropped connection. Without a fault, `next`'s own future, nothing around it;
/// a struck request's steps are boxed, so the delay's timer and the request held across it
/// take no room in every other request's future. A request answered or dropped in its
/// route's place has its body read as the route would have read it ([`read_as_routed`]),
/// for the journal.
fn gate<'a, F, Fut>(
    app: &App,
    surfaces: &'a Surfaces,
    request: Request,
    next: F,
) -> Either<Fut, std::pin::Pin<Box<dyn Future<Output = Response> + Send + 'a>>>
where
    F: FnOnce(Request) -> Fut + Send + 'a,
    Fut: Future<Output = Response> + Send + 'a,
{
    let tenant = request.caller.tenant().map(|tenant| &**tenant);
    let Some(strike) = app.faults.strike(&request.method, &request.path, tenant) else {
        return Either::Left(next(request));
    };
    // In a sandbox shared by replicas this runs inside the request's transaction: a delay
    // waited here would hold its locks (every replica's requests for the tenant, or for
    // all of them, behind it) and, past a minute, lose the transaction to the database's
    // idle timeout. There the delay follows the work instead ([`Deferred`]); the answer
    // still comes that much later.
    let (delay, deferred) = match strike.delay {
        Some(delay) if app.replica.is_some() => (None, Some(Deferred(delay))),
        delay => (delay, None),
    };
    // Nor is a body waited for there: one not read before the transaction (a stranger's,
    // whose route would refuse it unread) is journaled as none. Read here, a stranger's
    // body sent slowly to a faulted path held the fault table's lock, and every request a
    // fault may strike waited, 10 s at a time.
    let reads = app.replica.is_none();
    Either::Right(Box::pin(async move {
        let mut request = request;
        if let Some(delay) = delay {
            // Read first, as the route would read it: a client that gives up during the
            // delay (a test of its timeouts) is journaled with its body ([`Unanswered`]), so
            // a `verify` by body counts it. The route then reads the same body again. Only a
            // body declared within what the journal keeps: one read now is held through the
            // delay (up to two minutes) outside what `--max-bodies-mib` counts, so a larger
            // one waits in its socket as before, and a hung-up entry has none.
            if declared_within(&request.headers, JOURNAL_BODY_LIMIT) {
                read_as_routed(surfaces, &mut request).await;
            }
            // The head waits through the delay too, counted as a body's is: uncounted, a
            // new key's delay of two minutes on its own path held 60 KB heads by the
            // hundred per HTTP/2 connection.
            let _head = match request.hold_head() {
                Ok(held) => held,
                Err(refused) => {
                    return Envelope::of(&request.path, &request.headers).busy(refused, true);
                }
            };
            tokio::time::sleep(delay).await;
        }
        let mut response = match strike.action {
            Action::Pass => next(request).await,
            Action::Drop => {
                if reads {
                    read_as_routed(surfaces, &mut request).await;
                }
                let mut response = Response::new(bytes::Bytes::new().into());
                response.extensions_mut().insert(DropConnection);
                response
            }
            Action::Answer { status, body } => {
                if reads {
                    read_as_routed(surfaces, &mut request).await;
                }
                faulted::answer(&request.path, status, body)
            }
        };
        if let Some(deferred) = deferred {
            response.extensions_mut().insert(deferred);
        }
        response
    }))
}

/// Whether `headers` declare a body (`Content-Length`) of at most `most` bytes.
fn declared_within(headers: &http::HeaderMap, most: usize) -> bool {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok())
        .is_some_and(|length| length <= most)
}

/// Reads the body of a request a fault answers in its route's place as far as the route
/// would have read it ([`Router::reads`]), so that its journal entry keeps the body as any
/// other entry does: whole within the route's limit; none past it (left to be drained, as
/// the route leaves it), for a route that reads none, or for a path no route serves.
async fn read_as_routed(surfaces: &Surfaces, request: &mut Request) {
    let router = &surfaces.for_path(&request.path).router;
    if let Some(limit) = router.reads(&request.method, &request.path) {
        let limit = match limit {
            crate::wire::router::CALLERS_MOST => {
                usize::try_from(request.app.bodies.caller_most()).unwrap_or(usize::MAX)
            }
            limit => limit,
        };
        // Kept in the request's body slot, where the journal reads it; a body that cannot
        // be had is journaled as none, as the route's own refusal of it would be.
        let _ = request.body(limit).await;
    }
}

/// The route's answer, or the refusal of the surface whose paths these are.
async fn dispatch(surfaces: &Surfaces, request: Request) -> Response {
    let surface = surfaces.for_path(&request.path);
    if let Some(preflight) = cors::preflight(
        &request.app.settings,
        &surface.router,
        &request.method,
        &request.path,
        &request.headers,
    ) {
        return preflight;
    }
    match surface.router.find(&request.method, &request.path) {
        Found::Route(handler, params) => {
            let handler = handler.clone();
            handler(request.with_params(params)).await
        }
        Found::WrongMethod(allow) => (surface.wrong_method)(&request.method, &request.path, allow),
        Found::Nothing => (surface.not_found)(&request.method, &request.path),
    }
}

/// With a state file, holds `response` until everything recorded before it is committed; if
/// that fails, a 503 `STATE_NOT_SAVED` in the envelope of the API whose path it is, as
/// [`unavailable`]'s (M2M's `INTERNAL_ERROR`, Leaf's problem body, the control API's code).
/// Where the file is, as where the database is, is for linkbox's log, not for any caller: a
/// stranger's key reads this too.
async fn durable(app: &App, envelope: &Envelope, response: Response) -> Response {
    match app.sink.settled().await {
        Ok(()) => response,
        Err(error) if error.gone => {
            tracing::error!(%error, "answering 503: the state file is gone");
            envelope.failure(
                StatusCode::SERVICE_UNAVAILABLE,
                "STATE_NOT_SAVED",
                format!(
                    "The state file could not be written: {}. This request's change was made \
                     in memory only, and no change will be saved from now on: the file at the \
                     state file's path is not the one linkbox opened. Stop linkbox (what it \
                     holds in memory is then lost) and start it again; put the file back at \
                     its path to go on saving. Requests that change nothing are answered as \
                     usual meanwhile.",
                    error.reason,
                ),
            )
        }
        Err(error) => {
            tracing::error!(%error, "answering 503: the change is not durable yet");
            envelope.failure(
                StatusCode::SERVICE_UNAVAILABLE,
                "STATE_NOT_SAVED",
                format!(
                    "The state file could not be written: {}. This request's change was made \
                     in memory but none of it is in the state file yet; linkbox keeps retrying \
                     the save and will write all of it at once when the file is writable \
                     again, or none of it if it stops first. Requests that change nothing are \
                     answered as usual meanwhile.",
                    error.reason,
                ),
            )
        }
    }
}

/// Whether `path` is the control API's own (never faulted, never journaled).
fn is_control(path: &str) -> bool {
    control::owns(path)
}

/// Serves `app` on an already bound `listener` until `shutdown` completes, with the webhook
/// engine running alongside and stopped after the last connection closes; then closes the
/// state file, if any, with everything committed.
pub async fn run(
    listener: tokio::net::TcpListener,
    app: App,
    shutdown: impl Future<Output = ()>,
) -> Result<(), crate::persist::Unsaved> {
    let (stop_engine, engine_stopped) = tokio::sync::oneshot::channel::<()>();
    let engine = tokio::spawn(webhooks::engine::run(
        app.webhooks.clone(),
        app.clock.clone(),
        webhooks::engine::Delivery::of(&app.settings),
        async {
            let _ = engine_stopped.await;
        },
    ));
    let (stop_catch_up, catch_up_stopped) = tokio::sync::oneshot::channel::<()>();
    let catch_up = tokio::spawn(crate::app::replica::catch_up(app.clone(), async {
        let _ = catch_up_stopped.await;
    }));
    let limits = app.settings.connections;
    let pipeline = Pipeline::new(app.clone());
    let answer = move |request: http::Request<hyper::body::Incoming>| match pipeline
        .without_host(&request)
    {
        Some(refusal) => Either::Left(std::future::ready(refusal)),
        None => pipeline.answer(request),
    };
    serve::serve_answers(listener, answer, limits, shutdown).await;
    let _ = stop_engine.send(());
    let _ = stop_catch_up.send(());
    let _ = engine.await;
    let _ = catch_up.await;
    let sink = app.sink.clone();
    match tokio::task::spawn_blocking(move || sink.close()).await {
        Ok(closed) => closed,
        Err(_) => {
            tracing::error!("closing the state file failed");
            Err(crate::persist::Unsaved::Failed {
                path: app.settings.state.clone().unwrap_or_default(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Options, Settings};
    use http::header;

    fn app() -> App {
        App::new(Settings::resolve(
            Options::default(),
            "127.0.0.1:1".parse().expect("addr"),
        ))
    }

    /// A control write carrying both a partner key and a valid Leaf token acts on the Leaf
    /// account, as its scope does, and so makes and locks the account's row in a shared
    /// sandbox; one carrying either alone acts on its own.
    #[test]
    fn a_control_write_with_a_key_and_a_token_is_the_accounts() {
        let app = app();
        let now = app.clock.now();
        let token =
            crate::ops::tokens::issue(app.store.leaf(), "both", false, now).expect("a token");
        let key = format!("m2m_test_{}", "b".repeat(32));
        let header = |name: &'static str, value: &str| {
            (
                http::HeaderName::from_static(name),
                http::HeaderValue::from_str(value).expect("a header"),
            )
        };
        let bearer = header("authorization", &format!("Bearer {token}"));
        let keyed = header("x-api-key", &key);
        let writer = |fields: &[&(http::HeaderName, http::HeaderValue)]| {
            let headers: http::HeaderMap = fields.iter().map(|&field| field.clone()).collect();
            control_writer(&app, &headers)
        };
        let partner = crate::store::m2m::open_mode_slug(&key);
        assert_eq!(writer(&[&keyed]), Some(partner.to_string()));
        assert_eq!(writer(&[&bearer]).as_deref(), Some("leaf:both"));
        assert_eq!(writer(&[&keyed, &bearer]).as_deref(), Some("leaf:both"));
    }

    /// `request`'s answer through the whole pipeline, its body read whole.
    async fn reply(request: http::Request<String>) -> http::Response<bytes::Bytes> {
        use http_body_util::BodyExt;
        let response = Pipeline::new(app()).answer(request).await;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("a body").to_bytes();
        http::Response::from_parts(parts, body)
    }

    fn get(path: &str) -> http::Request<String> {
        http::Request::get(path)
            .body(String::new())
            .expect("a request")
    }

    /// A handler that panics is answered 500 in its API's envelope, not with a closed
    /// connection; one that does not is answered as it answered.
    #[tokio::test]
    async fn a_panicking_handler_is_a_500_in_its_apis_envelope() {
        use http_body_util::BodyExt;
        async fn body(response: Response) -> (StatusCode, String, serde_json::Value) {
            let status = response.status();
            let kind = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let bytes = response
                .into_body()
                .collect()
                .await
                .expect("a body")
                .to_bytes();
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let json = if kind.starts_with("text/html") {
                // The page's message, in its reason paragraph.
                let reason = text
                    .split_once("id=\"reason\">")
                    .and_then(|(_, rest)| rest.split_once("</p>"))
                    .map(|(reason, _)| reason.to_owned());
                serde_json::json!({ "page": reason })
            } else {
                serde_json::from_str(&text).expect("JSON")
            };
            (status, kind, json)
        }
        const BROWSER: &str = "text/html,application/xhtml+xml,*/*;q=0.8";
        let cases = [
            ("/partner/links", "", "application/json"),
            (
                "/services/widgets/api/magic-links",
                "",
                "application/problem+json",
            ),
            ("/_sandbox/seed", "", "application/json"),
            // An end user's page is answered as a page, whatever it accepts; the Leaf
            // page's upload, by a client taking no HTML, in Leaf's problem body.
            ("/widget/link_p00000000_000000000001/web", "", "text/html"),
            ("/magic-link/ml_1", "application/json", "text/html"),
            ("/magic-link/ml_1/connect", "*/*", "text/html"),
            ("/magic-link/ml_1/upload", BROWSER, "text/html"),
            ("/magic-link/ml_1/upload", "Text/HTML", "text/html"),
            (
                "/magic-link/ml_1/upload",
                "application/json",
                "application/problem+json",
            ),
        ];
        for (path, accept, kind) in cases {
            let mut headers = http::HeaderMap::new();
            headers.insert(header::ACCEPT, http::HeaderValue::from_static(accept));
            let envelope = Envelope::of(path, &headers);
            let panicked = unpanicked(&envelope, async { panic!("a bug at {path}") }).await;
            let (status, content_type, json) = body(panicked).await;
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
            assert!(content_type.starts_with(kind), "{path}: {content_type}");
            let message = if kind.starts_with("text/html") {
                json["page"].clone()
            } else if path.starts_with("/partner") {
                assert_eq!(json["success"], false);
                assert_eq!(json["error"]["code"], "INTERNAL_ERROR");
                json["error"]["message"].clone()
            } else if kind == "application/problem+json" {
                assert_eq!(json["status"], 500);
                assert_eq!(json["path"], path);
                json["detail"].clone()
            } else {
                assert_eq!(json["error"]["code"], "INTERNAL_ERROR");
                json["error"]["message"].clone()
            };
            let message = message.as_str().expect("a message").to_owned();
            assert!(
                message.starts_with("linkbox failed while answering"),
                "{message}"
            );
            assert!(
                !message.contains("a bug at"),
                "the panic stays in the log: {message}"
            );
        }
        let envelope = Envelope::of("/partner/links", &http::HeaderMap::new());
        let answered = unpanicked(&envelope, async { plain_answer() }).await;
        assert_eq!(answered.status(), StatusCode::ACCEPTED);
        // A page's busy answer is a page too, with when to come back.
        let busy = Envelope::Page.busy(crate::bodies::Refused::Full, true);
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(busy.headers().contains_key(header::RETRY_AFTER));
        let (_, content_type, page) = body(busy).await;
        assert!(content_type.starts_with("text/html"), "{content_type}");
        assert!(
            page["page"]
                .as_str()
                .is_some_and(|reason| !reason.is_empty()),
            "{page}"
        );
    }

    /// An end user's page names its tenant by its link's id: a widget's the partner whose
    /// slug the id embeds; a Leaf page's none until its link is seen; other addresses none.
    #[test]
    fn a_page_names_the_tenant_of_its_links_id() {
        let app = App::new(crate::config::Settings::resolve(
            crate::config::Options::default(),
            "127.0.0.1:1".parse().expect("addr"),
        ));
        assert_eq!(
            page_tenant(&app, "/widget/link_p0a1b2c3d_0123456789ab/m2m-basic/open"),
            PageTenant::Of("p0a1b2c3d".to_owned())
        );
        assert_eq!(
            identity::link_slug("link_acme_co_0123456789ab"),
            Some("acme_co")
        );
        assert_eq!(
            page_tenant(&app, "/widget/link_%70%30a1b2c3d_0123456789ab/m2m-basic"),
            PageTenant::Of("p0a1b2c3d".to_owned()),
            "read as the route reads it"
        );
        assert_eq!(
            page_tenant(&app, "/widget/nothing/m2m-basic"),
            PageTenant::NoLink
        );
        assert_eq!(page_tenant(&app, "/widget"), PageTenant::NoLink);
        assert_eq!(
            page_tenant(&app, "/magic-link/6f1c2a4e-8b7d-4c3e-9a1f-2b3c4d5e6f70"),
            PageTenant::NoLink,
            "no magicLinkId"
        );
        let unseen = crate::store::leaf::new_magic_link_id();
        assert_eq!(
            page_tenant(&app, &format!("/magic-link/{unseen}")),
            PageTenant::Unseen
        );
        assert_eq!(page_tenant(&app, "/_sandbox/ui"), PageTenant::NoLink);
    }

    fn plain_answer() -> Response {
        let mut response = Response::new(bytes::Bytes::new().into());
        *response.status_mut() = StatusCode::ACCEPTED;
        response
    }

    /// The pipeline's future is built in steps, each step's future moved into its caller's,
    /// so its size is paid a few times on every request: a layer that held its inner future
    /// twice, or a rare branch built inline (the shared database's transaction), once made
    /// it 81,176 bytes. A request held inline by each step (twice by each `async fn`) made
    /// it 4,016; with the request's fields in one box it is 1,264, in debug and release
    /// builds alike. The bound leaves room for growth, not for either.
    #[tokio::test]
    async fn a_request_future_stays_small() {
        const BOUND: usize = 3 * 1024;
        let pipeline = Pipeline::new(app());
        let request = pipeline.request(get("/_sandbox/health"));
        let future = handle(&pipeline.surfaces, request);
        let size = std::mem::size_of_val(&future);
        println!("a request's future: {size} bytes");
        assert!(
            size <= BOUND,
            "a request's future is {size} bytes, more than {BOUND}: some layer holds a \
             large future inline; box its rare branch or return the inner future"
        );
    }

    /// The health check's fixed answer, made before the pipeline, is the one the whole
    /// pipeline gives (a GET with a body goes the whole way): same status, headers and body,
    /// CORS included when it is on.
    #[tokio::test]
    async fn a_fixed_answer_is_the_one_the_whole_pipeline_gives() {
        use http_body_util::BodyExt;
        for cors in [Vec::new(), vec!["https://qa.example".to_owned()]] {
            let pipeline = Pipeline::new(App::new(Settings::resolve(
                Options {
                    cors: cors.clone(),
                    ..Options::default()
                },
                "127.0.0.1:1".parse().expect("addr"),
            )));
            let mut answers = Vec::new();
            for body in ["", "x"] {
                let request = http::Request::get("/_sandbox/health?probe=1")
                    .header(header::ORIGIN, "https://qa.example")
                    .body(body.to_owned())
                    .expect("a request");
                let fast = pipeline.fixed(&request).is_some();
                assert_eq!(
                    fast,
                    body.is_empty(),
                    "only a body-less GET is answered at once"
                );
                let response = pipeline.answer(request).await;
                let (parts, body) = response.into_parts();
                let body = body.collect().await.expect("a body").to_bytes();
                answers.push((parts.status, parts.headers, body));
            }
            assert_eq!(answers[0], answers[1], "cors: {cors:?}");
            let (status, headers, body) = &answers[0];
            assert_eq!(*status, StatusCode::OK);
            assert_eq!(headers[header::CONTENT_TYPE], "application/json");
            assert_eq!(
                headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_some(),
                !cors.is_empty()
            );
            let json: serde_json::Value = serde_json::from_slice(body).expect("json");
            assert_eq!(json["status"], "ok");
        }
        // Other methods and paths go the whole way.
        let pipeline = Pipeline::new(app());
        assert!(pipeline.fixed(&get("/_sandbox/clock")).is_none());
        let head = http::Request::head("/_sandbox/health")
            .body(String::new())
            .expect("a request");
        assert!(pipeline.fixed(&head).is_none());
    }

    async fn problem(method: &str, path: &str) -> (u16, serde_json::Value) {
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .body(String::new())
            .expect("a request");
        let response = reply(request).await;
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let body = serde_json::from_slice(response.body()).expect("json");
        (response.status().as_u16(), body)
    }

    /// A body reaches its handler whole through the pipeline, and a body-less request is
    /// answered without one.
    #[tokio::test]
    async fn a_body_reaches_its_handler_through_the_pipeline() {
        let request = http::Request::post("/partner/links")
            .header("x-api-key", "m2m_test_00000000000000000000000000000042")
            .header(header::CONTENT_TYPE, "application/json")
            .body(r#"{"referenceId":"cust-7","metadata":{"orderId":"ORD-7"}}"#.to_owned())
            .expect("a request");
        let response = reply(request).await;
        assert_eq!(response.status(), 201, "{:?}", response.body());
        let link: serde_json::Value = serde_json::from_slice(response.body()).expect("json");
        assert_eq!(link["data"]["referenceId"], "cust-7");
        let request = http::Request::post("/partner/links")
            .header("x-api-key", "m2m_test_00000000000000000000000000000042")
            .body(String::new())
            .expect("a request");
        assert_eq!(reply(request).await.status(), 400);
    }

    /// A body is read ahead of a fault's delay only when declared within what the journal
    /// keeps: a larger one, or one of no declared length, waits in its socket.
    #[test]
    fn only_a_body_declared_within_the_journals_limit_is_read_ahead_of_a_delay() {
        let declared = |length: Option<&str>| {
            let mut headers = http::HeaderMap::new();
            if let Some(length) = length {
                headers.insert(
                    http::header::CONTENT_LENGTH,
                    length.parse().expect("a value"),
                );
            }
            declared_within(&headers, JOURNAL_BODY_LIMIT)
        };
        assert!(declared(Some("0")));
        assert!(declared(Some(&JOURNAL_BODY_LIMIT.to_string())));
        assert!(!declared(Some(&(JOURNAL_BODY_LIMIT + 1).to_string())));
        assert!(!declared(Some("ten")));
        assert!(!declared(None));
    }

    /// A request a fault answers or drops in its route's place is journaled with its body as
    /// the route would have read it: whole within the route's limit, so a verify by body
    /// counts it; none past that limit, nor where the route reads no body, as for a request
    /// no fault touched.
    #[tokio::test]
    async fn a_faulted_request_is_journaled_with_the_body_its_route_would_have_read() {
        use crate::journal::JournalFilter;
        let app = app();
        let pipeline = Pipeline::new(app.clone());
        let fault = |fault: serde_json::Value| {
            let fault = serde_json::from_value(fault).expect("a fault");
            app.faults.add(fault, None).expect("added");
        };
        let journaled = |method: &str, path: &str, body: String| {
            let request = http::Request::builder()
                .method(method)
                .uri(path)
                .header("x-api-key", "m2m_test_00000000000000000000000000000042")
                .header(header::CONTENT_TYPE, "application/json")
                .body(body)
                .expect("a request");
            let answer = pipeline.answer(request);
            let journal = app.journal.clone();
            async move {
                let response = answer.await;
                let newest = journal.list(&JournalFilter::default(), None).remove(0);
                (response, newest.request.body)
            }
        };
        let create = r#"{"referenceId":"cust-7"}"#.to_owned();
        fault(serde_json::json!({"status": 503, "times": 1}));
        let (answered, body) = journaled("POST", "/partner/links", create.clone()).await;
        assert_eq!(answered.status(), 503);
        assert_eq!(
            body.as_deref(),
            Some(create.as_str()),
            "answered by a status"
        );
        fault(serde_json::json!({"drop": true, "times": 1}));
        let (dropped, body) = journaled("POST", "/partner/links", create.clone()).await;
        assert!(dropped.extensions().get::<DropConnection>().is_some());
        assert_eq!(body.as_deref(), Some(create.as_str()), "dropped");

        fault(serde_json::json!({"status": 503}));
        let form = "action=complete".to_owned();
        let path = "/widget/link_x/transfer/operation";
        let (_, body) = journaled("POST", path, form.clone()).await;
        assert_eq!(
            body.as_deref(),
            Some(form.as_str()),
            "within the page's limit"
        );
        let (answered, body) =
            journaled("POST", path, "x".repeat(crate::pages::FORM_BYTES + 1)).await;
        assert_eq!(answered.status(), 503, "the fault still answers");
        assert_eq!(
            body, None,
            "past the route's limit, as its own answer keeps it"
        );
        let (_, body) = journaled("GET", "/partner/links", create.clone()).await;
        assert_eq!(body, None, "a route that reads no body");
        let (_, body) = journaled("POST", "/partner/nowhere", create).await;
        assert_eq!(body, None, "no route");
    }

    /// Heavy work is done off the serving thread: while a heavy request waits, half way,
    /// for its partner's lock, the thread that serves it answers another partner's request.
    /// Worked on in place, it would hold that thread, and the lock would never be let go
    /// (the test says so instead of waiting forever). Heavy by its size: a create with a
    /// body of megabytes, whose answer and journal entry are the ones it would have had in
    /// place. Heavy by its nature: a seed, and a Leaf list asked for whole (no `page`).
    #[test]
    fn a_light_request_is_answered_while_a_heavy_one_is_worked_on() {
        for heavy in [
            Heavy::Create,
            Heavy::Seed,
            Heavy::LeafList,
            Heavy::Dashboard,
        ] {
            let (done, finished) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                let _ = done.send(runtime.block_on(beside_a_light_read(heavy)));
            });
            match finished.recv_timeout(std::time::Duration::from_secs(60)) {
                Ok(order) => assert_eq!(order, ["light", "heavy"], "{heavy:?}"),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    panic!("{heavy:?} held the serving thread: the light request never ran")
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("{heavy:?}: the scenario failed; its panic is above")
                }
            }
        }
    }

    /// A request of megabytes hung up on before it is answered is journaled (its body
    /// redacted and copied) on a heavy thread, as an answered one's is: with every heavy
    /// thread taken, the entry waits its turn and the serving thread goes on. Recorded
    /// where the request's future was dropped, a stranger's dropped uploads held every
    /// request of that thread for seconds each.
    #[test]
    fn a_heavy_request_hung_up_on_is_journaled_off_the_serving_thread() {
        const KEY: &str = "m2m_test_00000000000000000000000000000045";
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let pipeline = Pipeline::new(app());
            let partner = partner_of(&pipeline, KEY);
            // Every heavy thread busy until the test lets go.
            let turns = std::thread::available_parallelism().map_or(1, usize::from);
            let (release, released) = std::sync::mpsc::channel::<()>();
            let released = Arc::new(parking_lot::Mutex::new(released));
            let (started, starts) = std::sync::mpsc::channel();
            let blockers: Vec<_> = (0..turns)
                .map(|_| {
                    let (released, started) = (released.clone(), started.clone());
                    tokio::spawn(offload::run(None, move || {
                        let _ = started.send(());
                        let _ = released.lock().recv();
                    }))
                })
                .collect();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            let mut taken = 0;
            while taken < turns {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the heavy threads taken"
                );
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                taken += starts.try_iter().count();
            }
            let body = serde_json::json!({
                "referenceId": "hung-up",
                "metadata": {"note": "x".repeat(offload::HEAVY_BYTES)},
            })
            .to_string();
            let held = partner.hold();
            let upload = pipeline.answer(
                http::Request::post("/partner/links")
                    .header("x-api-key", KEY)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(body)
                    .expect("a request"),
            );
            let mut upload = Box::pin(upload);
            let unanswered =
                tokio::time::timeout(std::time::Duration::from_millis(200), &mut upload);
            assert!(
                unanswered.await.is_err(),
                "answered before its lock was let go"
            );
            drop(upload);
            let journaled = |journal: &journal::Journal| {
                journal
                    .list(&journal::JournalFilter::default(), None)
                    .iter()
                    .any(|entry| entry.status.is_none())
            };
            assert!(
                !journaled(&pipeline.app.journal),
                "journaled on the serving thread while every heavy thread was taken"
            );

            drop(held);
            for _ in 0..turns {
                let _ = release.send(());
            }
            for blocker in blockers {
                blocker.await.expect("the blocker ends");
            }
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while !journaled(&pipeline.app.journal) {
                assert!(std::time::Instant::now() < deadline, "never journaled");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            let entries = pipeline
                .app
                .journal
                .list(&journal::JournalFilter::default(), None);
            let entry = entries
                .iter()
                .find(|entry| entry.status.is_none())
                .expect("the entry");
            assert!(
                entry
                    .request
                    .body
                    .as_deref()
                    .is_some_and(|body| body.contains("hung-up")),
                "with its body"
            );
        });
    }

    /// A hung-up request's body waiting to be recorded holds its bytes of the bodies'
    /// bound, let go with the hold; one past the room left is recorded in place, and one
    /// light to record takes no hold.
    #[test]
    fn a_hung_up_body_waiting_to_be_recorded_holds_its_bytes() {
        let app = app();
        let length = JOURNAL_BODY_LIMIT + 1;
        let hold = hold_to_record(&app, 100, length).expect("room for it");
        assert_eq!(app.bodies.held(), length as u64);
        drop(hold);
        assert_eq!(app.bodies.held(), 0);
        assert!(hold_to_record(&app, 100, JOURNAL_BODY_LIMIT).is_none());
        let past = usize::try_from(app.bodies.caller_most()).expect("a size") + 1;
        assert!(hold_to_record(&app, 100, past).is_none());
        assert_eq!(app.bodies.held(), 0);
    }

    #[derive(Debug, Clone, Copy)]
    enum Heavy {
        Create,
        Seed,
        LeafList,
        Dashboard,
    }

    /// The partner of `key` in `pipeline`'s store, made on first use.
    fn partner_of(pipeline: &Pipeline, key: &str) -> Arc<crate::store::m2m::Partner> {
        pipeline
            .app
            .store
            .m2m()
            .authenticate(key)
            .expect("the partner")
    }

    /// A partner's dashboard asked for while the partner's lock is held, and another
    /// partner's list of links meanwhile: the order they were answered in. The page is
    /// heavy by its nature (the journal's newest entries, their queries redacted as shown).
    async fn a_dashboard_beside_a_light_read() -> Vec<&'static str> {
        const KEY: &str = "m2m_test_00000000000000000000000000000044";
        let pipeline = Pipeline::new(app());
        let partner = partner_of(&pipeline, KEY);
        let page = http::Request::get(format!("/_sandbox/ui?key={KEY}"));
        held_beside_a_light_read(&pipeline, partner.hold(), page).await
    }

    /// `heavy` (a GET) asked for while `held` is held, and another partner's list of links
    /// meanwhile: the order they were answered in, `heavy` answered 200 once `held` is let
    /// go.
    async fn held_beside_a_light_read(
        pipeline: &Pipeline,
        held: impl Sized,
        heavy: http::request::Builder,
    ) -> Vec<&'static str> {
        let heavy = pipeline.answer(heavy.body(String::new()).expect("a request"));
        let mut heavy = std::pin::pin!(heavy);
        let mut order = vec![light_meanwhile(pipeline, heavy.as_mut()).await];
        drop(held);
        assert_eq!(heavy.await.status(), StatusCode::OK);
        order.push("heavy");
        order
    }

    /// Which is answered first: `heavy` (waiting on a lock the test holds), or another
    /// partner's list of links asked for meanwhile (`"light"`).
    async fn light_meanwhile<F: std::future::Future>(
        pipeline: &Pipeline,
        heavy: std::pin::Pin<&mut F>,
    ) -> &'static str {
        let light = pipeline.answer(
            http::Request::get("/partner/links")
                .header("x-api-key", "m2m_test_00000000000000000000000000000043")
                .body(String::new())
                .expect("a request"),
        );
        tokio::select! {
            biased;
            _ = heavy => "heavy early",
            light = light => {
                assert_eq!(light.status(), StatusCode::OK);
                "light"
            }
        }
    }

    /// A Leaf account's whole list of magic links asked for while its lock is held, and a
    /// partner's list of links meanwhile: the order they were answered in.
    async fn a_leaf_list_beside_a_light_read() -> Vec<&'static str> {
        let pipeline = Pipeline::new(app());
        let accounts = pipeline.app.store.leaf();
        let account = accounts.account("farmco").expect("an account");
        let token = crate::ops::tokens::issue(accounts, "farmco", false, pipeline.app.clock.now())
            .expect("a token");
        let list = http::Request::get("/services/widgets/api/magic-link/provider")
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        held_beside_a_light_read(&pipeline, account.hold(), list).await
    }

    /// `heavy` sent while its partner's lock is held, and another partner's list of links
    /// meanwhile: the order they were answered in.
    async fn beside_a_light_read(heavy: Heavy) -> Vec<&'static str> {
        if let Heavy::LeafList = heavy {
            return a_leaf_list_beside_a_light_read().await;
        }
        if let Heavy::Dashboard = heavy {
            return a_dashboard_beside_a_light_read().await;
        }
        const KEY: &str = "m2m_test_00000000000000000000000000000042";
        let pipeline = Pipeline::new(app());
        let send = |request: http::request::Builder, body: String| {
            let answer = pipeline.answer(
                request
                    .header("x-api-key", KEY)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(body)
                    .expect("a request"),
            );
            async move {
                let (parts, body) = answer.await.into_parts();
                let body = http_body_util::BodyExt::collect(body)
                    .await
                    .expect("a body");
                let json: serde_json::Value =
                    serde_json::from_slice(&body.to_bytes()).expect("json");
                (parts.status, json)
            }
        };
        let (status, _) = send(
            http::Request::post("/partner/links"),
            r#"{"referenceId":"small-1"}"#.to_owned(),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        // Over a megabyte, of fewer values than a body may hold (`MAX_JSON_VALUES`).
        let metadata: serde_json::Map<String, serde_json::Value> = (0..4_000)
            .map(|i| {
                let value = format!("value number {i} {}", "x".repeat(300));
                (format!("key{i:05}"), value.into())
            })
            .collect();
        let big = serde_json::json!({"referenceId": "big-1", "metadata": metadata}).to_string();
        assert!(big.len() > 1024 * 1024, "{} bytes", big.len());
        let (path, body) = match heavy {
            Heavy::Create => ("/partner/links", big.clone()),
            Heavy::Seed => ("/_sandbox/seed", r#"{"api":"m2m","count":5}"#.to_owned()),
            Heavy::LeafList | Heavy::Dashboard => unreachable!("answered above"),
        };
        let partner = partner_of(&pipeline, KEY);
        let held = partner.hold();
        let mut order = Vec::new();
        let answer = send(http::Request::post(path), body);
        let mut answer = std::pin::pin!(answer);
        order.push(light_meanwhile(&pipeline, answer.as_mut()).await);
        drop(held);
        let (status, answered) = answer.await;
        assert_eq!(status, StatusCode::CREATED, "{answered}");
        order.push("heavy");
        if let Heavy::Seed = heavy {
            assert_eq!(partner.link_count(), 6);
            return order;
        }
        let link = answered["data"]["linkId"].as_str().expect("a link id");
        let (_, detail) = send(
            http::Request::get(format!("/partner/links/{link}")),
            String::new(),
        )
        .await;
        assert!(
            detail["data"]["metadata"] == serde_json::Value::Object(metadata),
            "the metadata is stored whole"
        );
        let entries = pipeline.app.journal.list(&Default::default(), None);
        let entry = entries
            .iter()
            .find(|entry| entry.request.body_truncated)
            .expect("the create is in the journal");
        assert_eq!(entry.status, Some(201));
        let kept = entry.request.body.as_deref().expect("a body");
        assert!(big.starts_with(kept), "the first bytes, as sent");
        assert_eq!(kept.len(), JOURNAL_BODY_LIMIT);
        order
    }

    #[tokio::test]
    async fn unknown_paths_under_api_and_services_are_404_problems() {
        for path in ["/api/unknown", "/services/widgets/api/nothing"] {
            let (status, body) = problem("GET", path).await;
            assert_eq!(status, 404);
            assert_eq!(body["path"], path);
            assert_eq!(body["message"], "error.http.404");
        }
    }

    #[tokio::test]
    async fn a_known_path_with_another_method_is_a_405_problem() {
        let (status, body) = problem("DELETE", "/services/widgets/api/magic-link/provider").await;
        assert_eq!(status, 405);
        assert_eq!(body["title"], "Method Not Allowed");
    }

    #[tokio::test]
    async fn a_request_without_a_token_is_a_401_problem() {
        let (status, body) = problem("GET", "/services/usermanagement/api/users").await;
        assert_eq!(status, 401);
        assert_eq!(
            body["detail"],
            linkbox_contracts::leaf::messages::FULL_AUTH_REQUIRED
        );
    }

    /// Log lines written while `run` runs on this thread, as JSON.
    #[derive(Clone, Default)]
    struct Captured(Arc<parking_lot::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn lines(&self) -> Vec<serde_json::Value> {
            String::from_utf8_lossy(&self.0.lock())
                .lines()
                .map(|line| serde_json::from_str(line).expect("a JSON log line"))
                .collect()
        }
    }

    /// Captures request lines on this thread.
    ///
    /// tracing caches each callsite's interest process-wide, computed by whichever thread
    /// reaches it first: a sibling test without a subscriber would pin the request line to
    /// "never" for every thread. A quiet global subscriber means no thread ever computes
    /// "never", and rebuilding the cache after installing ours heals a callsite reached
    /// before it was there.
    fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
        capture_at("linkbox::request=info")
    }

    /// Captures on this thread the lines `filter` lets through.
    fn capture_at(filter: &str) -> (Captured, tracing::subscriber::DefaultGuard) {
        static QUIET: std::sync::Once = std::sync::Once::new();
        QUIET.call_once(|| {
            // Another global subscriber already being set serves the same purpose.
            let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
        });
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(move || writer.clone())
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        tracing::callsite::rebuild_interest_cache();
        (captured, guard)
    }

    #[tokio::test]
    async fn every_request_gets_one_log_line_with_method_path_status_and_tenant() {
        let (captured, _guard) = capture();
        let request = http::Request::get("/partner/links?limit=1")
            .header("x-api-key", "m2m_test_00000000000000000000000000000042")
            .body(String::new())
            .expect("a request");
        reply(request).await;
        reply(get("/api/unknown")).await;
        let lines = captured.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        let fields = &lines[0]["fields"];
        assert_eq!(fields["method"], "GET");
        assert_eq!(fields["path"], "/partner/links");
        assert!(fields["status"].is_u64());
        assert!(fields["ms"].is_u64());
        let tenant = fields["tenant"].as_str().expect("tenant");
        assert!(tenant != "-" && !tenant.contains("m2m_test_"), "{tenant}");
        assert_eq!(lines[0]["level"], "INFO");
        assert!(fields.get("warnings").is_none(), "{fields}");
        assert_eq!(lines[1]["fields"]["status"], 404);
        assert_eq!(lines[1]["fields"]["tenant"], "-");
    }

    /// The health check's line is `debug`: a probe's every second would bury the rest at
    /// `info`. Other control requests keep theirs at `info`.
    #[tokio::test]
    async fn the_health_check_is_logged_at_debug_and_other_control_requests_at_info() {
        let (captured, guard) = capture();
        reply(get("/_sandbox/health")).await;
        reply(get("/_sandbox/clock")).await;
        let lines = captured.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["fields"]["path"], "/_sandbox/clock");
        drop(guard);
        let (captured, _guard) = capture_at("linkbox::request=debug");
        reply(get("/_sandbox/health")).await;
        let lines = captured.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["level"], "DEBUG");
        assert_eq!(lines[0]["fields"]["path"], "/_sandbox/health");
        assert_eq!(lines[0]["fields"]["status"], 200);
    }

    #[tokio::test]
    async fn a_request_line_carries_each_warning() {
        let (captured, _guard) = capture();
        let mut response = Response::new(bytes::Bytes::new().into());
        for warning in ["ignored unknown field \"a\"", "ignored unknown field \"b\""] {
            response.headers_mut().append(
                linkbox_contracts::m2m::WARNING_HEADER,
                http::HeaderValue::from_static(warning),
            );
        }
        log::request(
            tracing::Level::INFO,
            &Method::POST,
            "/partner/links",
            &response,
            std::time::Duration::from_millis(3),
            Some("acme"),
        );
        let lines = captured.lines();
        assert_eq!(
            lines[0]["fields"]["warnings"],
            "ignored unknown field \"a\"; ignored unknown field \"b\""
        );
        assert_eq!(lines[0]["fields"]["ms"], 3);
    }

    #[tokio::test]
    async fn the_landing_page_links_the_dashboard_docs_openapi_and_health() {
        let response = reply(get("/")).await;
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .is_ok_and(|value| value.starts_with("text/html"))
        );
        let body = String::from_utf8_lossy(response.body());
        // Relative to a `<base>` of linkbox's root, so a prefix a proxy adds stays on them.
        assert!(body.contains(r#"<base href="./">"#), "{body}");
        for href in ["_sandbox/ui", "docs", "openapi.json", "_sandbox/health"] {
            assert!(body.contains(&format!("href=\"{href}\"")), "{href}");
        }
        assert!(!body.contains("<script"));
    }

    /// The paths identity calls tenantless (no tenant's fault may name only them) are the
    /// routes reached without a tenant's credentials: the Leaf login, the pages outside the
    /// control API and the documents; no other vendor route is.
    #[test]
    fn the_tenantless_paths_are_the_routes_reached_without_credentials() {
        use crate::ops::identity::tenantless;
        let surfaces = Surfaces::new(&app());
        let path = |pattern: &str| {
            let segments: Vec<&str> = pattern
                .split('/')
                .map(|segment| {
                    if segment.starts_with('{') {
                        "x"
                    } else {
                        segment
                    }
                })
                .collect();
            segments.join("/")
        };
        for (method, pattern) in surfaces.m2m.router.list() {
            assert!(!tenantless(&path(pattern)), "{method} {pattern}");
        }
        for (method, pattern) in surfaces.leaf.router.list() {
            let login = *method == Method::POST && pattern == "/api/authenticate";
            assert_eq!(tenantless(&path(pattern)), login, "{method} {pattern}");
        }
        for (method, pattern) in surfaces.sandbox.router.list() {
            let path = path(pattern);
            assert!(is_control(&path) || tenantless(&path), "{method} {pattern}");
        }
        for (method, pattern) in surfaces.pages.router.list() {
            assert!(tenantless(&path(pattern)), "{method} {pattern}");
        }
    }

    #[test]
    fn every_route_is_an_openapi_operation_and_every_operation_is_routed() {
        let document: serde_json::Value =
            serde_json::from_str(&linkbox_contracts::openapi::json()).expect("json");
        let mut documented: Vec<String> = Vec::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("path item").keys() {
                documented.push(format!("{} {path}", method.to_uppercase()));
            }
        }
        // Pages and the documentation itself are not API operations.
        let undocumented = |path: &str| {
            path.starts_with("/widget/")
                || path.starts_with("/magic-link/")
                || path.starts_with("/_sandbox/ui")
                || path.starts_with("/docs/")
                || path == "/openapi.json"
                || path == "/"
        };
        let mut routed: Vec<String> = Surfaces::new(&app())
            .list()
            .into_iter()
            .filter(|(_, path)| !undocumented(path))
            .map(|(method, path)| format!("{method} {path}"))
            .collect();
        documented.sort();
        routed.sort();
        let missing: Vec<_> = documented
            .iter()
            .filter(|op| !routed.contains(op))
            .collect();
        let extra: Vec<_> = routed
            .iter()
            .filter(|op| !documented.contains(op))
            .collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "documented but not routed: {missing:?}\nrouted but not documented: {extra:?}"
        );
    }
}
