//! Shadow mode (`--shadow-m2m URL`, `--shadow-leaf URL`): linkbox between a partner's
//! application and the vendor's real deployment.
//!
//! For each request to a shadowed API's paths:
//! 1. An `m2m_live_` key is refused with the M2M 401 (nothing is forwarded) unless
//!    `--shadow-allow-live`.
//! 2. The request is forwarded once to the upstream: same method, path, query and body, and
//!    every end-to-end header. Hop-by-hop headers (and those `Connection` names), `Host`
//!    and `Accept-Encoding` are not forwarded — the last so that the upstream answers in an
//!    encoding linkbox can compare. Redirects are not followed. A target with what a URI
//!    cannot hold raw (UTF-8 sent unencoded) is sent percent-encoded, and the shadow is
//!    applied that same target ([`as_sent`]).
//! 3. The client gets the upstream's answer: its status, headers (hop-by-hop ones dropped)
//!    and body, byte for byte. An upstream that cannot be reached, or that answers more
//!    than [`MAX_UPSTREAM_BODY`] bytes, is a 502 in the API's own error shape, recorded as
//!    an error of the drift report, never as a difference.
//! 4. After the answer is on its way, the same request is applied to linkbox's own sandbox
//!    — the shadow — by one worker on a thread of its own (not a serving runtime's: a burst
//!    of answers that differ in many places held every request of the runtime it ran on for
//!    seconds), in the order the upstream answered, so a request that
//!    names an id the previous one created finds it mapped. The worker rewrites the
//!    upstream's ids and tokens to the shadow's ([`ids`]), dispatches the request straight
//!    to the routes (no faults: they would be drift of linkbox's own making), compares the
//!    two answers ([`linkbox_suite::shadow::compare`]), learns the ids both minted
//!    ([`linkbox_suite::shadow::pairs`]) and records what differs in the drift report
//!    ([`crate::drift`]), with one line on stderr (target `linkbox::drift`) per new
//!    difference. A HEAD's shadow answer loses its body, as its client's would: the
//!    vendor's has none, and a HEAD is compared on its status and headers. An upstream
//!    answer that is weather (a 5xx or a 429: the vendor could not take the request now)
//!    is neither applied nor compared: it is an error of the report, and the shadow stays
//!    in step with what the vendor did. A changing request answered with a 5xx, or not at
//!    all, may have been done all the same: its resource is in doubt until the next change
//!    to it, and what differs on it meanwhile is weather too ([`doubts`]). So is a change
//!    one side did and the other refused (the vendor's 200 to linkbox's own 429): the
//!    status differs, which is drift, and what then differs on the resource follows from
//!    it. linkbox's own answer is read whole, up to [`MAX_UPSTREAM_BODY`] as the vendor's
//!    is, however it is sent (a list of large items is streamed); past that it is not
//!    compared, and the report says so.
//!
//! An M2M key is its own shadow partner (open mode); a Leaf token is the one linkbox issued
//! when the same `/api/authenticate` was applied to the shadow. A Leaf request whose token
//! linkbox never saw issued, answered 2xx upstream, cannot be compared: it is an error of the
//! report, saying to authenticate through linkbox.
//!
//! Bounds: a request body is read up to the vendors' 10 MiB (beyond it, a 413 in the API's
//! shape, not forwarded); at most [`MAX_QUEUED`] requests and [`MAX_QUEUED_BYTES`] bytes wait
//! for the worker, and of them one tenant's at most [`MAX_QUEUED_PER_TENANT`] and
//! [`MAX_QUEUED_BYTES_PER_TENANT`] ([`Queued`]) — past any, the request is still forwarded
//! and answered but not compared (an error of the report).

mod doubts;
mod ids;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use linkbox_contracts::m2m::{ErrorCode, messages};
use linkbox_suite::Api;
use linkbox_suite::shadow::{self as compare, Answer, Exchange};
use tokio::sync::mpsc;
use warp::reply::Response;

use super::{Surfaces, dispatch};
use crate::app::App;
use crate::drift::Found;
use crate::journal;
use crate::ops::identity;
use crate::wire::{BodyError, Request};
use doubts::Doubts;
use ids::{Bearer, Ids};

/// Largest upstream answer linkbox passes on (and compares).
pub const MAX_UPSTREAM_BODY: usize = linkbox_suite::client::MAX_ANSWER_BYTES;
/// Requests waiting for the comparison worker at most.
pub const MAX_QUEUED: usize = 1024;
/// Bytes (requests, heads and bodies, and upstream answers) waiting for the comparison
/// worker at most.
pub const MAX_QUEUED_BYTES: usize = 64 * 1024 * 1024;
/// One tenant's requests waiting for the worker at most: a quarter of the queue, so that one
/// tenant's burst leaves the rest to everyone else's.
pub const MAX_QUEUED_PER_TENANT: usize = MAX_QUEUED / 4;
/// One tenant's bytes waiting for the worker at most: half the queue's, room for the largest
/// answer the vendor may give ([`MAX_UPSTREAM_BODY`]) and its request.
pub const MAX_QUEUED_BYTES_PER_TENANT: usize = MAX_QUEUED_BYTES / 2;
/// How long the upstream may take to answer.
pub const UPSTREAM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// The tracing target of new-difference lines.
pub const TARGET: &str = "linkbox::drift";

/// Shadow mode's state: the upstream client, the id map, the worker's queue.
pub(super) struct Shadow {
    m2m: Option<url::Url>,
    leaf: Option<url::Url>,
    allow_live: bool,
    client: Result<reqwest::Client, String>,
    ids: Arc<Ids>,
    queue: std::sync::OnceLock<mpsc::Sender<Job>>,
    queued: Arc<Queued>,
    /// Changes the vendor made that a full queue kept from the worker ([`Missed`]).
    missed: Arc<Missed>,
}

/// Changes the vendor answered with a success that were never queued for the worker (the
/// queue was full), so never applied to the shadow: the worker puts each one's resource in
/// doubt in its turn, before the first job queued after it, as it does a lost change's.
/// Dropped unrecorded, what the vendor then held differed from the shadow with nothing to
/// say why, and each read of it was drift. At most [`MAX_QUEUED`] are kept, the oldest
/// forgotten first.
#[derive(Default)]
struct Missed {
    /// Jobs queued so far: the turn of the next one.
    queued: std::sync::atomic::AtomicU64,
    /// Each missed change, with the turn of the first job queued after it.
    changes: parking_lot::Mutex<std::collections::VecDeque<(u64, Job)>>,
}

impl Missed {
    /// Keeps `job` (a change whose request body, past 4 KiB, is left out: a resource is
    /// named by its path, or a Leaf user by a small body's `id`).
    fn keep(&self, mut job: Job) {
        if job.body.len() > 4096 {
            job.body = Bytes::new();
        }
        let turn = self.queued.load(Ordering::Acquire);
        let mut changes = self.changes.lock();
        if changes.len() == MAX_QUEUED {
            changes.pop_front();
        }
        changes.push_back((turn, job));
    }

    /// The changes missed before the job of `turn` was queued, oldest first.
    fn before(&self, turn: u64) -> Vec<Job> {
        let mut changes = self.changes.lock();
        let due = changes
            .iter()
            .take_while(|(after, _)| *after <= turn)
            .count();
        changes.drain(..due).map(|(_, job)| job).collect()
    }
}

/// One request and the upstream's answer, waiting to be applied to the shadow.
struct Job {
    api: Api,
    method: Method,
    path: String,
    query: String,
    headers: HeaderMap,
    body: Bytes,
    /// `None`: the vendor gave no answer (the client got a 502), or the request was never
    /// queued ([`Missed`]), so it is not applied; a changing one only puts its resource in
    /// doubt, in its turn.
    upstream: Option<Upstream>,
    /// Its turn in the queue: the jobs queued before it.
    turn: u64,
    /// A change the vendor made that was never queued ([`Missed`]).
    missed: bool,
    /// The tenant whose share of the queue it takes ([`Queued`]).
    tenant: Option<Arc<str>>,
}

/// What the upstream answered.
struct Upstream {
    status: u16,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl Job {
    /// What it holds, heads (the client's and the vendor's) and bodies.
    fn bytes(&self) -> usize {
        let head = self.path.len()
            + self.query.len()
            + self
                .headers
                .iter()
                .map(|(name, value)| name.as_str().len() + value.len())
                .sum::<usize>();
        let answer = self.upstream.as_ref().map_or(0, |upstream| {
            upstream.body.len()
                + upstream
                    .headers
                    .iter()
                    .map(|(name, value)| name.len() + value.len())
                    .sum::<usize>()
        });
        head + self.body.len() + answer
    }
}

/// What waits for the worker, in all and per tenant: one tenant's burst (a load test through
/// the shadow) takes its share and leaves the rest of the queue to every other tenant's
/// requests, which a shared queue it had filled left uncompared.
#[derive(Default)]
struct Queued {
    held: parking_lot::Mutex<QueuedHeld>,
}

#[derive(Default)]
struct QueuedHeld {
    bytes: usize,
    /// Per tenant (`None`: requests of no tenant linkbox knows): jobs and bytes waiting.
    tenants: HashMap<Option<Arc<str>>, (usize, usize)>,
}

impl Queued {
    /// Takes room for `bytes` more of `tenant`, or says what is full.
    fn take(&self, tenant: &Option<Arc<str>>, bytes: usize) -> Result<(), String> {
        let mut held = self.held.lock();
        if held.bytes + bytes > MAX_QUEUED_BYTES {
            return Err(format!(
                "{MAX_QUEUED_BYTES} bytes of requests already wait for comparison"
            ));
        }
        let key = tenant.clone();
        let (jobs, tenant_bytes) = held.tenants.get(&key).copied().unwrap_or_default();
        if jobs >= MAX_QUEUED_PER_TENANT {
            return Err(format!(
                "{MAX_QUEUED_PER_TENANT} of this tenant's requests already wait for \
                 comparison (a tenant's share of the queue)"
            ));
        }
        if tenant_bytes + bytes > MAX_QUEUED_BYTES_PER_TENANT {
            return Err(format!(
                "{MAX_QUEUED_BYTES_PER_TENANT} bytes of this tenant's requests already wait \
                 for comparison (a tenant's share of the queue)"
            ));
        }
        held.bytes += bytes;
        held.tenants.insert(key, (jobs + 1, tenant_bytes + bytes));
        Ok(())
    }

    /// Gives back the room [`Queued::take`] took.
    fn give_back(&self, tenant: &Option<Arc<str>>, bytes: usize) {
        let mut held = self.held.lock();
        held.bytes = held.bytes.saturating_sub(bytes);
        let key = tenant.clone();
        if let Some((jobs, tenant_bytes)) = held.tenants.get_mut(&key) {
            *jobs = jobs.saturating_sub(1);
            *tenant_bytes = tenant_bytes.saturating_sub(bytes);
            if *jobs == 0 {
                held.tenants.remove(&key);
            }
        }
    }
}

impl Shadow {
    /// A control request (the drift report, the journal…) made with a Leaf token the vendor
    /// issued through linkbox, as a shadowed client holds: the token of the shadow account
    /// linkbox made for it stands in, so the tenant sees and clears its own. Any other
    /// request is left as it is.
    pub(super) fn control_caller(&self, request: &mut Request) {
        if self.leaf.is_none() {
            return;
        }
        if self.ids.bearer(&mut request.headers) == Bearer::Mapped {
            request.caller = identity::resolve(&request.app, &request.headers);
        }
    }

    /// A request to forward carrying a vendor token linkbox mapped is its shadow account's,
    /// resolved as if it had sent that account's token (its headers are forwarded as they
    /// came): its share of the bodies' bound and of the comparison queue, its journal, and
    /// the errors of its report are that tenant's. Read from the vendor's token, every Leaf
    /// client was no tenant: one share among them all, and none of its requests that could
    /// not be compared in its own report. Any other request is left as it is.
    pub(super) fn forwarded_caller(&self, request: &mut Request) {
        // Most requests carry no such token (an M2M key, in `Authorization` too): they are
        // told apart by one look-up, without a copy of their headers.
        let Some(token) = identity::bearer(&request.headers) else {
            return;
        };
        if self.ids.shadow(token).is_none() {
            return;
        }
        let mut headers = request.headers.clone();
        if self.ids.bearer(&mut headers) == Bearer::Mapped {
            request.caller =
                identity::resolve_for(&request.app, &headers, crate::m2m::owns(&request.path));
        }
    }

    /// Shadow mode as the settings ask, or `None` when no API is shadowed.
    pub(super) fn new(app: &App) -> Option<Shadow> {
        let settings = &app.settings.shadow;
        if !settings.any() {
            return None;
        }
        Some(Shadow {
            m2m: settings.m2m.clone(),
            leaf: settings.leaf.clone(),
            allow_live: settings.allow_live,
            client: client(settings),
            ids: Arc::default(),
            queue: std::sync::OnceLock::new(),
            queued: Arc::default(),
            missed: Arc::default(),
        })
    }

    /// The API a path belongs to and its upstream, when that API is shadowed.
    pub(super) fn covers(&self, path: &str) -> Option<(Api, &url::Url)> {
        if crate::m2m::owns(path) {
            self.m2m.as_ref().map(|url| (Api::M2m, url))
        } else if crate::leaf::owns(path) {
            self.leaf.as_ref().map(|url| (Api::Leaf, url))
        } else {
            None
        }
    }
}

/// The client that talks to the upstreams: rustls with the public roots, plus
/// `--shadow-ca-cert`, or any certificate with `--shadow-insecure`.
fn client(settings: &crate::config::Shadow) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .timeout(UPSTREAM_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(pem) = &settings.ca_cert {
        for certificate in reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|error| format!("--shadow-ca-cert is not a PEM bundle: {error}"))?
        {
            builder = builder.add_root_certificate(certificate);
        }
    }
    if settings.insecure {
        builder = builder.danger_accept_invalid_certs(true);
    }
    builder
        .build()
        .map_err(|error| format!("the upstream client could not be built: {error}"))
}

/// Answers a request to a shadowed API with the upstream's answer and queues the shadow's
/// side of it.
pub(super) async fn forward(
    surfaces: &Arc<Surfaces>,
    shadow: &Shadow,
    api: Api,
    base: &url::Url,
    mut request: Request,
) -> Response {
    let app = request.app.clone();
    let time = app.clock.now();
    let started = Instant::now();
    if api == Api::M2m && !shadow.allow_live && presents_live_key(&request.headers) {
        return crate::m2m::error::error_response(
            StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidApiKey,
            "Shadow mode forwards only m2m_test_ keys: this request carries an m2m_live_ key \
             and was not sent to the vendor (start linkbox with --shadow-allow-live to \
             forward live keys)"
                .to_owned(),
        );
    }
    if climbs(&request.path) {
        // The URL the upstream is sent would resolve the dot segments away: a path that
        // reads as the API's (`/partner/../_sandbox/reset`) would reach another of the
        // upstream's, or leave the upstream URL's own path. Not forwarded: no route has it.
        return match api {
            Api::M2m => crate::m2m::not_found(&request.method, &request.path),
            _ => crate::leaf::not_found(&request.method, &request.path),
        };
    }
    if let Some((path, query)) = as_sent(&request.path, &request.query) {
        // The vendor is sent the form of the target HTTP allows; the shadow is applied the
        // same, so both answer (and echo) one path.
        request.path = path;
        request.query = query;
    }
    let body = match request.body(linkbox_contracts::m2m::MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(error) => return refuse_body(api, &request.path, error),
    };
    let endpoint = compare::endpoint(api, request.method.as_str(), &request.path);
    let tenant = request.caller.tenant().cloned();
    // Journals the answer the client was given: the vendor's, or the 502 of its loss.
    let journal = |response: &Response, response_body: Option<&[u8]>| {
        app.journal.record(journal::Request {
            method: request.method.clone(),
            opening: journal::Opening::of(&request.path, &request.query, &request.headers),
            status: Some(response.status().as_u16()),
            time,
            tenant: tenant.clone(),
            established: request.caller.tenant_exists(),
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            request_body: Some(&body),
            response_headers: response.headers(),
            response_body,
        });
    };
    let upstream = match send(shadow, base, &request, body.clone()).await {
        Ok(upstream) => upstream,
        Err(message) => {
            app.drift
                .error(tenant.as_deref(), &endpoint, message.clone());
            if doubts::changes(&request.method) {
                // The vendor may have done it before its answer was lost: the worker puts
                // the resource in doubt, in the order of the vendor's answers. With a full
                // queue it does not, and the error above already counts the request.
                let lost = Job {
                    api,
                    method: request.method.clone(),
                    path: request.path.clone(),
                    query: String::new(),
                    headers: request.headers.clone(),
                    body: Bytes::new(),
                    upstream: None,
                    turn: 0,
                    missed: false,
                    tenant: tenant.clone(),
                };
                let _ = enqueue(surfaces, shadow, &app, lost);
            }
            let response = gateway(api, &request.path, &message);
            journal(&response, None);
            return response;
        }
    };
    let response = answer(&upstream);
    journal(&response, Some(&upstream.body));
    let done = (200..300).contains(&upstream.status);
    let job = Job {
        api,
        method: request.method.clone(),
        path: request.path.clone(),
        query: request.query.clone(),
        headers: request.headers.clone(),
        body,
        upstream: Some(upstream),
        turn: 0,
        missed: false,
        tenant: tenant.clone(),
    };
    if let Err(refused) = enqueue(surfaces, shadow, &app, job) {
        let (full, mut job) = *refused;
        app.drift.error(
            tenant.as_deref(),
            &endpoint,
            format!("not compared: {full}; the client got the vendor's answer"),
        );
        if done && doubts::changes(&job.method) {
            job.upstream = None;
            job.missed = true;
            shadow.missed.keep(job);
        }
    }
    response
}

/// Whether `path` has a dot segment (`.` or `..`, percent-encoded or not) or a backslash,
/// which a URL parser reads as a slash: anything that would take the forwarded URL to
/// another path than the one the request names.
fn climbs(path: &str) -> bool {
    path.contains('\\')
        || path.split('/').any(|segment| {
            let decoded = segment.replace("%2e", ".").replace("%2E", ".");
            decoded == "." || decoded == ".."
        })
}

/// The path and query as the upstream is sent them, when they differ from `path` and
/// `query` as the client sent them. A request target is ASCII (RFC 9112 §3.2, RFC 3986
/// §2), but hyper lets through raw UTF-8 (`/partner/links/😀`) and a few characters a URI
/// cannot hold (`{`, `"`, `` ` ``); the upstream's URL has them percent-encoded — the same
/// bytes in the one form HTTP allows — by the URL rules reqwest applies (which also encode
/// a `'` in the query). Built here, by those same rules, so that the shadow is applied what
/// the vendor was sent and the two compare like with like.
fn as_sent(path: &str, query: &str) -> Option<(String, String)> {
    let mut target = format!("http://shadow.invalid{path}");
    if !query.is_empty() {
        target.push('?');
        target.push_str(query);
    }
    let url = url::Url::parse(&target).ok()?;
    let sent = (url.path(), url.query().unwrap_or_default());
    (sent != (path, query)).then(|| (sent.0.to_owned(), sent.1.to_owned()))
}

/// Whether the request carries an `m2m_live_` key in any header that can hold one: every
/// `X-API-Key` and `Authorization` value, not only the one linkbox itself would read (a
/// test key in `X-API-Key` beside a live one in `Authorization` would forward the live key
/// to the vendor, which may read the other).
fn presents_live_key(headers: &HeaderMap) -> bool {
    let live = linkbox_contracts::m2m::LIVE_KEY_PREFIX.as_bytes();
    [
        http::header::HeaderName::from_static("x-api-key"),
        http::header::AUTHORIZATION,
    ]
    .iter()
    .flat_map(|name| headers.get_all(name))
    .any(|value| {
        value
            .as_bytes()
            .windows(live.len())
            .any(|window| window == live)
    })
}

/// The answer to a body linkbox could not read, in the API's shape; nothing is forwarded.
fn refuse_body(api: Api, path: &str, error: BodyError) -> Response {
    let (status, message) = match error {
        BodyError::TooLarge => (
            StatusCode::PAYLOAD_TOO_LARGE,
            messages::BODY_TOO_LARGE.into(),
        ),
        BodyError::PastShare(most) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            crate::wire::past_share_message(most).into(),
        ),
        BodyError::Late => (StatusCode::BAD_REQUEST, crate::wire::BODY_LATE.into()),
        BodyError::Busy(refused) => (
            StatusCode::SERVICE_UNAVAILABLE,
            crate::wire::busy_message(refused).into(),
        ),
        BodyError::Unreadable => (
            StatusCode::BAD_REQUEST,
            "The request body could not be read whole".into(),
        ),
    };
    let message: std::borrow::Cow<'static, str> = message;
    let mut response = match api {
        Api::Leaf => crate::leaf::error::problem_with(status, path, message.into_owned()),
        _ => {
            let code = if status == StatusCode::SERVICE_UNAVAILABLE {
                ErrorCode::InternalError
            } else {
                ErrorCode::InvalidRequest
            };
            crate::m2m::error::error_response(status, code, message.into_owned())
        }
    };
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from(crate::wire::BUSY_RETRY_AFTER_SECS),
        );
    }
    response
}

/// The 502 of an upstream that could not be asked, in the API's shape.
fn gateway(api: Api, path: &str, message: &str) -> Response {
    let message = format!("Shadow mode could not get an answer from the vendor: {message}");
    match api {
        Api::Leaf => crate::leaf::error::problem_with(StatusCode::BAD_GATEWAY, path, message),
        _ => crate::m2m::error::error_response(
            StatusCode::BAD_GATEWAY,
            ErrorCode::InternalError,
            message,
        ),
    }
}

/// Headers that describe one connection, not the message: never forwarded either way.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// `headers` without hop-by-hop ones, those `Connection` names, and `skip`.
fn end_to_end<'a>(
    headers: &'a HeaderMap,
    skip: &'a [HeaderName],
) -> impl Iterator<Item = (&'a HeaderName, &'a HeaderValue)> + 'a {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    headers.iter().filter(move |(name, _)| {
        !HOP_BY_HOP.contains(&name.as_str())
            && !named.iter().any(|named| named == name.as_str())
            && !skip.contains(name)
    })
}

/// Sends the request upstream and reads its whole answer.
async fn send(
    shadow: &Shadow,
    base: &url::Url,
    request: &Request,
    body: Bytes,
) -> Result<Upstream, String> {
    let client = shadow.client.as_ref().map_err(Clone::clone)?;
    let mut target = format!("{}{}", base.as_str().trim_end_matches('/'), request.path);
    if !request.query.is_empty() {
        target.push('?');
        target.push_str(&request.query);
    }
    let url = url::Url::parse(&target).map_err(|error| format!("{target}: {error}"))?;
    let skip = [
        header::HOST,
        header::CONTENT_LENGTH,
        header::ACCEPT_ENCODING,
    ];
    let mut headers = HeaderMap::new();
    for (name, value) in end_to_end(&request.headers, &skip) {
        headers.append(name.clone(), value.clone());
    }
    let mut outgoing = client
        .request(request.method.clone(), url.clone())
        .headers(headers);
    if !body.is_empty() || request.headers.contains_key(header::CONTENT_LENGTH) {
        outgoing = outgoing.body(body);
    }
    let response = outgoing
        .send()
        .await
        .map_err(|error| describe(&url, &error))?;
    let status = response.status().as_u16();
    let mut headers = Vec::with_capacity(response.headers().len());
    for (name, value) in end_to_end(response.headers(), &[header::CONTENT_LENGTH]) {
        headers.push((
            name.as_str().to_owned(),
            String::from_utf8_lossy(value.as_bytes()).into_owned(),
        ));
    }
    let mut response = response;
    let mut collected = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| describe(&url, &error))?
    {
        if collected.len() + chunk.len() > MAX_UPSTREAM_BODY {
            return Err(format!(
                "{url} answered more than {MAX_UPSTREAM_BODY} bytes; shadow mode passes on \
                 answers up to that size"
            ));
        }
        collected.extend_from_slice(&chunk);
    }
    Ok(Upstream {
        status,
        headers,
        body: collected.into(),
    })
}

/// A failed upstream request in words, with the cause reqwest keeps in its chain.
fn describe(url: &url::Url, error: &reqwest::Error) -> String {
    let mut text = format!("{}: {error}", url.origin().ascii_serialization());
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    if error.is_timeout() {
        text.push_str(&format!(
            " (no answer within {} s)",
            UPSTREAM_TIMEOUT.as_secs()
        ));
    }
    if text.contains("CaUsedAsEndEntity") {
        text.push_str(&format!(": {}", linkbox_contracts::sandbox::CA_AS_SERVER));
    }
    text
}

/// The upstream's answer as the client gets it.
fn answer(upstream: &Upstream) -> Response {
    let mut response = Response::new(upstream.body.clone().into());
    *response.status_mut() =
        StatusCode::from_u16(upstream.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let headers = response.headers_mut();
    for (name, value) in &upstream.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(name, value);
        }
    }
    response
}

/// linkbox's own answer, its body read whole however it is sent (a list of large items is
/// streamed, its length unknown), up to [`MAX_UPSTREAM_BODY`] as the vendor's is; past that,
/// or when it cannot be read, why not. Read back only when small and of a known length (as
/// the journal reads answers), a streamed list or a large detail was compared as an empty
/// body: one difference of `type` for every such answer, and nothing else of it compared.
async fn read_whole(response: Response) -> Result<(Response, Bytes), String> {
    use http_body_util::BodyExt;
    let (parts, mut body) = response.into_parts();
    let mut collected = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| format!("could not be read: {error}"))?;
        if let Ok(data) = frame.into_data() {
            if collected.len() + data.len() > MAX_UPSTREAM_BODY {
                return Err(format!(
                    "is more than {MAX_UPSTREAM_BODY} bytes, more than the vendor's answer may be"
                ));
            }
            collected.extend_from_slice(&data);
        }
    }
    let collected = collected.freeze();
    Ok((
        Response::from_parts(parts, collected.clone().into()),
        collected,
    ))
}

/// Queues `job` for the worker, started on first use; a full queue refuses it, saying
/// what is full, and hands it back.
fn enqueue(
    surfaces: &Arc<Surfaces>,
    shadow: &Shadow,
    app: &App,
    mut job: Job,
) -> Result<(), Box<(String, Job)>> {
    let bytes = job.bytes();
    if let Err(full) = shadow.queued.take(&job.tenant, bytes) {
        return Err(Box::new((full, job)));
    }
    let queue = shadow.queue.get_or_init(|| {
        let (sender, receiver) = mpsc::channel(MAX_QUEUED);
        // The worker holds the surfaces weakly: they hold its queue, which it ends with.
        let worker = work(
            Arc::downgrade(surfaces),
            app.clone(),
            shadow.ids.clone(),
            shadow.queued.clone(),
            shadow.missed.clone(),
            receiver,
        );
        if let Err(error) = on_its_own_thread(worker) {
            tracing::error!(%error, "the shadow's comparison thread cannot be started; no request is compared");
        }
        sender
    });
    // Turns are taken one sender at a time, as missed changes take theirs ([`Missed::keep`]).
    let _turns = shadow.missed.changes.lock();
    job.turn = shadow.missed.queued.load(Ordering::Acquire);
    match queue.try_send(job) {
        Ok(()) => {
            shadow.missed.queued.fetch_add(1, Ordering::AcqRel);
            Ok(())
        }
        Err(refused) => {
            let job = refused.into_inner();
            shadow.queued.give_back(&job.tenant, bytes);
            Err(Box::new((
                format!("{MAX_QUEUED} requests already wait for comparison"),
                job,
            )))
        }
    }
}

/// Runs `worker` to its end on a thread of its own, with a runtime of its own: the
/// comparisons take what CPU they take there, and the kernel shares the cores between it and
/// the serving threads, none of whose requests wait for it. On a serving runtime, a burst of
/// 92 requests whose answers differed in 600 places held that runtime's every request (the
/// health check too) for 13 s.
fn on_its_own_thread<F>(worker: F) -> std::io::Result<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("linkbox-shadow".to_owned())
        .spawn(move || runtime.block_on(worker))
        .map(drop)
}

/// The worker: applies each job to the shadow in order and compares, until the queue's
/// sender is gone with the surfaces.
async fn work(
    surfaces: std::sync::Weak<Surfaces>,
    app: App,
    ids: Arc<Ids>,
    queued: Arc<Queued>,
    missed: Arc<Missed>,
    mut receiver: mpsc::Receiver<Job>,
) {
    let mut doubts = Doubts::default();
    while let Some(job) = receiver.recv().await {
        let (bytes, tenant) = (job.bytes(), job.tenant.clone());
        let Some(surfaces) = surfaces.upgrade() else {
            return;
        };
        for change in missed.before(job.turn) {
            apply(&surfaces, &app, &ids, &mut doubts, change).await;
        }
        apply(&surfaces, &app, &ids, &mut doubts, job).await;
        queued.give_back(&tenant, bytes);
    }
}

/// The unique key a create of the same thing as `resource` would name, put in doubt with it
/// ([`Doubts::raise_with`]): a lost create's key ([`doubts::keyed`]), or an M2M link's
/// `referenceId` (its revoke lost or done on one side only, the re-create of its reference
/// is the vendor's 201 and linkbox's 409, or the reverse, for that reason alone).
fn key_of(
    app: &App,
    ids: &Ids,
    job: &Job,
    body: Option<&serde_json::Value>,
    tenant: Option<&str>,
    resource: &doubts::Resource,
) -> Option<doubts::Resource> {
    let creates = compare::creates(job.api, job.method.as_str(), &job.path);
    match (resource.collection, job.api) {
        (true, _) if creates => doubts::keyed(job.api, body),
        (false, Api::M2m) => {
            let id = ids.shadow(doubts::id_of(job.api, &job.method, &job.path)?)?;
            let link = app.store.m2m().by_slug(tenant?)?.link_lent(&id).ok()?;
            Some(doubts::key(job.api, &link.view().item.reference_id))
        }
        _ => None,
    }
}

/// Applies one job to the shadow, compares the answers and records what differs; a
/// weather answer from the vendor is neither applied nor compared
/// ([`linkbox_suite::is_weather`]), and what differs on a resource in doubt is weather too
/// ([`doubts`]).
async fn apply(surfaces: &Surfaces, app: &App, ids: &Ids, doubts: &mut Doubts, job: Job) {
    let endpoint = compare::endpoint(job.api, job.method.as_str(), &job.path);
    let mut headers = job.headers.clone();
    let bearer = ids.bearer(&mut headers);
    let path = ids.path(&job.path);
    let query = ids.query(&job.query);
    let body = match ids.body(&job.body) {
        Some(rewritten) => {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(rewritten.len()));
            Bytes::from(rewritten)
        }
        None => job.body.clone(),
    };
    let caller = identity::resolve_for(app, &headers, crate::m2m::owns(&path));
    let tenant = caller.tenant().cloned();
    let changes = doubts::changes(&job.method);
    let request_json: Option<serde_json::Value> = serde_json::from_slice(&job.body).ok();
    let resource = doubts::resource(job.api, &job.method, &job.path, request_json.as_ref());
    let Some(upstream) = &job.upstream else {
        // The vendor's answer was lost, or the request never queued (the report already
        // counts the request as an error).
        let cause = if job.missed {
            "the vendor did it, and linkbox did not apply it: the comparison queue was full"
        } else {
            "got no answer from the vendor: the vendor may have done that request, which \
             linkbox did not apply"
        };
        let cause = format!("{} {} {cause}", job.method, job.path);
        let key = key_of(
            app,
            ids,
            &job,
            request_json.as_ref(),
            tenant.as_deref(),
            &resource,
        );
        doubts.raise_with(tenant.as_deref(), &resource, key, cause);
        return;
    };
    if linkbox_suite::is_weather(upstream.status) {
        // The vendor did not do what was asked (it was down, overloaded or rate-limiting),
        // or, behind a gateway, did it all the same: no difference of the contract, and
        // applied to the shadow it would leave the two out of step (a create the vendor
        // refused, then its retry a 409 here). A 429 says nothing was done; after a 5xx the
        // resource is in doubt until it is changed again.
        let doubted = changes && upstream.status != 429;
        if doubted {
            let cause = format!(
                "the vendor answered {} to {} {}: the vendor may have done that request, which \
                 linkbox did not apply",
                upstream.status, job.method, job.path
            );
            let key = key_of(
                app,
                ids,
                &job,
                request_json.as_ref(),
                tenant.as_deref(),
                &resource,
            );
            doubts.raise_with(tenant.as_deref(), &resource, key, cause);
        }
        app.drift.error(
            tenant.as_deref(),
            &endpoint,
            format!(
                "not compared: the vendor answered {} (weather: it may not have done what was \
                 asked, or, behind a gateway, may have done it all the same), so linkbox did \
                 not apply it; the client got the vendor's answer{}",
                upstream.status,
                if doubted {
                    ", and what differs on the same resource until it is changed again counts \
                     as weather too"
                } else {
                    ""
                }
            ),
        );
        return;
    }
    let upstream_ok = (200..300).contains(&upstream.status);
    if job.api == Api::Leaf && bearer == Bearer::Unknown && upstream_ok {
        app.drift.error(
            tenant.as_deref(),
            &endpoint,
            "not compared: the Leaf token was not issued through linkbox, so linkbox has no \
             shadow account for it; authenticate through linkbox (POST /api/authenticate) \
             first"
                .to_owned(),
        );
        return;
    }
    let stream = futures_util::stream::once(async move { Ok(body) }).boxed();
    let request = Request::new(
        app.clone(),
        job.method.clone(),
        path,
        query,
        headers,
        caller,
        Some(stream),
    );
    let (response, wrote) = crate::persist::tracking(dispatch(surfaces, request)).await;
    if wrote && let Err(error) = app.sink.settled().await {
        tracing::error!(%error, "the shadow's change is not durable yet");
    }
    // What a client of linkbox's HEAD gets, as the vendor's HEAD answer is what its client
    // got: the route's GET answer without its body.
    let response = super::leftover::head(&job.method, response);
    let (response, local_body) = match read_whole(response).await {
        Ok(read) => read,
        Err(why) => {
            app.drift.error(
                tenant.as_deref(),
                &endpoint,
                format!(
                    "not compared: linkbox's own answer {why}; the client got the vendor's answer"
                ),
            );
            return;
        }
    };
    let mut local_headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    if !response.headers().contains_key(header::DATE) {
        // What the connection would have added on the way out, read on the sandbox clock
        // the answer's own times were computed on (a Leaf create dates its expiry by it).
        local_headers.push((
            header::DATE.as_str().to_owned(),
            httpdate::fmt_http_date(std::time::SystemTime::from(app.clock.now())),
        ));
    }
    let local_status = response.status().as_u16();
    // A read of a collection passes over its items in doubt: compared, they would differ
    // for the doubt's sake; the rest of the list is compared as ever.
    let within = match changes || !resource.collection {
        true => Vec::new(),
        false => doubts.within(tenant.as_deref(), &resource.path),
    };
    let in_doubt: HashSet<&str> = within.iter().map(|(id, _)| id.as_str()).collect();
    let shadow_id = |id: &str| match in_doubt.contains(id) {
        true => None,
        false => ids.shadow(id),
    };
    let exchange = Exchange {
        api: job.api,
        method: job.method.as_str(),
        path: &job.path,
        query: &job.query,
        body: request_json.as_ref(),
        upstream: Answer {
            status: upstream.status,
            headers: &upstream.headers,
            body: &upstream.body,
        },
        linkbox: Answer {
            status: response.status().as_u16(),
            headers: &local_headers,
            body: &local_body,
        },
        shadow_id: &shadow_id,
    };
    ids.learn(compare::pairs(&exchange));
    let differences = compare::compare(&exchange);
    if let Some((_, cause)) = within.first() {
        let every_item = |id: &str| ids.shadow(id);
        let passed_over = compare::compare(&Exchange {
            shadow_id: &every_item,
            ..exchange
        })
        .len()
        .saturating_sub(differences.len());
        if passed_over > 0 {
            app.drift.note(
                tenant.as_deref(),
                &endpoint,
                format!(
                    "not counted as drift: {passed_over} difference(s) on the items of {} in \
                     doubt ({}), passed over; the first is in doubt since {cause}",
                    resource.path,
                    within
                        .iter()
                        .map(|(id, _)| id.as_str())
                        .take(5)
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
            );
        }
    }
    // Said once what was found is in the report: a reader told that only some places were
    // compared finds those places there.
    let wide = differences.len() >= compare::MAX_FOUND;
    let say_if_wide = || {
        if wide {
            app.drift.error(
                tenant.as_deref(),
                &endpoint,
                format!(
                    "the answers differ in more than {} places: only the first {} were compared",
                    compare::MAX_FOUND,
                    compare::MAX_FOUND
                ),
            );
        }
    };
    let alike = upstream.status == local_status;
    let made = upstream_ok || (200..300).contains(&local_status);
    // A create is also about the key it names that must be unique ([`doubts::keyed`]); one
    // adding a link to a user (whose path names the user) adds it under no such key.
    let creates = changes && compare::creates(job.api, job.method.as_str(), &job.path);
    let keyed = match creates && resource.collection {
        true => doubts::keyed(job.api, request_json.as_ref()),
        false => None,
    };
    let mut doubted = &resource;
    let mut doubt = doubts.over(tenant.as_deref(), &resource.path, changes.then_some(alike));
    // A key's doubt is settled by a create of it that either side made; one both refused
    // changed nothing.
    if let Some(key) = &keyed
        && let Some(cause) = doubts.over(tenant.as_deref(), &key.path, Some(made))
    {
        // A Leaf key settled by a create the vendor answered: the user it names may still
        // differ on the two sides (one made it earlier with its own fields, the other only
        // now, with a magic link's defaults), so that user is in doubt until it is changed.
        if let Some(user) = doubts::user_named(job.api, &upstream.body) {
            doubts.raise(tenant.as_deref(), &user, cause.clone());
        }
        if doubt.is_none() {
            (doubted, doubt) = (key, Some(cause));
        }
    }
    // A change one side did and the other refused: its status differs (drift, or linkbox's
    // own limits, as a 429 of its rate limits is), and from then on the two hold different
    // things, so what differs on the resource follows from it, as after a lost change. Not
    // a change that settles a doubt: the retry of a lost revoke is the vendor's "already
    // revoked" and linkbox's 200, after which both hold it revoked. A create puts in doubt
    // only the unique key it names, if any: another create's difference is its own.
    let one_sided = match creates {
        true => keyed.as_ref(),
        false => (!resource.collection).then_some(&resource),
    };
    if let Some(one_sided) = one_sided
        && doubt.is_none()
        && upstream_ok != (200..300).contains(&local_status)
    {
        let cause = format!(
            "the vendor answered {} and linkbox {} to {} {}, so one did what the other did not",
            upstream.status, local_status, job.method, job.path
        );
        let key = key_of(
            app,
            ids,
            &job,
            request_json.as_ref(),
            tenant.as_deref(),
            one_sided,
        );
        doubts.raise_with(tenant.as_deref(), one_sided, key, cause);
    }
    // An id of the vendor's that no compared answer ever showed (made before shadowing
    // began, or by a request whose answer was lost) is not held by the shadow: its 404
    // there is the shadow's want of data, not drift, as lists compare only the items both
    // sides know.
    if let Some(id) = doubts::id_of(job.api, &job.method, &job.path)
        && local_status == 404
        && upstream.status != 404
        && ids.shadow(id).is_none()
        && !differences.is_empty()
    {
        app.drift.error(
            tenant.as_deref(),
            &endpoint,
            format!(
                "not compared: the vendor's {id} was never in an answer linkbox compared (made \
                 before shadowing began, or by a request whose answer was lost), so the \
                 shadow does not hold it"
            ),
        );
        return;
    }
    if let Some(cause) = doubt
        && !differences.is_empty()
    {
        let what: Vec<String> = differences
            .iter()
            .map(|difference| {
                if difference.pointer.is_empty() {
                    difference.rule.name().to_owned()
                } else {
                    format!("{} at {}", difference.rule.name(), difference.pointer)
                }
            })
            .collect();
        app.drift.error(
            tenant.as_deref(),
            &endpoint,
            format!(
                "not counted as drift: the answers differ ({}) on {}, which is in doubt since \
                 {cause}{}",
                what.join(", "),
                doubted.path,
                match (changes, doubts.holds(tenant.as_deref(), &doubted.path)) {
                    (true, false) => "; this change settles it",
                    (true, true) => {
                        "; it stays in doubt until a change settles it (one answered alike by \
                         both; for a key, a create of it either side made), or for a few more \
                         changes"
                    }
                    (false, _) => "",
                }
            ),
        );
        say_if_wide();
        return;
    }
    let found: Vec<Found> = differences
        .into_iter()
        .map(|difference| Found {
            rule: difference.rule.name(),
            // The report and its log line quote the answers: their secrets (the vendor's
            // real webhook secret, a client's token) are redacted as in the journal.
            upstream: journal::redact_at(&difference.pointer, difference.upstream),
            linkbox: journal::redact_at(&difference.pointer, difference.linkbox),
            pointer: difference.pointer,
            fact: difference.fact,
            doc: difference.doc,
        })
        .collect();
    for new in app.drift.record(tenant.as_deref(), &endpoint, found) {
        let at = if new.pointer.is_empty() {
            String::new()
        } else {
            format!(" at {}", new.pointer)
        };
        tracing::warn!(
            target: TARGET,
            "drift [{}] {} {}{at}: vendor {} / linkbox {}",
            if new.doc { "doc" } else { "design" },
            new.endpoint,
            new.rule,
            new.upstream,
            new.linkbox,
        );
    }
    say_if_wide();
}

#[cfg(test)]
mod tests {
    use super::{
        Job, MAX_QUEUED, MAX_QUEUED_BYTES, MAX_QUEUED_BYTES_PER_TENANT, MAX_QUEUED_PER_TENANT,
        Missed, Queued, Upstream, as_sent, on_its_own_thread, read_whole,
    };

    fn change(path: &str, body: usize) -> Job {
        Job {
            api: linkbox_suite::Api::M2m,
            method: http::Method::POST,
            path: path.to_owned(),
            query: String::new(),
            headers: http::HeaderMap::new(),
            body: bytes::Bytes::from(vec![b' '; body]),
            upstream: None,
            turn: 0,
            missed: true,
            tenant: None,
        }
    }

    /// One tenant's burst fills its share of the queue, not the queue: another tenant's
    /// request still finds room, and a share given back is taken again.
    #[test]
    fn a_tenant_takes_its_share_of_the_queue_and_leaves_the_rest() {
        let queued = Queued::default();
        let (busy, other): (Option<std::sync::Arc<str>>, _) =
            (Some("busy".into()), Some("other".into()));
        for _ in 0..MAX_QUEUED_PER_TENANT {
            assert_eq!(queued.take(&busy, 10), Ok(()));
        }
        let full = queued.take(&busy, 10).expect_err("its share is full");
        assert!(full.contains("this tenant's"), "{full}");
        assert_eq!(queued.take(&other, 10), Ok(()), "another tenant has room");
        assert_eq!(
            queued.take(&None, 10),
            Ok(()),
            "so do requests of no tenant"
        );
        queued.give_back(&busy, 10);
        assert_eq!(
            queued.take(&busy, 10),
            Ok(()),
            "room given back is taken again"
        );
        let large = queued
            .take(&other, MAX_QUEUED_BYTES_PER_TENANT)
            .expect_err("past its share of bytes");
        assert!(large.contains("bytes of this tenant's"), "{large}");
        assert_eq!(
            queued.take(&None, MAX_QUEUED_BYTES_PER_TENANT - 20),
            Ok(()),
            "a share of bytes is the tenant's own"
        );
        let all = queued
            .take(&Some("third".into()), MAX_QUEUED_BYTES / 2)
            .expect_err("past the queue's bytes");
        assert!(all.starts_with(&MAX_QUEUED_BYTES.to_string()), "{all}");
    }

    /// A request's heads count with its body: a thousand requests of 60 KiB of headers each
    /// and no body were 60 MiB the bound did not see.
    #[test]
    fn a_job_counts_its_heads() {
        let mut job = change("/partner/links", 0);
        let bare = job.bytes();
        job.headers.insert(
            "x-large",
            http::HeaderValue::from_str(&"a".repeat(60_000)).expect("value"),
        );
        assert!(job.bytes() >= bare + 60_000, "{}", job.bytes());
        job.upstream = Some(Upstream {
            status: 200,
            headers: vec![("x-vendor".to_owned(), "b".repeat(1_000))],
            body: bytes::Bytes::from_static(b"{}"),
        });
        assert!(job.bytes() >= bare + 61_002, "{}", job.bytes());
    }

    /// A missed change comes out before the first job queued after it, not before those
    /// queued ahead of it; at most as many as the queue holds are kept, the oldest given up,
    /// and a large body is not kept.
    #[test]
    fn missed_changes_come_out_in_their_turn_and_are_bounded() {
        let missed = Missed::default();
        missed.keep(change("/partner/links/a/revoke", 10));
        missed.queued.store(3, std::sync::atomic::Ordering::Release);
        missed.keep(change("/partner/links/b/revoke", 10_000));
        let paths = |jobs: Vec<Job>| jobs.into_iter().map(|job| job.path).collect::<Vec<_>>();
        assert_eq!(paths(missed.before(0)), ["/partner/links/a/revoke"]);
        assert!(
            missed.before(2).is_empty(),
            "jobs 0 to 2 were queued before b"
        );
        let b = missed.before(3);
        assert_eq!(b.len(), 1);
        assert!(b[0].body.is_empty(), "a large body is not kept");
        for n in 0..=MAX_QUEUED {
            missed.keep(change(&format!("/partner/links/{n}/revoke"), 0));
        }
        let kept = paths(missed.before(u64::MAX));
        assert_eq!(kept.len(), MAX_QUEUED);
        assert_eq!(kept[0], "/partner/links/1/revoke", "the oldest given up");
    }

    /// The worker runs while the serving thread that started it is busy: on a runtime of its
    /// own, on its own thread. (Spawned on this single-threaded runtime, it could not run
    /// until the test's blocking wait had timed out.)
    #[tokio::test]
    async fn the_comparison_worker_runs_while_the_serving_thread_is_busy() {
        let (ran, seen) = std::sync::mpsc::channel();
        on_its_own_thread(async move {
            tokio::task::yield_now().await;
            let name = std::thread::current().name().map(str::to_owned);
            ran.send(name).expect("the test waits");
        })
        .expect("started");
        let name = seen
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("ran while this thread was blocked");
        assert_eq!(name.as_deref(), Some("linkbox-shadow"));
    }

    /// linkbox's own answer is read whole however it is sent, streamed of unknown length
    /// too, up to the vendor's bound; past it, not read.
    #[tokio::test]
    async fn linkbox_s_own_answer_is_read_whole_up_to_the_vendor_s_bound() {
        let streamed = |chunks: Vec<Vec<u8>>| {
            let stream = futures_util::stream::iter(
                chunks
                    .into_iter()
                    .map(|chunk| Ok::<_, std::io::Error>(bytes::Bytes::from(chunk))),
            );
            warp::Reply::into_response(warp::reply::stream(stream))
        };
        let (_, body) = read_whole(streamed(vec![b"[1,".to_vec(), b"2]".to_vec()]))
            .await
            .expect("read");
        assert_eq!(&body[..], b"[1,2]");
        let half = vec![b' '; super::MAX_UPSTREAM_BODY / 2];
        assert!(
            read_whole(streamed(vec![half.clone(), half.clone(), b"x".to_vec()]))
                .await
                .is_err_and(|why| why.contains("more than")),
            "one byte past the bound"
        );
        let (_, whole) = read_whole(streamed(vec![half.clone(), half]))
            .await
            .expect("at the bound");
        assert_eq!(whole.len(), super::MAX_UPSTREAM_BODY);
    }

    #[test]
    fn what_the_upstream_is_sent_is_the_target_in_the_form_http_allows() {
        assert_eq!(
            as_sent("/partner/links/\u{1F600}", ""),
            Some(("/partner/links/%F0%9F%98%80".to_owned(), String::new()))
        );
        assert_eq!(
            as_sent("/partner/{x}", "status=\u{e9}t\u{e9}&r='1'"),
            Some((
                "/partner/%7Bx%7D".to_owned(),
                "status=%C3%A9t%C3%A9&r=%271%27".to_owned()
            ))
        );
        // What is already in its URI form goes as it came, its escapes untouched.
        assert_eq!(as_sent("/partner/links/%F0%9F%98%80", "page=2&x=%zz"), None);
        assert_eq!(as_sent("/partner/links", ""), None);
    }
}
