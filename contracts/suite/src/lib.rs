//! The contract suite: one case per behaviour of `m2m.md`, `leaf.md` and `sandbox.md`, and the
//! runner that sends them to linkbox or to a real deployment.
//!
//! # Layout
//! - this module: the facade — [`Case`], [`Source`], [`Options`], [`run`] — and the runner
//!   (selection, pacing, cleanup, interruption).
//! - [`cli`]: the command line (`cargo xtask contract`): arguments, reports to files, exit
//!   codes. The caller says how to start linkbox in-process ([`cli::Started`]), so this crate
//!   depends on the wire types of `linkbox-contracts` only, never on the server.
//! - [`client`]: the case context [`Ctx`], requests, responses and their checks; every
//!   response is validated against the committed JSON Schemas on the way in.
//! - [`m2m`], [`leaf`], [`sandbox`]: the cases, written from the spec files.
//! - [`guesses`]: the `[design]` facts a `[doc]` case is not held to against a target, and
//!   the committed schemas without their constraints.
//! - [`report`]: progress lines, the failure block, the summary, the drift report, JUnit and
//!   JSON.
//! - [`console`]: stderr notes (waits, warnings, errors) and colour.
//! - [`shadow`]: shadow mode's comparison — the contract's differences between the upstream's
//!   and linkbox's answers to one request, each naming its fact, and the ids the two minted.
//!
//! A case is a literal request and a literal expectation with its source: `[doc]` (the
//! vendor's page says so), `[design]` (linkbox's own decision where the vendor is silent;
//! facts only seen in a doc example count as design too) or `sandbox` (linkbox's control API).
//! Against a target only `[doc]` cases run unless `--only all`; cases that need linkbox's
//! control API, a second tenant, or that trip a rate limit on purpose are *local*: they run
//! against an in-process linkbox only. There a `[doc]` case is held to the docs alone: a step
//! it passes through whose details are a `[design]` guess (a create's exact status, an id
//! format) is checked by that guess's own `[design]` case, and an answer against it is a
//! `[design]` difference of the report, not the vendor differing from its docs.
//!
//! Each case ends `pass`, `fail` (the target answered, and the answer contradicts the
//! contract: drift) or `error` (the target could not be asked: weather). Against a target a
//! 429 is waited out per its `Retry-After` and retried, a 5xx or a connection error is retried
//! with backoff ([`Patience`]); only what is still weather after that is an `error`. Before the
//! first case one cheap authenticated request per API checks each credential
//! ([`client::Shared::preflight`]).

pub mod cli;
pub mod client;
pub mod console;
pub mod facts;
pub mod guesses;
pub mod leaf;
pub mod m2m;
pub mod report;
pub mod sandbox;
pub mod shadow;

use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::time::{Duration, Instant};

pub use client::{Ctx, Failure, Reply};
pub use console::Console;
pub use report::{CaseResult, Outcome, Report};

/// What a case's body returns: `Ok` when every expectation held.
pub type CaseFuture = Pin<Box<dyn Future<Output = Result<(), Failure>> + Send>>;

/// Where an expectation comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// Stated by the vendor's public docs; runs against a real deployment.
    Doc,
    /// linkbox's decision (or a doc example); a failure against a target means the spec
    /// guessed wrong.
    Design,
    /// linkbox's own control API; never exists at the vendor.
    Sandbox,
}

impl Source {
    /// The tag printed after each case id.
    pub fn tag(self) -> &'static str {
        match self {
            Source::Doc => "[doc]",
            Source::Design => "[design]",
            Source::Sandbox => "[sandbox]",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Source::Doc => "doc",
            Source::Design => "design",
            Source::Sandbox => "sandbox",
        }
    }
}

/// Which API a case exercises; the first segment of its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    M2m,
    Leaf,
    Sandbox,
}

impl Api {
    pub fn name(self) -> &'static str {
        match self {
            Api::M2m => "m2m",
            Api::Leaf => "leaf",
            Api::Sandbox => "sandbox",
        }
    }

    pub fn parse(text: &str) -> Option<Api> {
        match text {
            "m2m" => Some(Api::M2m),
            "leaf" => Some(Api::Leaf),
            "sandbox" => Some(Api::Sandbox),
            _ => None,
        }
    }
}

/// One behaviour, one expectation.
pub struct Case {
    /// `api.area.behaviour`, unique.
    pub id: &'static str,
    pub source: Source,
    /// Needs linkbox's control API, a second tenant or a deliberately tripped limit: runs
    /// in-process only.
    pub local: bool,
    /// The ids of the facts of `docs/contract/` the case checks; at least one, each checked
    /// at compile time ([`facts::known`]).
    pub facts: &'static [&'static str],
    pub run: fn(Ctx) -> CaseFuture,
}

impl Case {
    pub fn api(&self) -> Api {
        match self.id.split('.').next() {
            Some("leaf") => Api::Leaf,
            Some("sandbox") => Api::Sandbox,
            _ => Api::M2m,
        }
    }
}

/// Declares a case: `case!(id, Source, ["FACT-ID", ...], |cx| async move { ... })`, or
/// `local_case!` for one that needs the in-process sandbox. The fact list may not be empty, and
/// an id that is not a fact of `docs/contract/` fails the build.
macro_rules! case {
    ($id:literal, $source:ident, [$($fact:literal),+ $(,)?], |$cx:ident| $body:expr) => {
        $crate::Case {
            id: $id,
            source: $crate::Source::$source,
            local: false,
            facts: $crate::facts::facts![$($fact),+],
            run: |$cx| Box::pin($body),
        }
    };
}
macro_rules! local_case {
    ($id:literal, $source:ident, [$($fact:literal),+ $(,)?], |$cx:ident| $body:expr) => {
        $crate::Case {
            id: $id,
            source: $crate::Source::$source,
            local: true,
            facts: $crate::facts::facts![$($fact),+],
            run: |$cx| Box::pin($body),
        }
    };
}
pub(crate) use {case, local_case};

/// Every case, in run order.
pub fn cases() -> Vec<Case> {
    let mut all = m2m::cases();
    all.extend(leaf::cases());
    all.extend(sandbox::cases());
    all
}

/// Which sources to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Only {
    /// `[doc]` cases only: the default against a target.
    Documented,
    /// Every case the target can run: the default in-process.
    #[default]
    All,
}

/// Where the suite runs and with what.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `http://127.0.0.1:PORT` or the deployment's base URL, without a trailing slash.
    pub base: String,
    /// `None`: an in-process linkbox in open mode (fresh tenant per case). `Some`: a real
    /// deployment and the credentials to use there.
    pub target: Option<Credentials>,
    pub only: Only,
    pub api: Option<Api>,
    /// Substring of the case id.
    pub filter: Option<String>,
    /// Stop after the first case that does not pass.
    pub fail_fast: bool,
    /// How HTTPS targets are verified.
    pub tls: Tls,
    /// How long to wait for, and how often to retry, a target that cannot answer.
    pub patience: Patience,
    /// Where waits, warnings and errors are said.
    pub console: Console,
}

/// How the suite verifies an HTTPS target. By default against the webpki roots (Mozilla's
/// list, built in), so a public deployment needs nothing.
#[derive(Debug, Clone, Default)]
pub struct Tls {
    /// `--ca-cert FILE`: PEM certificates of a private CA, trusted besides the built-in roots.
    pub ca_cert: Option<std::path::PathBuf>,
    /// `--insecure`: no certificate or host name verification at all.
    pub insecure: bool,
}

/// Whether an answer's `status` is weather, the target unable to take the request now (a
/// 429 or a 5xx), rather than an answer to check: against a target the suite waits out or
/// retries such answers (in-process a 429 is linkbox's own answer under test); shadow
/// mode neither compares nor applies them.
pub fn is_weather(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

/// How the suite treats weather (a 429, a 5xx, a refused or reset connection, a timeout).
#[derive(Debug, Clone)]
pub struct Patience {
    /// Attempts per request when the answer is a 5xx or none (the first one included).
    pub attempts: u32,
    /// The wait before the first retry; doubled before each further one.
    pub backoff: Duration,
    /// How long one request may take before it counts as a timeout.
    pub timeout: Duration,
    /// The longest `Retry-After` the suite waits out; a longer one is an `error` at once.
    pub max_wait: Duration,
    /// How many 429s one request waits out before it is an `error`.
    pub rate_limit_waits: u32,
}

impl Default for Patience {
    fn default() -> Patience {
        Patience {
            attempts: 4,
            backoff: Duration::from_secs(1),
            timeout: Duration::from_secs(30),
            max_wait: Duration::from_secs(120),
            rate_limit_waits: 3,
        }
    }
}

/// The credentials a target run uses for every case.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub m2m_key: Option<String>,
    pub leaf_token: Option<String>,
}

impl Options {
    /// Every case, against an in-process linkbox at `base`.
    pub fn in_process(base: impl Into<String>) -> Options {
        Options {
            base: base.into(),
            target: None,
            only: Only::All,
            ..Options::default()
        }
    }
}

/// Why a run could not start: exit code 2, or 3 for [`UsageError::Connection`].
#[derive(Debug)]
pub enum UsageError {
    /// An `m2m_live_` key: the suite creates and revokes links, never on production.
    LiveKey,
    /// Bad options, or no case selected.
    Usage(String),
    /// The target's certificate failed verification.
    Certificate(String),
    /// The target refused a credential at the preflight: the API it is for, which one (its
    /// flag and variable) and what the target said.
    Refused {
        api: Api,
        credential: String,
        said: String,
    },
    /// The target could not be asked at all, even after the retries (weather: exit 3).
    Connection(String),
}

impl UsageError {
    /// The exit code: 3 when the target could not be asked, 2 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            UsageError::Connection(_) => 3,
            UsageError::LiveKey
            | UsageError::Usage(_)
            | UsageError::Certificate(_)
            | UsageError::Refused { .. } => 2,
        }
    }
}

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UsageError::LiveKey => write!(
                f,
                "--m2m-key (or LINKBOX_M2M_KEY) is an m2m_live_ key, refused: the contract \
                 suite creates and revokes links; use a sandbox key (m2m_test_...)"
            ),
            UsageError::Usage(message) => write!(f, "{message}"),
            UsageError::Certificate(message) if message.contains("CaUsedAsEndEntity") => {
                write!(
                    f,
                    "{message}: {CA_AS_SERVER}, or --insecure to skip verification"
                )
            }
            UsageError::Certificate(message) => write!(
                f,
                "{message}: for a private CA pass --ca-cert FILE (PEM), or --insecure to skip \
                 verification"
            ),
            UsageError::Refused {
                credential, said, ..
            } => {
                write!(f, "the target refused {credential}: it answered {said}")
            }
            UsageError::Connection(message) => {
                write!(f, "the target could not be asked: {message}")
            }
        }
    }
}

impl std::error::Error for UsageError {}

pub use linkbox_contracts::sandbox::CA_AS_SERVER;

/// Checks the options without sending anything: the live-key refusal, the URL and the
/// credentials the chosen `--api` needs.
pub fn validate(options: &Options) -> Result<(), UsageError> {
    if let Some(credentials) = &options.target {
        if credentials.m2m_key.as_deref().is_some_and(|key| {
            key.trim()
                .starts_with(linkbox_contracts::m2m::LIVE_KEY_PREFIX)
        }) {
            return Err(UsageError::LiveKey);
        }
        let missing = |flag: &str, var: &str, api: &str| {
            UsageError::Usage(format!(
                "--api {api} against --target needs {flag} (or {var})"
            ))
        };
        match options.api {
            Some(Api::M2m) if credentials.m2m_key.is_none() => {
                return Err(missing("--m2m-key KEY", cli::M2M_KEY_VAR, "m2m"));
            }
            Some(Api::Leaf) if credentials.leaf_token.is_none() => {
                return Err(missing("--leaf-token TOKEN", cli::LEAF_TOKEN_VAR, "leaf"));
            }
            Some(Api::Sandbox) => {
                return Err(UsageError::Usage(
                    "--api sandbox runs only in-process (its cases need linkbox's control \
                     API): drop --target"
                        .into(),
                ));
            }
            _ => {}
        }
        if credentials.m2m_key.is_none() && credentials.leaf_token.is_none() {
            return Err(UsageError::Usage(format!(
                "--target needs --m2m-key KEY and/or --leaf-token TOKEN (or {} / {})",
                cli::M2M_KEY_VAR,
                cli::LEAF_TOKEN_VAR
            )));
        }
    }
    check_url(&options.base)?;
    Ok(())
}

/// `base` as outputs quote it: with the credentials it carries (`http://user:secret@host`)
/// `[redacted]`, user and password, read from the text as given, so that a URL that does
/// not parse (a port out of range, a password holding `#`, `?` or `/`) is quoted without
/// them too, and `[redacted]` reads as such, not percent-encoded. The credentials run to
/// the last `@`: a path holding one is shown redacted before it, which quotes too little
/// rather than a secret.
pub fn shown_target(base: &str) -> String {
    let start = base.find("://").map_or(0, |at| at + "://".len());
    match base[start..].rfind('@') {
        Some(at) => format!(
            "{}{}{}",
            &base[..start],
            linkbox_contracts::sandbox::REDACTED,
            &base[start + at..]
        ),
        None => base.to_owned(),
    }
}

/// `--target` must be an absolute `http://` or `https://` URL with a host and nothing after
/// the path.
fn check_url(base: &str) -> Result<(), UsageError> {
    let shown = shown_target(base);
    let bad =
        |why: &str| UsageError::Usage(format!("--target {shown:?} is not a usable URL: {why}"));
    let url = url::Url::parse(base).map_err(|error| bad(&error.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("http:// or https:// only"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "credentials go in --m2m-key / --leaf-token, not in the URL",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("a base URL has no query or fragment"));
    }
    Ok(())
}

/// The cases `options` selects, in run order.
pub fn select(options: &Options) -> Vec<Case> {
    cases()
        .into_iter()
        .filter(|case| {
            let Some(credentials) = &options.target else {
                return true;
            };
            let has_credentials = match case.api() {
                Api::M2m => credentials.m2m_key.is_some(),
                Api::Leaf => credentials.leaf_token.is_some(),
                Api::Sandbox => false,
            };
            !case.local
                && has_credentials
                && (options.only == Only::All || case.source == Source::Doc)
        })
        .filter(|case| options.api.is_none_or(|api| case.api() == api))
        .filter(|case| {
            options
                .filter
                .as_deref()
                .is_none_or(|text| case.id.contains(text))
        })
        .collect()
}

/// Runs the selected cases one after another, printing a progress line per case (and the
/// failure block under a failing one) to `out`, cleaning up after each case. When
/// `interrupt` completes, the current case is abandoned, what it created is cleaned up and
/// the report is returned marked interrupted.
pub async fn run(
    options: &Options,
    interrupt: impl Future<Output = ()>,
    out: &mut (dyn Write + Send),
) -> Result<Report, UsageError> {
    validate(options)?;
    let selected = select(options);
    if selected.is_empty() {
        return Err(UsageError::Usage("no case matches the options".into()));
    }
    let shared = client::Shared::new(options)?;
    shared.preflight(&selected).await?;

    let mut report = Report::new(options.target.as_ref().map(|_| options.base.clone()));
    let total = selected.len();
    let mut interrupt = std::pin::pin!(interrupt);
    for (index, case) in selected.iter().enumerate() {
        let cx = Ctx::new(shared.clone(), case.id, case.source, case.facts);
        let started = Instant::now();
        let outcome = tokio::select! {
            result = (case.run)(cx.clone()) => Some(result),
            () = &mut interrupt => None,
        };
        cx.cleanup().await;
        let Some(result) = outcome else {
            cx.sweep().await;
            report.interrupted = true;
            let _ = writeln!(
                out,
                "interrupted during {}: what it created was cleaned up",
                case.id
            );
            break;
        };
        let result = CaseResult {
            id: case.id,
            api: case.api(),
            source: case.source,
            outcome: match (result, cx.lost_attempt()) {
                (Ok(()), _) => Outcome::Pass,
                (Err(failure), _) if failure.weather => Outcome::Error(failure),
                // What a lost attempt may have made (a second link, a taken id) shows in
                // later answers of the case too: weather, not drift.
                (Err(mut failure), Some(lost)) => {
                    failure.weather = true;
                    failure.actual.push_str(&format!(
                        " (after {lost} lost an attempt that may have been applied)"
                    ));
                    Outcome::Error(failure)
                }
                (Err(failure), None) => Outcome::Fail(failure),
            },
            duration: started.elapsed(),
            facts: case.facts,
        };
        let colour = options.console.stdout_colour();
        let _ = report::write_progress(out, index + 1, total, &result, colour);
        let stop = options.fail_fast && result.outcome != Outcome::Pass;
        report.results.push(result);
        if stop {
            let _ = writeln!(
                out,
                "stopping after {}: --fail-fast, {} cases not run",
                case.id,
                total - index - 1
            );
            break;
        }
    }
    report.design_differences = shared.take_differences();
    Ok(report)
}

/// Keeps a run under the documented per-key limits against a target: at most `per_minute`
/// requests in any sliding minute.
#[derive(Debug)]
pub(crate) struct Window {
    per_minute: usize,
    sent: std::collections::VecDeque<Instant>,
}

impl Window {
    pub(crate) fn new(per_minute: u32) -> Window {
        Window {
            per_minute: per_minute as usize,
            sent: std::collections::VecDeque::new(),
        }
    }

    /// How long to wait before the next request may go, recording it as sent then.
    pub(crate) fn reserve(&mut self, now: Instant) -> Duration {
        let minute = Duration::from_secs(60);
        while self
            .sent
            .front()
            .is_some_and(|first| now.duration_since(*first) >= minute)
        {
            self.sent.pop_front();
        }
        let wait = if self.sent.len() >= self.per_minute {
            self.sent
                .get(self.sent.len() - self.per_minute)
                .map(|first| (*first + minute).saturating_duration_since(now))
                .unwrap_or_default()
        } else {
            Duration::ZERO
        };
        self.sent.push_back(now + wait);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weather_is_a_429_or_a_5xx_and_nothing_else() {
        for status in [429, 500, 502, 503, 599] {
            assert!(is_weather(status), "{status}");
        }
        for status in [200, 201, 400, 404, 409, 413, 499, 600] {
            assert!(!is_weather(status), "{status}");
        }
    }

    #[test]
    fn case_ids_are_unique_and_name_their_api() {
        let all = cases();
        let mut ids: Vec<&str> = all.iter().map(|case| case.id).collect();
        ids.sort_unstable();
        let before = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), before, "duplicate case ids");
        for case in &all {
            assert!(
                ["m2m.", "leaf.", "sandbox."]
                    .iter()
                    .any(|prefix| case.id.starts_with(prefix)),
                "{}",
                case.id
            );
            assert_eq!(
                case.source == Source::Sandbox,
                case.api() == Api::Sandbox,
                "{}: sandbox cases and only they are tagged sandbox",
                case.id
            );
            if case.api() == Api::Sandbox {
                assert!(case.local, "{} reaches the control API", case.id);
            }
        }
    }

    #[test]
    fn a_live_key_is_refused_before_anything_else() {
        let options = Options {
            base: "http://127.0.0.1:9".into(),
            target: Some(Credentials {
                m2m_key: Some("m2m_live_0123456789abcdefghijklmnopqrstuv".into()),
                leaf_token: None,
            }),
            only: Only::Documented,
            api: None,
            filter: None,
            ..Options::default()
        };
        assert!(matches!(validate(&options), Err(UsageError::LiveKey)));
    }

    #[test]
    fn a_target_runs_only_documented_non_local_cases_by_default() {
        let options = Options {
            base: "http://127.0.0.1:9".into(),
            target: Some(Credentials {
                m2m_key: Some("m2m_test_0123456789abcdefghijklmnopqrstuv".into()),
                leaf_token: Some("t".into()),
            }),
            only: Only::Documented,
            api: None,
            filter: None,
            ..Options::default()
        };
        let selected = select(&options);
        assert!(!selected.is_empty());
        assert!(
            selected
                .iter()
                .all(|case| case.source == Source::Doc && !case.local)
        );
        let all = select(&Options {
            only: Only::All,
            ..options
        });
        assert!(all.iter().any(|case| case.source == Source::Design));
        assert!(all.iter().all(|case| !case.local));
    }

    #[test]
    fn the_window_waits_once_a_minute_is_full() {
        let mut window = Window::new(2);
        let start = Instant::now();
        assert_eq!(window.reserve(start), Duration::ZERO);
        assert_eq!(window.reserve(start), Duration::ZERO);
        assert_eq!(window.reserve(start), Duration::from_secs(60));
        let later = start + Duration::from_secs(61);
        assert_eq!(window.reserve(later), Duration::ZERO);
    }
}
