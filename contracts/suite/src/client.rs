//! What a case sees: [`Ctx`] (credentials, marked ids, the sandbox's control API), requests
//! built on it, and [`Reply`] with one check method per kind of expectation. Each check
//! returns a [`Failure`] naming the request, the expectation and what came back.
//!
//! Two things happen on every response without a case asking: its body is validated against
//! the committed JSON Schema of that endpoint and status ([`schema_for`]), and every resource
//! it created (an M2M link, a Leaf link or user) is recorded so [`Ctx::cleanup`] can revoke or
//! delete it — only ids the suite itself created, with its `contract-` marked ids.
//!
//! A check of a `[design]` fact the case does not name — the schema's id patterns, a Leaf
//! create's exact 200, a Leaf error's problem format — binds in-process and in `[design]`
//! cases, but not a `[doc]` case against a target ([`Ctx::binds`], [`crate::guesses`]): there
//! it keeps its documented part, and an answer against the guess is noted as a `[design]`
//! difference (stderr, the report) instead of failing the case as if the vendor differed from
//! its docs.
//!
//! Weather is handled here too, below every case: [`Request::send`] waits out a 429 against a
//! target per its `Retry-After`, retries a 5xx or a connection error with backoff, and only
//! then gives up with a [`Failure`] marked `weather` (the case's outcome becomes `error`).
//! In-process a 429 is the answer under test (every case has fresh tenants, so only the
//! sandbox's own counting can produce one): it goes to the case like any other answer.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use super::guesses;
use super::report::DesignDifference;
use super::{Api, Case, Console, Options, Patience, Source, UsageError, Window};

/// Why a case failed: the request, what was checked, the expected and the actual value.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// `METHOD path` and the body sent, if any.
    pub request: String,
    /// What was checked: `status`, `body /data/status`, `schema m2m/...`.
    pub check: String,
    pub expected: String,
    pub actual: String,
    /// Weather, not drift: the target could not be asked (connection refused or reset,
    /// timeout, 5xx, 429), even after the retries.
    pub weather: bool,
}

impl Failure {
    /// A failed expectation that is not about one reply (a computed relation).
    pub fn new(
        request: impl Into<String>,
        check: impl Into<String>,
        expected: impl std::fmt::Display,
        actual: impl std::fmt::Display,
    ) -> Failure {
        Failure {
            request: request.into(),
            check: check.into(),
            expected: quoted(expected.to_string()),
            actual: quoted(actual.to_string()),
            weather: false,
        }
    }

    /// The target could not be asked: the case's outcome is `error`, not `fail`.
    pub fn weather(
        request: impl Into<String>,
        check: impl Into<String>,
        expected: impl std::fmt::Display,
        actual: impl std::fmt::Display,
    ) -> Failure {
        Failure {
            weather: true,
            ..Failure::new(request, check, expected, actual)
        }
    }
}

/// A schema path and the `[design]` facts whose constraints are taken out of it.
type RelaxedKey = (String, Vec<&'static str>);

/// What the whole run shares: the HTTP client, the schemas, the pacing windows.
pub(crate) struct Shared {
    client: reqwest::Client,
    base: String,
    target: Option<super::Credentials>,
    /// Compiled validators, by schema path (`m2m/CreateLinkResponse.json`).
    schemas: HashMap<String, jsonschema::Validator>,
    /// The schemas themselves, to take `[design]` constraints out of ([`Shared::relaxed`]).
    raw_schemas: HashMap<String, Value>,
    /// Per schema path, the facts of [`guesses::SCHEMA`] whose constraints it has.
    schema_guesses: HashMap<String, Vec<&'static str>>,
    /// Validators of schemas without the constraints of some `[design]` facts, compiled when
    /// first needed: `(path, facts)` → validator.
    relaxed: Mutex<HashMap<RelaxedKey, Arc<jsonschema::Validator>>>,
    /// The first answer against each `[design]` fact met by a case not held to it.
    differences: Mutex<Vec<DesignDifference>>,
    /// `(credential, is_create)` → window; only against a target.
    windows: Mutex<HashMap<(String, bool), Window>>,
    /// Distinguishes this run's marked ids from any earlier run's.
    run_id: String,
    counter: AtomicU64,
    /// Requests in a row that were still weather after all their attempts; from
    /// [`OUTAGE_AFTER`] on, the target is taken to be down and requests get one attempt each
    /// until one is answered.
    struck: AtomicU32,
    patience: Patience,
    console: Console,
}

impl Shared {
    pub(crate) fn new(options: &Options) -> Result<Arc<Shared>, UsageError> {
        // No redirect is followed: the credentials are for the target alone, and a redirect
        // to another host (a gateway's http to https, a login page) would take them there
        // and have its answer taken for the target's. A redirect is an answer like any other.
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .use_rustls_tls()
            .timeout(options.patience.timeout);
        if let Some(path) = &options.tls.ca_cert {
            for certificate in read_ca_cert(path)? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        if options.tls.insecure {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let client = builder
            .build()
            .map_err(|error| UsageError::Usage(format!("cannot build the HTTP client: {error}")))?;
        let mut schemas = HashMap::new();
        let mut raw_schemas = HashMap::new();
        let mut schema_guesses = HashMap::new();
        for (path, schema) in linkbox_contracts::schemas::all() {
            let validator = jsonschema::validator_for(schema.as_value()).map_err(|error| {
                UsageError::Usage(format!("schema {path} does not compile: {error}"))
            })?;
            let guesses = guesses::in_schema(&path, schema.as_value(), guesses::INCIDENTAL);
            schema_guesses.insert(path.clone(), guesses);
            raw_schemas.insert(path.clone(), schema.as_value().clone());
            schemas.insert(path, validator);
        }
        Ok(Arc::new(Shared {
            client,
            base: options.base.trim_end_matches('/').to_owned(),
            target: options.target.clone(),
            schemas,
            raw_schemas,
            schema_guesses,
            relaxed: Mutex::new(HashMap::new()),
            differences: Mutex::new(Vec::new()),
            windows: Mutex::new(HashMap::new()),
            run_id: format!("{:08x}", random_u64() as u32),
            counter: AtomicU64::new(0),
            struck: AtomicU32::new(0),
            patience: options.patience.clone(),
            console: options.console.clone(),
        }))
    }

    /// Before the first case. In-process: one request to the base URL (any answer means
    /// linkbox is there). Against a target: one cheap authenticated read per API among the
    /// `selected` cases — `GET /partner/links?limit=1` with the M2M key, `GET
    /// /services/usermanagement/api/users?size=1` with the Leaf token — so a refused
    /// credential stops the run before any case, naming the credential and what the target
    /// said. Weather is retried as for any request; a certificate failure is not retried.
    pub(crate) async fn preflight(self: &Arc<Self>, selected: &[Case]) -> Result<(), UsageError> {
        let cx = Ctx::new(self.clone(), "preflight", Source::Doc, &[]);
        if self.target.is_none() {
            let reply = cx
                .request(Dialect::Sandbox, Method::GET, "/")
                .no_auth()
                .untracked()
                .send()
                .await;
            return reply
                .map(|_| ())
                .map_err(|failure| self.unreachable(&failure));
        }
        let uses = |api: Api| selected.iter().any(|case| case.api() == api);
        let checks = [
            (
                Api::M2m,
                Dialect::M2m,
                "/partner/links?limit=1",
                "the M2M key (--m2m-key / LINKBOX_M2M_KEY)",
            ),
            (
                Api::Leaf,
                Dialect::Leaf,
                "/services/usermanagement/api/users?size=1",
                "the Leaf token (--leaf-token / LINKBOX_LEAF_TOKEN)",
            ),
        ];
        for (api, dialect, path, credential) in checks {
            if !uses(api) {
                continue;
            }
            let reply = cx
                .request(dialect, Method::GET, path)
                .untracked()
                .send()
                .await
                .map_err(|failure| self.unreachable(&failure))?;
            // 304 is no redirect: an answer to a conditional request, which the suite
            // never sends.
            if (300..400).contains(&reply.status) && reply.status != 304 {
                // Where it leads, to its path (a gateway's prefix is part of the base URL
                // to give); not its query, and nothing but an http(s) URL.
                let to = reply
                    .headers
                    .get(reqwest::header::LOCATION)
                    .and_then(|location| location.to_str().ok())
                    .and_then(|location| {
                        let base = url::Url::parse(&format!("{}/", self.base)).ok()?;
                        let mut to = base.join(location).ok()?;
                        to.set_query(None);
                        to.set_fragment(None);
                        let _ = to.set_username("");
                        let _ = to.set_password(None);
                        matches!(to.scheme(), "http" | "https").then_some(to)
                    })
                    .map(|location| format!(" to {location}"))
                    .unwrap_or_default();
                return Err(UsageError::Usage(format!(
                    "--target {}: GET {path} was answered {}, a redirect{to}; the suite \
                     follows no redirect, so that its credentials reach the target alone: \
                     give --target the URL it leads to",
                    self.base, reply.status
                )));
            }
            if matches!(reply.status, 401 | 403) {
                return Err(UsageError::Refused {
                    api,
                    credential: credential.to_owned(),
                    said: format!(
                        "{} to GET {path}: {}",
                        reply.status,
                        body_shown(&reply.text)
                    ),
                });
            }
        }
        Ok(())
    }

    /// The usage error for a preflight request that got no usable answer.
    fn unreachable(&self, failure: &Failure) -> UsageError {
        if failure.check == "certificate" {
            UsageError::Certificate(format!("{}: {}", self.base, failure.actual))
        } else if failure.check == "tls" {
            UsageError::Usage(format!(
                "--target {}: the TLS handshake failed ({}); is it an https:// server?",
                self.base, failure.actual
            ))
        } else {
            UsageError::Connection(format!("{}: {}", self.base, failure.actual))
        }
    }

    /// The validator of the schema at `path` without the constraints of `facts`; `None` when
    /// there is no such schema or it does not compile once relaxed.
    fn relaxed(&self, path: &str, facts: &[&'static str]) -> Option<Arc<jsonschema::Validator>> {
        let key = (path.to_owned(), facts.to_vec());
        let mut relaxed = self
            .relaxed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(validator) = relaxed.get(&key) {
            return Some(validator.clone());
        }
        let schema = guesses::relax(path, self.raw_schemas.get(path)?, facts);
        let validator = Arc::new(jsonschema::validator_for(&schema).ok()?);
        relaxed.insert(key, validator.clone());
        Some(validator)
    }

    /// The `[design]` differences met so far, for the report; each fact once.
    pub(crate) fn take_differences(&self) -> Vec<DesignDifference> {
        std::mem::take(
            &mut *self
                .differences
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    fn windows(&self) -> MutexGuard<'_, HashMap<(String, bool), Window>> {
        self.windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits until sending stays within M2M's documented limits for `credential`. Leaf
    /// documents no limit; a Leaf run keeps the same pace, so a suite run against the
    /// vendor never sends faster than the one limit either vendor documents.
    async fn pace(&self, credential: &str, create: bool, dialect: Dialect) {
        if self.target.is_none() || credential.is_empty() {
            return;
        }
        let per_minute = if create {
            linkbox_contracts::m2m::CREATE_LINK_PER_MINUTE
        } else {
            linkbox_contracts::m2m::OTHER_PER_MINUTE
        };
        let wait = self
            .windows()
            .entry((credential.to_owned(), create))
            .or_insert_with(|| Window::new(per_minute))
            .reserve(Instant::now());
        if !wait.is_zero() {
            let kind = if create { "create" } else { "request" };
            let why = match dialect {
                Dialect::M2m => {
                    format!("to stay under the documented limit of {per_minute} {kind}s a minute")
                }
                _ => format!(
                    "to stay under {per_minute} {kind}s a minute (M2M's documented limit; the {} API documents none, and the suite keeps the same pace)",
                    dialect.name()
                ),
            };
            self.console.waiting(wait, &why);
            tokio::time::sleep(wait).await;
        }
    }
}

/// The certificates of `--ca-cert FILE` (PEM, one or more).
fn read_ca_cert(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, UsageError> {
    let bad = |why: String| UsageError::Usage(format!("--ca-cert {}: {why}", path.display()));
    let pem = std::fs::read(path).map_err(|error| bad(format!("cannot read it: {error}")))?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|error| bad(format!("not PEM certificates: {}", error_chain(&error))))?;
    if certificates.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    Ok(certificates)
}

/// What went wrong with TLS, when anything did: not weather, so never retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsFailure {
    /// The certificate failed verification.
    Certificate,
    /// Any other handshake failure (a plain-HTTP server on an https:// URL, no common
    /// protocol version, a fatal alert).
    Handshake,
}

/// The TLS failure in `error` or its causes: rustls's typed error, or — where a wrapper in
/// between keeps only the message — rustls's words for it.
fn tls_failure(error: &(dyn std::error::Error + 'static)) -> Option<TlsFailure> {
    const CERTIFICATE: [&str; 2] = ["invalid peer certificate", "no certificates presented"];
    const HANDSHAKE: [&str; 4] = [
        "received corrupt message",
        "peer is incompatible",
        "peer misbehaved",
        "received fatal alert",
    ];
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = next {
        let typed = current.downcast_ref::<rustls::Error>().or_else(|| {
            current
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        match typed {
            Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented) => {
                return Some(TlsFailure::Certificate);
            }
            Some(_) => return Some(TlsFailure::Handshake),
            None => {}
        }
        let text = current.to_string();
        if CERTIFICATE.iter().any(|words| text.contains(words)) {
            return Some(TlsFailure::Certificate);
        }
        if HANDSHAKE.iter().any(|words| text.contains(words)) {
            return Some(TlsFailure::Handshake);
        }
        next = current.source();
    }
    None
}

/// An answer's body as a report quotes it: flattened to one line of at most 200
/// characters, or said to be empty.
fn body_shown(text: &str) -> String {
    if text.trim().is_empty() {
        "an empty body".to_owned()
    } else {
        one_line_excerpt(text, 200)
    }
}

/// An answer's status and body as a report quotes them ([`body_shown`]).
fn answer_shown(status: u16, text: &str) -> String {
    if text.trim().is_empty() {
        format!("{status} with an empty body")
    } else {
        format!("{status} {}", one_line_excerpt(text, 200))
    }
}

/// `text` flattened to one line of at most `max` characters.
fn one_line_excerpt(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if text.chars().count() > max {
        format!("{flat}…")
    } else {
        flat
    }
}

/// A resource a case created and the credential that can remove it.
#[derive(Debug, Clone)]
enum Created {
    M2mLink {
        key: String,
        link_id: String,
    },
    LeafLink {
        token: String,
        segment: String,
        id: String,
    },
    LeafUser {
        token: String,
        id: String,
    },
}

/// Which API a request speaks, for the auth header, schemas and pacing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    M2m,
    Leaf,
    Sandbox,
}

impl Dialect {
    /// How notes name the API: `M2M`, `Leaf`, `sandbox`.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::M2m => "M2M",
            Dialect::Leaf => "Leaf",
            Dialect::Sandbox => "sandbox",
        }
    }
}

/// After this many requests in a row gave up as weather, the target is taken to be down.
const OUTAGE_AFTER: u32 = 2;

/// How long a request may go unanswered before the run says it is still waiting.
const SLOW: Duration = Duration::from_secs(5);

/// The largest answer a case reads from its target, as shadow mode passes on a vendor's:
/// past it, the case is weather (no answer of either API comes near it), and the run holds
/// no more of it. Read whole, a target's answer of 100 MB held the run at 480 MB.
pub const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// The most JSON values an answer the suite checks may hold: a page of the most items either
/// API lists (100), each carrying the most values a request may give it
/// ([`linkbox_contracts::json::MAX_JSON_VALUES`], as `userData` or a Leaf user) and its own
/// fields (under 1,000). A value costs some hundred bytes read as a tree, so 16 MiB of `0,`
/// (eight million values) would take a run past a gigabyte; past this many, the case is
/// weather, as past [`MAX_ANSWER_BYTES`]. (At 200,000, a page of 100 links of an honest
/// target's partner with large `userData` was weather.)
pub const MAX_ANSWER_VALUES: usize =
    MAX_PAGE_ITEMS * (linkbox_contracts::json::MAX_JSON_VALUES + 1_000);

/// The most items a page of either API lists.
const MAX_PAGE_ITEMS: usize = {
    let (m2m, leaf) = (
        linkbox_contracts::m2m::MAX_LIMIT as usize,
        linkbox_contracts::leaf::MAX_PAGE_SIZE as usize,
    );
    if m2m > leaf { m2m } else { leaf }
};

/// The most bytes of an answer a failure quotes (its `expected` and `actual`, each): an
/// answer's 16 MiB string quoted by each failing case held a run's report at 420 MB.
pub const MAX_QUOTED_BYTES: usize = 4096;

/// `text`, cut to [`MAX_QUOTED_BYTES`] at a character's edge, saying how long it was.
fn quoted(text: String) -> String {
    match text.len() > MAX_QUOTED_BYTES {
        true => format!(
            "{}… ({} bytes in all)",
            start(&text, MAX_QUOTED_BYTES),
            text.len()
        ),
        false => text,
    }
}

/// The first `limit` bytes of `text`, at a character's edge.
fn start(text: &str, limit: usize) -> &str {
    &text[..text.floor_char_boundary(limit)]
}

/// `text` cut to its first `limit` bytes and `…`, when longer.
fn excerpt(text: &str, limit: usize) -> String {
    match text.len() > limit {
        true => format!("{}…", start(text, limit)),
        false => text.to_owned(),
    }
}

/// Why a target's answer could not be read whole.
enum Unread {
    Failed(reqwest::Error),
    TooLarge,
    TooManyValues,
}

/// `response`'s body as text (invalid UTF-8 replaced), read up to [`MAX_ANSWER_BYTES`] and
/// holding at most [`MAX_ANSWER_VALUES`] JSON values.
async fn read_capped(mut response: reqwest::Response) -> Result<String, Unread> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Unread::Failed)? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(Unread::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    if linkbox_contracts::json::holds_more_values_than(&body, MAX_ANSWER_VALUES) {
        return Err(Unread::TooManyValues);
    }
    Ok(match String::from_utf8(body) {
        Ok(text) => text,
        Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
    })
}

/// How long a 429 asks to wait: its `Retry-After` in whole seconds, or a minute (the
/// documented limits are per minute) when it gives none or an HTTP date.
fn retry_after(reply: &Reply) -> Duration {
    wait_of(reply.header("retry-after"), reply.header("date"))
}

/// A 429's `Retry-After` as a message quotes it, with the wait it was read as: as sent when
/// it reads (`120 s`, a date and the wait to it), or saying it was missing or did not read
/// and so was taken as the minute [`wait_of`] falls back on.
fn retry_after_shown(retry_after: Option<&str>, wait: Duration) -> String {
    let Some(value) = retry_after.map(str::trim) else {
        return format!("no Retry-After (taken as {} s)", wait.as_secs());
    };
    let quoted = one_line_excerpt(value, 60);
    if !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()) {
        format!("Retry-After {quoted} s")
    } else if httpdate::parse_http_date(value).is_ok() {
        format!("Retry-After {quoted} ({} s away)", wait.as_secs())
    } else {
        format!(
            "Retry-After {quoted:?}, which reads as neither seconds nor a date (taken as {} s)",
            wait.as_secs()
        )
    }
}

/// The wait a `Retry-After` value asks for, in seconds or to an HTTP date (from `date`, the
/// answer's own `Date`, or now); a minute when there is none or it does not read.
fn wait_of(retry_after: Option<&str>, date: Option<&str>) -> Duration {
    let Some(value) = retry_after.map(str::trim) else {
        return Duration::from_secs(60);
    };
    if !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()) {
        // Seconds past what a u64 holds are longer than any wait.
        return Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX));
    }
    // An HTTP date: the wait to it from the answer's own `Date`, or from now.
    match httpdate::parse_http_date(value) {
        Ok(when) => {
            let now = date
                .and_then(|date| httpdate::parse_http_date(date).ok())
                .unwrap_or_else(std::time::SystemTime::now);
            when.duration_since(now).unwrap_or(Duration::ZERO)
        }
        Err(_) => Duration::from_secs(60),
    }
}

/// A case's view of the run. Cheap to clone.
#[derive(Clone)]
pub struct Ctx {
    shared: Arc<Shared>,
    case: &'static str,
    /// The case's source and the facts it names: which `[design]` checks bind it.
    source: Source,
    facts: &'static [&'static str],
    state: Arc<Mutex<CaseState>>,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("case", &self.case)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct CaseState {
    m2m_key: Option<String>,
    leaf_token: Option<String>,
    created: Vec<Created>,
    /// Every marked id handed out, for the sweep after an interruption.
    marks: Vec<String>,
    /// A changing request of the case whose attempt was lost (a 5xx or no answer) and may
    /// have been applied: what it made may show in any later answer of the case.
    lost: Option<String>,
}

impl Ctx {
    pub(crate) fn new(
        shared: Arc<Shared>,
        case: &'static str,
        source: Source,
        facts: &'static [&'static str],
    ) -> Ctx {
        Ctx {
            shared,
            case,
            source,
            facts,
            state: Arc::new(Mutex::new(CaseState::default())),
        }
    }

    /// Whether a check of the `[design]` fact `fact` binds this case. In-process always:
    /// linkbox keeps its own decisions. Against a target, in `[design]` cases (as strict as
    /// ever) and in a `[doc]` case that names the fact — but not in a `[doc]` case that only
    /// passes through the step the guess is about (a create on the way to an expiry): it is
    /// held to the docs alone, and the fact's own `[design]` case checks the guess (a unit
    /// test of [`crate::guesses`] keeps one for each fact relaxed).
    pub fn binds(&self, fact: &'static str) -> bool {
        debug_assert!(
            guesses::INCIDENTAL.contains(&fact),
            "{fact}: a [design] check that may not bind must be listed in guesses::INCIDENTAL"
        );
        self.in_process() || self.source != Source::Doc || self.facts.contains(&fact)
    }

    /// Notes an answer against the `[design]` fact `fact` that this case is not held to:
    /// the first one per fact is said on stderr and kept for the report's `[design]`
    /// differences; the case goes on.
    fn passed_over(&self, fact: &'static str, failure: &Failure) {
        {
            let mut differences = self
                .shared
                .differences
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if differences.iter().any(|known| known.fact == fact) {
                return;
            }
            differences.push(DesignDifference {
                fact,
                case: self.case,
                failure: failure.clone(),
            });
        }
        self.shared.console.note(&format!(
            "{}: the target answers against `{fact}` [design] — {} {}: expected {}, got {}; \
             [doc] cases are not held to it (its own [design] case checks it: --only all)",
            self.case,
            one_line_excerpt(&failure.request, 80),
            failure.check,
            one_line_excerpt(&failure.expected, 80),
            one_line_excerpt(&failure.actual, 120),
        ));
    }

    fn state(&self) -> MutexGuard<'_, CaseState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The id of the running case.
    pub fn case_id(&self) -> &'static str {
        self.case
    }

    /// True against an in-process linkbox (fresh tenants, control API available).
    pub fn in_process(&self) -> bool {
        self.shared.target.is_none()
    }

    /// A marked id, unique in this run: `contract-<label>-<run>-<n>`. Every `referenceId`,
    /// `externalId` and Leaf username the suite sends is one of these.
    pub fn mark(&self, label: &str) -> String {
        let n = self.shared.counter.fetch_add(1, Ordering::Relaxed);
        let mark = format!("contract-{label}-{}-{n}", self.shared.run_id);
        self.state().marks.push(mark.clone());
        mark
    }

    /// The case's M2M key: the target's, or a fresh sandbox key (a new partner in open mode).
    pub fn m2m_key(&self) -> String {
        let mut state = self.state();
        if let Some(key) = &state.m2m_key {
            return key.clone();
        }
        let key = match self
            .shared
            .target
            .as_ref()
            .and_then(|target| target.m2m_key.clone())
        {
            Some(key) => key,
            None => fresh_test_key(),
        };
        state.m2m_key = Some(key.clone());
        key
    }

    /// Another partner's key (in-process only): for tenant-isolation cases.
    pub fn other_m2m_key(&self) -> String {
        fresh_test_key()
    }

    /// The case's Leaf token: the target's, or one for a fresh account (open mode).
    pub async fn leaf_token(&self) -> Result<String, Failure> {
        if let Some(token) = self.state().leaf_token.clone() {
            return Ok(token);
        }
        let token = match self
            .shared
            .target
            .as_ref()
            .and_then(|target| target.leaf_token.clone())
        {
            Some(token) => token,
            None => self.new_leaf_account().await?,
        };
        self.state().leaf_token = Some(token.clone());
        Ok(token)
    }

    /// Authenticates a fresh account in open mode and returns its token.
    pub async fn new_leaf_account(&self) -> Result<String, Failure> {
        let reply = self
            .request(Dialect::Leaf, Method::POST, "/api/authenticate")
            .no_auth()
            .json(&json!({"username": self.mark("account"), "password": "contract", "rememberMe": false}))
            .send()
            .await?;
        reply.status(200)?;
        reply.string("/id_token")
    }

    /// A request on the case's M2M key.
    pub fn m2m(&self, method: Method, path: &str) -> Request {
        self.request(Dialect::M2m, method, path)
    }

    /// A request on the case's Leaf token.
    pub fn leaf(&self, method: Method, path: &str) -> Request {
        self.request(Dialect::Leaf, method, path)
    }

    /// A request to linkbox's control API, as the case's M2M partner.
    pub fn control(&self, method: Method, path: &str) -> Request {
        self.request(Dialect::Sandbox, method, path)
    }

    pub(crate) fn request(&self, dialect: Dialect, method: Method, path: &str) -> Request {
        Request {
            cx: self.clone(),
            dialect,
            method,
            path: path.to_owned(),
            headers: Vec::new(),
            body: None,
            auth: Auth::Default,
        }
    }

    /// `POST /partner/links` with `body`, expecting 201; returns `data`.
    pub async fn create_link(&self, body: Value) -> Result<Value, Failure> {
        let reply = self
            .m2m(Method::POST, "/partner/links")
            .json(&body)
            .send()
            .await?;
        reply.status(201)?;
        Ok(reply.json["data"].clone())
    }

    /// A link for a fresh marked `referenceId` and nothing else; returns `data`.
    pub async fn create_plain_link(&self) -> Result<Value, Failure> {
        let reference = self.mark("ref");
        self.create_link(json!({"referenceId": reference})).await
    }

    /// Moves the in-process sandbox clock forward.
    pub async fn advance_clock(&self, seconds: i64) -> Result<(), Failure> {
        self.control(Method::POST, "/_sandbox/clock")
            .json(&json!({"advanceSeconds": seconds}))
            .send()
            .await?
            .status(200)?;
        Ok(())
    }

    /// Plays the end user opening an M2M link; returns the control API's answer.
    pub async fn open_link(&self, link_id: &str) -> Result<Reply, Failure> {
        let reply = self
            .control(Method::POST, &format!("/_sandbox/m2m/links/{link_id}/open"))
            .json(&json!({"userAgent": "contract-suite", "platform": "test", "language": "en"}))
            .send()
            .await?;
        reply.status(200)?;
        Ok(reply)
    }

    /// Revokes, deletes what this case created, newest first. An answer saying it is gone
    /// already is as good (a case may have revoked, deleted or reset it away): a revoke's
    /// 400 or 404, a delete's 404. Any other answer, or none, leaves it on the target, and a warning on
    /// stderr names it.
    pub(crate) async fn cleanup(&self) {
        let created = std::mem::take(&mut self.state().created);
        for item in created.into_iter().rev() {
            let (what, gone) = match &item {
                Created::M2mLink { link_id, .. } => (format!("link {link_id}"), &[400, 404][..]),
                Created::LeafLink { segment, id, .. } => {
                    (format!("{segment} magic link {id}"), &[404][..])
                }
                Created::LeafUser { id, .. } => (format!("Leaf user {id}"), &[404][..]),
            };
            let request = match &item {
                Created::M2mLink { key, link_id } => self
                    .m2m(Method::POST, &format!("/partner/links/{link_id}/revoke"))
                    .auth(Auth::Key(key.clone()))
                    .json(&json!({"reason": "contract suite cleanup"})),
                Created::LeafLink { token, segment, id } => self
                    .leaf(
                        Method::DELETE,
                        &format!("/services/widgets/api/magic-link/{segment}/{id}"),
                    )
                    .auth(Auth::Bearer(token.clone())),
                Created::LeafUser { token, id } => self
                    .leaf(
                        Method::DELETE,
                        &format!("/services/usermanagement/api/users/{id}"),
                    )
                    .auth(Auth::Bearer(token.clone())),
            };
            let answer = match request.untracked().send().await {
                Ok(reply) if reply.status < 300 || gone.contains(&reply.status) => continue,
                Ok(reply) => format!("answered {}", reply.status),
                Err(failure) => failure.actual,
            };
            self.shared.console.warning(&format!(
                "{}: {what} it created could not be removed after it ({answer}); it stays on \
                 the target",
                self.case
            ));
        }
    }

    /// After an interruption a create may have reached the server without its reply reaching
    /// the case. Looks up each id this case marked and removes what is still there: active
    /// M2M links by `referenceId`, Leaf users by `externalId`. Only this run's marks.
    pub(crate) async fn sweep(&self) {
        let marks = std::mem::take(&mut self.state().marks);
        let key = self.state().m2m_key.clone();
        let token = self.state().leaf_token.clone();
        for mark in marks {
            if let Some(key) = &key {
                let query = format!("/partner/links?referenceId={mark}&visibility=active");
                let listed = self
                    .m2m(Method::GET, &query)
                    .auth(Auth::Key(key.clone()))
                    .untracked()
                    .send()
                    .await;
                for link in listed.iter().flat_map(|reply| {
                    reply.json["data"]["items"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                }) {
                    if let Some(link_id) = link["linkId"].as_str() {
                        self.track(Created::M2mLink {
                            key: key.clone(),
                            link_id: link_id.to_owned(),
                        });
                    }
                }
            }
            if let Some(token) = &token {
                let query = format!("/services/usermanagement/api/users?externalId={mark}");
                let listed = self
                    .leaf(Method::GET, &query)
                    .auth(Auth::Bearer(token.clone()))
                    .untracked()
                    .send()
                    .await;
                for user in listed
                    .iter()
                    .flat_map(|reply| reply.json.as_array().cloned().unwrap_or_default())
                {
                    if let Some(id) = user["id"].as_str() {
                        self.track(Created::LeafUser {
                            token: token.clone(),
                            id: id.to_owned(),
                        });
                    }
                }
            }
        }
        self.cleanup().await;
    }

    /// The changing request of this case whose attempt was lost and may have been applied,
    /// if there was one: any check of the case it fails after is weather, not drift.
    pub(crate) fn lost_attempt(&self) -> Option<String> {
        self.state().lost.clone()
    }

    fn track(&self, created: Created) {
        self.state().created.push(created);
    }

    /// Says that what a create made cannot be removed after the case: its answer lacks the
    /// id at `pointer` (drift of its own, which the case reports). `what` names what stays,
    /// by the marked id the suite sent where there is one, so it can be found by hand.
    fn cannot_track(&self, request: &str, pointer: &str, what: &str) {
        self.shared.console.warning(&format!(
            "{}: {request} answered without {pointer}; {what} it created stays on the target \
             (no id to revoke or delete it by)",
            self.case
        ));
    }
}

/// How a request authenticates.
#[derive(Debug, Clone)]
pub enum Auth {
    /// The case's credential for the dialect.
    Default,
    None,
    /// `X-API-Key: <key>`.
    Key(String),
    /// `Authorization: Bearer <token>`.
    Bearer(String),
}

/// A request being built; `send` paces, sends, validates and records.
pub struct Request {
    cx: Ctx,
    dialect: Dialect,
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    auth: Auth,
}

impl Request {
    pub fn no_auth(mut self) -> Request {
        self.auth = Auth::None;
        self
    }

    pub fn auth(mut self, auth: Auth) -> Request {
        self.auth = auth;
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A JSON body with `Content-Type: application/json`.
    pub fn json(mut self, body: &Value) -> Request {
        self.body = Some(body.to_string().into_bytes());
        self.header("content-type", "application/json")
    }

    /// A raw body; the content type is whatever [`Request::header`] set.
    pub fn raw(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = Some(body.into());
        self
    }

    /// Cleanup requests are not themselves recorded for cleanup.
    pub(crate) fn untracked(mut self) -> Request {
        self.headers.push(("x-contract-cleanup".into(), "1".into()));
        self
    }

    fn describe(&self) -> String {
        let mut text = format!("{} {}", self.method, self.path);
        if let Some(body) = &self.body {
            let body = String::from_utf8_lossy(body);
            if body.len() > 300 {
                text.push_str(&format!(" <{} bytes>", body.len()));
            } else if !body.is_empty() {
                text.push(' ');
                text.push_str(&body);
            }
        }
        text
    }

    /// Paces, sends, and handles weather: against a target a 429 is waited out per its
    /// `Retry-After` (at most [`Patience::rate_limit_waits`] times, each at most
    /// [`Patience::max_wait`]); a 5xx or a request without an answer is retried after a
    /// doubling backoff up to [`Patience::attempts`] in all. What is still weather after that
    /// is a [`Failure`] marked `weather`. A certificate failure is never retried. The reply
    /// is then recorded for cleanup and validated against its schema.
    pub async fn send(self) -> Result<Reply, Failure> {
        let described = self.describe();
        let credential = match &self.auth {
            Auth::Default => match self.dialect {
                // Boxed: a fresh token is itself fetched with a request.
                Dialect::Leaf => Box::pin(self.cx.leaf_token()).await?,
                Dialect::M2m | Dialect::Sandbox => self.cx.m2m_key(),
            },
            Auth::Key(key) | Auth::Bearer(key) => key.clone(),
            Auth::None => String::new(),
        };
        let is_create = self.method == Method::POST
            && (self.path == "/partner/links" || self.path.contains("/magic-link/"));
        let cleanup = self
            .headers
            .iter()
            .any(|(name, _)| name == "x-contract-cleanup");
        let shared = self.cx.shared.clone();
        let patience = &shared.patience;
        let mut attempt = 1;
        // While the target is down, one attempt per request: a dead target ends each case in
        // one round trip instead of the whole backoff.
        let attempts = if shared.struck.load(Ordering::Relaxed) >= OUTAGE_AFTER {
            1
        } else {
            patience.attempts
        };
        let mut rate_limit_waits = 0;
        // A request that changes something, whose earlier attempt may have been applied (a
        // reset or a timeout after sending, or a 5xx, which a gateway may give after the
        // target did the work): what its retry is answered (a 409 to a create, a revoke
        // refused as already revoked, an `externalId` taken) may be the first attempt's
        // doing, so a check it fails is weather, not drift ([`Reply::after_lost_attempt`]).
        let changes = !matches!(self.method, Method::GET | Method::HEAD | Method::OPTIONS);
        let mut maybe_delivered = false;
        let reply = loop {
            shared.pace(&credential, is_create, self.dialect).await;
            let weather = match self.attempt(&credential, &described).await {
                Ok(reply) => {
                    if reply.status == 429 && shared.target.is_some() {
                        let wait = retry_after(&reply);
                        if wait > patience.max_wait {
                            return Err(Failure::weather(
                                described,
                                "rate limit",
                                format!(
                                    "a Retry-After of at most {} s",
                                    patience.max_wait.as_secs()
                                ),
                                format!(
                                    "an answer of 429 with {}, longer than --max-wait",
                                    retry_after_shown(reply.header("retry-after"), wait)
                                ),
                            ));
                        }
                        if rate_limit_waits < patience.rate_limit_waits {
                            rate_limit_waits += 1;
                            shared.console.waiting(
                                wait,
                                &format!("for the {} rate limit", self.dialect.name()),
                            );
                            tokio::time::sleep(wait).await;
                            continue;
                        }
                        return Err(Failure::weather(
                            described,
                            "rate limit",
                            "an answer within the rate limit",
                            format!(
                                "429 after waiting out {rate_limit_waits} Retry-After periods: {}",
                                body_shown(&reply.text)
                            ),
                        ));
                    }
                    if reply.status >= 500 {
                        maybe_delivered |= changes;
                        Failure::weather(
                            described.clone(),
                            "server error",
                            "an answer from the target",
                            answer_shown(reply.status, &reply.text),
                        )
                    } else {
                        shared.struck.store(0, Ordering::Relaxed);
                        let mut reply = reply;
                        if maybe_delivered {
                            // Said whatever the retry got: a create retried into a 201 may
                            // have made two, the lost one's left on the target.
                            shared.console.note(&format!(
                                "{} {} answered {} to a retry: an earlier attempt may have \
                                 been applied, and what it made may be left on the target",
                                self.method, self.path, reply.status
                            ));
                            reply.after_lost_attempt = true;
                            if !cleanup {
                                self.cx
                                    .state()
                                    .lost
                                    .get_or_insert_with(|| described.clone());
                            }
                        }
                        break reply;
                    }
                }
                Err((failure, sent)) => {
                    if matches!(failure.check.as_str(), "certificate" | "tls") {
                        return Err(failure);
                    }
                    maybe_delivered |= sent && changes;
                    failure
                }
            };
            if attempt >= attempts {
                if shared.struck.fetch_add(1, Ordering::Relaxed) + 1 == OUTAGE_AFTER {
                    shared.console.note(&format!(
                        "the target failed {OUTAGE_AFTER} requests in a row after all retries: \
                         one attempt per request until it answers again"
                    ));
                }
                let mut failure = weather;
                let plural = if attempt == 1 { "" } else { "s" };
                failure.actual = format!("{} (after {attempt} attempt{plural})", failure.actual);
                return Err(failure);
            }
            let wait = patience.backoff * 2u32.saturating_pow(attempt - 1);
            shared.console.waiting(
                wait,
                &format!(
                    "before retrying {} {} ({}; attempt {} of {})",
                    self.method,
                    self.path,
                    one_line_excerpt(&weather.actual, 100),
                    attempt + 1,
                    attempts
                ),
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        };
        if !cleanup {
            self.record(&reply, &credential);
            if let Some(schema) = schema_for(self.dialect, &self.method, &self.path, reply.status) {
                reply.schema(&self.cx, schema)?;
            }
        }
        Ok(reply)
    }

    /// One attempt: the reply, or the failure and whether the request may have reached the
    /// target (false only when the connection was never made).
    async fn attempt(&self, credential: &str, described: &str) -> Result<Reply, (Failure, bool)> {
        let shared = &self.cx.shared;
        let url = format!("{}{}", shared.base, self.path);
        let mut builder = shared.client.request(self.method.clone(), url);
        for (name, value) in &self.headers {
            if name != "x-contract-cleanup" {
                builder = builder.header(name.as_str(), value.as_str());
            }
        }
        builder = match (&self.auth, self.dialect) {
            (Auth::None, _) => builder,
            (Auth::Bearer(token), _) => builder.bearer_auth(token),
            (Auth::Key(key), _) => builder.header("x-api-key", key),
            (Auth::Default, Dialect::Leaf) => builder.bearer_auth(credential),
            (Auth::Default, _) => builder.header("x-api-key", credential),
        };
        if let Some(body) = self.body.clone() {
            builder = builder.body(body);
        }
        let unanswered = |error: reqwest::Error| {
            let sent = !error.is_connect();
            let check = match tls_failure(&error) {
                Some(TlsFailure::Certificate) => "certificate",
                Some(TlsFailure::Handshake) => "tls",
                None if error.is_timeout() => "timeout",
                None => "connection",
            };
            let failure = Failure::weather(
                described.to_owned(),
                check,
                "an HTTP response",
                error_chain(&error),
            );
            (failure, sent)
        };
        let sending = builder.send();
        let mut sending = std::pin::pin!(sending);
        let response = tokio::select! {
            response = &mut sending => response,
            () = tokio::time::sleep(SLOW) => {
                shared.console.note(&format!(
                    "waiting for the target: {described_short} has not answered in {} s \
                     (timeout {} s)",
                    SLOW.as_secs(),
                    shared.patience.timeout.as_secs(),
                    described_short = one_line_excerpt(described, 80),
                ));
                sending.await
            }
        }
        .map_err(unanswered)?;
        let status = response.status().as_u16();
        // The run's credentials, where the target quotes them, are redacted as the answer
        // arrives, in its headers and its body: every excerpt, cut or escaping of it made
        // later is of the redacted text.
        let headers = scrubbed_headers(&shared.console, response.headers());
        let text = read_capped(response).await.map_err(|unread| match unread {
            Unread::Failed(error) => unanswered(error),
            Unread::TooLarge => (
                Failure::weather(
                    described.to_owned(),
                    "size",
                    format!("an answer of at most {MAX_ANSWER_BYTES} bytes"),
                    format!("more than {MAX_ANSWER_BYTES} bytes (not read further)"),
                ),
                true,
            ),
            Unread::TooManyValues => (
                Failure::weather(
                    described.to_owned(),
                    "size",
                    format!("an answer of at most {MAX_ANSWER_VALUES} JSON values"),
                    format!("more than {MAX_ANSWER_VALUES} JSON values (not read as JSON)"),
                ),
                true,
            ),
        })?;
        let text = shared.console.scrub(&text).into_owned();
        let (json, unread) = match serde_json::from_str(&text) {
            Ok(json) => (json, None),
            Err(error) if error.to_string().starts_with("recursion limit exceeded") => {
                let why = "JSON nested more than 128 levels deep, deeper than the suite reads";
                (Value::Null, Some(why.to_owned()))
            }
            Err(error) => (Value::Null, Some(format!("not JSON ({error})"))),
        };
        Ok(Reply {
            request: described.to_owned(),
            status,
            headers,
            text,
            json,
            unread,
            after_lost_attempt: false,
            cx: self.cx.clone(),
        })
    }

    /// Records what a successful create made, so cleanup can remove it.
    fn record(&self, reply: &Reply, credential: &str) {
        if self.method != Method::POST || !(200..300).contains(&reply.status) {
            return;
        }
        let id = |pointer: &str| reply.json.pointer(pointer).and_then(Value::as_str);
        match self.dialect {
            Dialect::M2m if self.path == "/partner/links" => match id("/data/linkId") {
                Some(link_id) => self.cx.track(Created::M2mLink {
                    key: credential.to_owned(),
                    link_id: link_id.to_owned(),
                }),
                None => self.cx.cannot_track(
                    "POST /partner/links",
                    "/data/linkId",
                    &self.naming("the link", "referenceId"),
                ),
            },
            Dialect::Leaf => {
                let Some(rest) = self.path.strip_prefix("/services/") else {
                    return;
                };
                if rest == "usermanagement/api/users" {
                    match id("/id") {
                        Some(user) => self.cx.track(Created::LeafUser {
                            token: credential.to_owned(),
                            id: user.to_owned(),
                        }),
                        None => self.cx.cannot_track(
                            &format!("POST {}", self.path),
                            "/id",
                            &self.naming("the Leaf user", "externalId"),
                        ),
                    }
                    return;
                }
                let Some(segment) = rest
                    .strip_prefix("widgets/api/magic-link/")
                    .and_then(|tail| tail.rsplit('/').next())
                else {
                    return;
                };
                // With user creation the user is new (or reused, created earlier by this
                // run under the same marked externalId): delete it after the link. An
                // answer without its id leaves that user behind, which is said like a link
                // left behind.
                if !rest.contains("/users/") && !rest.contains("/user/") {
                    match id("/leafUserId") {
                        Some(user) => self.cx.track(Created::LeafUser {
                            token: credential.to_owned(),
                            id: user.to_owned(),
                        }),
                        None => self.cx.cannot_track(
                            &format!("POST {}", self.path),
                            "/leafUserId",
                            &self.naming("the Leaf user", "externalId"),
                        ),
                    }
                }
                match id("/id") {
                    Some(link) => self.cx.track(Created::LeafLink {
                        token: credential.to_owned(),
                        segment: segment.to_owned(),
                        id: link.to_owned(),
                    }),
                    None => self.cx.cannot_track(
                        &format!("POST {}", self.path),
                        "/id",
                        &format!("the {segment} magic link"),
                    ),
                }
            }
            _ => {}
        }
    }

    /// `what`, with the marked id the request body sent as `field` when it has one: `the
    /// link (referenceId contract-ref-…)`.
    fn naming(&self, what: &str, field: &str) -> String {
        let sent = self
            .body
            .as_deref()
            .and_then(|body| serde_json::from_slice::<Value>(body).ok())
            .and_then(|body| body.get(field).and_then(Value::as_str).map(str::to_owned));
        match sent {
            Some(id) => format!("{what} ({field} {id})"),
            None => what.to_owned(),
        }
    }
}

/// The committed schema a response must match, by API, endpoint and status; `None` where
/// no schema applies (sandbox endpoints, empty bodies).
pub fn schema_for(
    dialect: Dialect,
    method: &Method,
    path: &str,
    status: u16,
) -> Option<&'static str> {
    let path = path.split('?').next().unwrap_or(path);
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match dialect {
        Dialect::M2m => {
            if status >= 400 {
                return Some("m2m/ErrorEnvelope.json");
            }
            match (method.as_str(), segments.as_slice(), status) {
                ("POST", ["partner", "links"], 201) => Some("m2m/CreateLinkResponse.json"),
                ("GET", ["partner", "links"], 200) => Some("m2m/ListLinksResponse.json"),
                ("GET", ["partner", "links", _], 200) => Some("m2m/LinkDetailResponse.json"),
                ("POST", ["partner", "links", _, "revoke"], 200) => {
                    Some("m2m/RevokeLinkResponse.json")
                }
                ("PUT", ["partner", "data-requests", _], 200) => {
                    Some("m2m/FulfilDataRequestResponse.json")
                }
                ("POST", ["partner", "webhooks", "config", "regenerate-secret"], 200) => {
                    Some("m2m/RegeneratedSecret.json")
                }
                _ => None,
            }
        }
        Dialect::Leaf => leaf_schema(method.as_str(), &segments, status),
        Dialect::Sandbox => sandbox_schema(method.as_str(), &segments, status),
    }
}

fn sandbox_schema(method: &str, segments: &[&str], status: u16) -> Option<&'static str> {
    if status >= 400 {
        return Some("sandbox/SandboxErrorBody.json");
    }
    match (method, segments) {
        ("GET", ["_sandbox", "health"]) => Some("sandbox/Health.json"),
        (_, ["_sandbox", "clock"]) => Some("sandbox/ClockView.json"),
        ("POST", ["_sandbox", "reset"]) if status == 200 => Some("sandbox/ResetDone.json"),
        ("POST", ["_sandbox", "m2m", "links", _, "open"]) => Some("sandbox/OpenedLink.json"),
        ("GET", ["_sandbox", "requests"]) => Some("sandbox/JournalPage.json"),
        ("GET", ["_sandbox", "webhooks"]) => Some("sandbox/DeliveryPage.json"),
        _ => None,
    }
}

fn leaf_schema(method: &str, segments: &[&str], status: u16) -> Option<&'static str> {
    if status >= 400 {
        return Some("leaf/Problem.json");
    }
    match (method, segments, status) {
        ("POST", ["api", "authenticate"], 200) => Some("leaf/AuthenticateResponse.json"),
        ("POST", ["services", "widgets", "api", "magic-link", ..], 200) => {
            Some("leaf/MagicLinkCreated.json")
        }
        ("GET", ["services", "widgets", "api", "magic-link", _, _], 200) => {
            Some("leaf/MagicLink.json")
        }
        ("GET", ["services", "widgets", "api", "magic-link", _], 200) => {
            Some("leaf/Array_of_MagicLink.json")
        }
        ("GET", ["services", "usermanagement", "api", "users", _], 200)
        | ("POST" | "PUT", ["services", "usermanagement", "api", "users", ..], 200 | 201) => {
            Some("leaf/LeafUser.json")
        }
        ("GET", ["services", "usermanagement", "api", "users"], 200) => {
            Some("leaf/Array_of_LeafUser.json")
        }
        _ => None,
    }
}

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct Reply {
    /// How the request was described in failures.
    pub request: String,
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    /// The body as JSON, or `Null` when it is not JSON.
    pub json: Value,
    /// Why a body that is not `null` was read as `Null`: not JSON, or JSON nested deeper
    /// than the suite reads (128 levels; no answer of either API comes near).
    unread: Option<String>,
    /// The answer to a retry of a request that changes something, after an attempt that may
    /// have been applied went unanswered or got a 5xx: a check it fails is weather.
    pub after_lost_attempt: bool,
    /// The case it answers: which `[design]` checks bind it ([`Ctx::binds`]).
    cx: Ctx,
}

impl Reply {
    fn fail(
        &self,
        check: impl Into<String>,
        expected: impl std::fmt::Display,
        actual: impl std::fmt::Display,
    ) -> Failure {
        let mut actual = quoted(actual.to_string());
        if self.after_lost_attempt {
            actual.push_str(
                " (to a retry: an earlier attempt went unanswered or got a server error, and \
                 may have been applied)",
            );
        }
        Failure {
            request: self.request.clone(),
            check: check.into(),
            expected: quoted(expected.to_string()),
            actual,
            weather: self.after_lost_attempt,
        }
    }

    /// A failure about this reply, for checks a case computes itself.
    pub fn failure(
        &self,
        check: impl Into<String>,
        expected: impl std::fmt::Display,
        actual: impl std::fmt::Display,
    ) -> Failure {
        self.fail(check, expected, actual)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    fn body_excerpt(&self) -> String {
        excerpt(&self.text, 400)
    }

    /// The status code is `expected`.
    pub fn status(&self, expected: u16) -> Result<&Reply, Failure> {
        if self.status == expected {
            Ok(self)
        } else {
            Err(self.fail(
                "status",
                expected,
                format!("{} {}", self.status, self.body_excerpt()),
            ))
        }
    }

    /// The status code is in `range` (a 4xx where the spec names no status).
    pub fn status_in(&self, range: std::ops::RangeInclusive<u16>) -> Result<&Reply, Failure> {
        if range.contains(&self.status) {
            Ok(self)
        } else {
            Err(self.fail(
                "status",
                format!("{}..={}", range.start(), range.end()),
                format!("{} {}", self.status, self.body_excerpt()),
            ))
        }
    }

    /// `check`, of the `[design]` fact `fact`: its failure is the case's where the fact binds
    /// ([`Ctx::binds`]); elsewhere the answer is noted as a `[design]` difference and the
    /// check passes. Weather is never passed over.
    fn guess<'a>(
        &'a self,
        fact: &'static str,
        check: Result<&'a Reply, Failure>,
    ) -> Result<&'a Reply, Failure> {
        match check {
            Err(failure) if !failure.weather && !self.cx.binds(fact) => {
                self.cx.passed_over(fact, &failure);
                Ok(self)
            }
            check => check,
        }
    }

    /// The status code is `expected`, where the exact code is the `[design]` fact `fact` (a
    /// Leaf create answered 200): where the fact does not bind, any status of the same class
    /// passes (a 201 where linkbox guessed 200), and the difference is noted.
    pub fn design_status(&self, fact: &'static str, expected: u16) -> Result<&Reply, Failure> {
        if self.cx.binds(fact) {
            return self.status(expected);
        }
        let class = expected / 100 * 100;
        self.status_in(class..=class + 99)?;
        self.guess(fact, self.status(expected))
    }

    /// The media type of `Content-Type` (parameters ignored) is `expected`.
    pub fn content_type(&self, expected: &str) -> Result<&Reply, Failure> {
        let actual = self.header("content-type").unwrap_or("");
        let media = actual.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case(expected) {
            Ok(self)
        } else {
            Err(self.fail("header content-type", expected, actual))
        }
    }

    /// The value at JSON `pointer` (`/data/status`), or a failure when it is absent.
    pub fn get(&self, pointer: &str) -> Result<&Value, Failure> {
        self.json
            .pointer(pointer)
            .ok_or_else(|| self.fail(format!("body {pointer}"), "present", self.body_excerpt()))
    }

    /// The string at `pointer`.
    pub fn string(&self, pointer: &str) -> Result<String, Failure> {
        match self.get(pointer)? {
            Value::String(text) => Ok(text.clone()),
            other => Err(self.fail(format!("body {pointer}"), "a string", other)),
        }
    }

    /// The value at `pointer` is exactly `expected`.
    pub fn eq(&self, pointer: &str, expected: Value) -> Result<&Reply, Failure> {
        let actual = self.json.pointer(pointer).cloned();
        if actual.as_ref() == Some(&expected) {
            Ok(self)
        } else {
            Err(self.fail(
                format!("body {pointer}"),
                expected,
                actual.map_or_else(|| "absent".to_owned(), |value| value.to_string()),
            ))
        }
    }

    /// The value at `pointer` is present and `null`.
    pub fn null(&self, pointer: &str) -> Result<&Reply, Failure> {
        self.eq(pointer, Value::Null)
    }

    /// The string at `pointer` matches the regular expression `pattern`.
    pub fn pattern(&self, pointer: &str, pattern: &str) -> Result<&Reply, Failure> {
        let value = self.string(pointer)?;
        if matches(pattern, &value) {
            Ok(self)
        } else {
            Err(self.fail(
                format!("body {pointer}"),
                format!("matching {pattern}"),
                value,
            ))
        }
    }

    /// The header is present with exactly `expected`.
    pub fn header_eq(&self, name: &str, expected: &str) -> Result<&Reply, Failure> {
        let actual = self.header(name);
        if actual == Some(expected) {
            Ok(self)
        } else {
            Err(self.fail(
                format!("header {name}"),
                expected,
                actual.unwrap_or("absent"),
            ))
        }
    }

    /// The body is exactly this JSON value.
    pub fn body(&self, expected: Value) -> Result<&Reply, Failure> {
        if self.json == expected {
            Ok(self)
        } else {
            Err(self.fail("body", expected, self.body_excerpt()))
        }
    }

    /// An `X-Linkbox-Warning` header names `field` (linkbox's note of an ignored field).
    pub fn names_ignored_field(&self, field: &str) -> Result<&Reply, Failure> {
        let warnings: Vec<&str> = self
            .headers
            .get_all("x-linkbox-warning")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        if warnings.iter().any(|warning| warning.contains(field)) {
            Ok(self)
        } else {
            Err(self.fail(
                "header x-linkbox-warning",
                format!("names {field}"),
                format!("{warnings:?}"),
            ))
        }
    }

    /// An M2M error: the status, `application/json` and exactly
    /// `{"success": false, "error": {"code", "message"}}` — exactly being
    /// `M2M-ENVELOPE-ERROR-EXACT` [design]: where it does not bind, those members with those
    /// values, whatever else the envelope carries.
    pub fn m2m_error(&self, status: u16, code: &str, message: &str) -> Result<&Reply, Failure> {
        self.status(status)?;
        self.content_type("application/json")?;
        let exact = json!({"success": false, "error": {"code": code, "message": message}});
        if self.cx.binds("M2M-ENVELOPE-ERROR-EXACT") {
            return self.body(exact);
        }
        self.eq("/success", json!(false))?
            .eq("/error/code", json!(code))?
            .eq("/error/message", json!(message))?;
        self.guess("M2M-ENVELOPE-ERROR-EXACT", self.body(exact))
    }

    /// An M2M error's status and code, whatever the message says.
    pub fn m2m_code(&self, status: u16, code: &str) -> Result<&Reply, Failure> {
        self.status(status)?;
        self.eq("/success", json!(false))?;
        self.eq("/error/code", json!(code))
    }

    /// A Leaf problem: the status, `application/problem+json` (`LEAF-PROBLEM-CONTENT-TYPE`
    /// [design]), and the same status in the body (`LEAF-PROBLEM-SHAPE` [design]). Where
    /// those do not bind, the status alone: the vendor documents no error format.
    pub fn problem(&self, status: u16) -> Result<&Reply, Failure> {
        self.status(status)?;
        self.guess(
            "LEAF-PROBLEM-CONTENT-TYPE",
            self.content_type("application/problem+json"),
        )?;
        self.guess("LEAF-PROBLEM-SHAPE", self.eq("/status", json!(status)))
    }

    /// A Leaf constraint violation naming `field` among its `fieldErrors`: a 400 [`problem`]
    /// of the constraint-violation `type` (`LEAF-PROBLEM-CONSTRAINT-TYPE` [design]) naming
    /// the field (`LEAF-PROBLEM-FIELD-ERRORS` [design]). Where those do not bind, the 400.
    ///
    /// [`problem`]: Reply::problem
    pub fn violation(&self, field: &str) -> Result<&Reply, Failure> {
        self.problem(400)?;
        self.guess(
            "LEAF-PROBLEM-CONSTRAINT-TYPE",
            self.eq(
                "/type",
                json!("https://www.jhipster.tech/problem/constraint-violation"),
            ),
        )?;
        let fields: Vec<&str> = self
            .json
            .get("fieldErrors")
            .and_then(Value::as_array)
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(|error| error.get("field").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default();
        let named = if fields.contains(&field) {
            Ok(self)
        } else {
            Err(self.fail(
                "body /fieldErrors[].field",
                format!("contains {field}"),
                format!("{fields:?}"),
            ))
        };
        self.guess("LEAF-PROBLEM-FIELD-ERRORS", named)
    }

    /// The timestamp at `pointer` has exactly `digits` fraction digits and ends in `Z`.
    pub fn timestamp(&self, pointer: &str, digits: usize) -> Result<&Reply, Failure> {
        let pattern =
            format!(r"^\d{{4}}-\d{{2}}-\d{{2}}T\d{{2}}:\d{{2}}:\d{{2}}\.\d{{{digits}}}Z$");
        self.pattern(pointer, &pattern)?;
        Ok(self)
    }

    /// The instant at `pointer`.
    pub fn instant(&self, pointer: &str) -> Result<time::OffsetDateTime, Failure> {
        let text = self.string(pointer)?;
        linkbox_contracts::timefmt::parse(&text)
            .ok_or_else(|| self.fail(format!("body {pointer}"), "an ISO 8601 instant", text))
    }

    /// The body validates against the committed schema `path`. Where a `[design]` fact
    /// whose constraint the schema states ([`guesses::SCHEMA`]: an id pattern, the error
    /// envelope's exact members) does not bind ([`Ctx::binds`]), the body is held to the
    /// schema without that constraint, and an answer against it is noted instead.
    pub fn schema(&self, cx: &Ctx, path: &str) -> Result<&Reply, Failure> {
        let Some(validator) = cx.shared.schemas.get(path) else {
            // Not committed (yet): nothing to validate against.
            return Ok(self);
        };
        if validator.is_valid(&self.json) {
            return Ok(self);
        }
        if let Some(why) = &self.unread {
            return Err(self.fail(
                format!("schema {path}"),
                "valid",
                format!("{why} — {}", self.body_excerpt()),
            ));
        }
        let errors = schema_errors(validator, &self.json, &self.text);
        let invalid = |errors: Vec<String>| {
            self.fail(
                format!("schema {path}"),
                "valid",
                format!("{} — {}", errors.join("; "), self.body_excerpt()),
            )
        };
        let unheld: Vec<&'static str> = cx
            .shared
            .schema_guesses
            .get(path)
            .into_iter()
            .flatten()
            .copied()
            .filter(|fact| !cx.binds(fact))
            .collect();
        let Some(relaxed) = (!unheld.is_empty())
            .then(|| cx.shared.relaxed(path, &unheld))
            .flatten()
        else {
            return Err(invalid(errors));
        };
        if !relaxed.is_valid(&self.json) {
            return Err(invalid(schema_errors(&relaxed, &self.json, &self.text)));
        }
        // Valid but for the guesses: note each one the answer contradicts on its own, held
        // to its constraint alone (every other guess's taken out).
        let failure = invalid(errors);
        for &fact in &unheld {
            let others: Vec<&'static str> = unheld
                .iter()
                .copied()
                .filter(|other| *other != fact)
                .collect();
            let contradicted = match others.is_empty() {
                true => true,
                false => cx
                    .shared
                    .relaxed(path, &others)
                    .is_some_and(|alone| !alone.is_valid(&self.json)),
            };
            if contradicted {
                self.guess(fact, Err(failure.clone()))?;
            }
        }
        Ok(self)
    }
}

/// The first few ways `json` (read from `text`) fails `validator`, each with where and cut
/// to a few hundred bytes: the first alone for a large answer, since finding more means
/// finding every one (jsonschema gathers them all at once: for an answer of eight million
/// values each of the wrong type, gigabytes).
fn schema_errors(validator: &jsonschema::Validator, json: &Value, text: &str) -> Vec<String> {
    let say = |error: jsonschema::ValidationError<'_>| {
        format!(
            "{} at {}",
            excerpt(&error.to_string(), 400),
            error.instance_path()
        )
    };
    if text.len() > 64 * 1024 {
        return validator
            .validate(json)
            .err()
            .map(say)
            .into_iter()
            .collect();
    }
    validator.iter_errors(json).take(3).map(say).collect()
}

/// Whether `text` matches the regular expression `pattern` (via a one-line JSON Schema, so
/// the suite needs no regex crate of its own).
pub fn matches(pattern: &str, text: &str) -> bool {
    jsonschema::validator_for(&json!({"type": "string", "pattern": pattern}))
        .map(|validator| validator.is_valid(&json!(text)))
        .unwrap_or(false)
}

/// An `m2m_test_` key nobody has used: a new partner in open mode.
fn fresh_test_key() -> String {
    format!(
        "{}{:016x}{:016x}",
        linkbox_contracts::m2m::TEST_KEY_PREFIX,
        random_u64(),
        random_u64()
    )
}

/// 64 random bits from the standard library's per-process hasher keys.
pub(crate) fn random_u64() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or_default(),
    );
    hasher.finish()
}

/// An error and its causes on one line (reqwest hides "connection refused" in the chain).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `headers` with the run's credentials redacted in every value ([`Console::scrub`]).
fn scrubbed_headers(
    console: &Console,
    headers: &reqwest::header::HeaderMap,
) -> reqwest::header::HeaderMap {
    use reqwest::header::HeaderValue;
    let mut scrubbed = reqwest::header::HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let text = String::from_utf8_lossy(value.as_bytes());
        let value = match console.scrub(&text) {
            std::borrow::Cow::Owned(shown) => HeaderValue::from_str(&shown)
                .unwrap_or_else(|_| HeaderValue::from_static(linkbox_contracts::sandbox::REDACTED)),
            std::borrow::Cow::Borrowed(_) => value.clone(),
        };
        scrubbed.append(name, value);
    }
    scrubbed
}

#[cfg(test)]
mod tests {
    /// An answer's body is quoted on one line, or said to be empty: a 503 with no body
    /// read `503 ` in the retry line and the report.
    #[test]
    fn an_answer_is_quoted_on_one_line_or_said_to_be_empty() {
        use super::{answer_shown, body_shown};
        assert_eq!(answer_shown(503, ""), "503 with an empty body");
        assert_eq!(answer_shown(502, " \r\n"), "502 with an empty body");
        assert_eq!(answer_shown(503, "busy\nnow"), "503 busy now");
        assert_eq!(body_shown(""), "an empty body");
        assert_eq!(body_shown("{\"a\":1}"), "{\"a\":1}");
        assert!(answer_shown(500, &"x".repeat(300)).ends_with("x…"));
    }

    /// A `Retry-After` in seconds, past what a u64 holds, or as an HTTP date; a minute for
    /// one that does not read.
    #[test]
    fn a_retry_after_reads_as_seconds_or_a_date() {
        use super::{retry_after_shown, wait_of};
        use std::time::Duration;
        assert_eq!(wait_of(Some("7"), None), Duration::from_secs(7));
        assert_eq!(
            wait_of(Some(" 99999999999999999999999 "), None),
            Duration::from_secs(u64::MAX)
        );
        assert_eq!(
            wait_of(
                Some("Wed, 21 Oct 2037 07:28:00 GMT"),
                Some("Wed, 21 Oct 2037 07:26:00 GMT")
            ),
            Duration::from_secs(120)
        );
        assert_eq!(
            wait_of(Some("Wed, 21 Oct 2015 07:28:00 GMT"), None),
            Duration::ZERO
        );
        assert_eq!(wait_of(Some("soon"), None), Duration::from_secs(60));
        assert_eq!(wait_of(None, None), Duration::from_secs(60));
        // Quoted as sent, with what it was read as: the target never said a minute.
        let minute = Duration::from_secs(60);
        assert_eq!(
            retry_after_shown(Some("-1"), minute),
            "Retry-After \"-1\", which reads as neither seconds nor a date (taken as 60 s)"
        );
        assert_eq!(
            retry_after_shown(None, minute),
            "no Retry-After (taken as 60 s)"
        );
        assert_eq!(
            retry_after_shown(Some("99999999999999999999999"), Duration::MAX),
            "Retry-After 99999999999999999999999 s"
        );
    }
}
