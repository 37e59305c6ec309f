//! The suite's command line, `linkbox contract [--target URL ...]` (and its developer alias
//! `cargo xtask contract`): parses the arguments, runs the selected cases, writes the
//! requested reports and answers with the exit code — 0 every case passed, 1 a case failed
//! (drift), 2 a usage error, a certificate that fails or a credential the target refuses, 3
//! cases errored and none failed (weather: the target could not be asked), 130 interrupted
//! (after cleaning up). Without `--target` the suite needs a linkbox in-process; the caller
//! starts it (the `start` argument of [`run`]), so this crate never depends on the server.
//! Per-case lines go to `out` (stdout); waits, warnings and errors to the [`Console`]
//! (stderr).
//!
//! The credentials can also come from the environment, `LINKBOX_M2M_KEY` and
//! `LINKBOX_LEAF_TOKEN`, so CI keeps them out of the command line; a flag wins over the
//! variable. The variables are read only with `--target`: an in-process run makes its own.

use std::future::Future;
use std::io::Write;

use std::time::Duration;

use super::{Api, Console, Credentials, Only, Options, Patience, Report, Tls, UsageError};

pub const USAGE: &str = "usage: linkbox contract [--target URL --m2m-key KEY --leaf-token TOKEN]
                        [--ca-cert FILE | --insecure] [--timeout SECS] [--max-wait SECS]
                        [--only documented|all] [--api m2m|leaf|sandbox] [--filter TEXT]
                        [--junit FILE] [--json FILE] [--list] [--fail-fast] [--coverage]

  without --target: every case, against linkbox started in-process on a free loopback port
  with --target:    [doc] cases only (unless --only all), with the given credentials
                    (or LINKBOX_M2M_KEY / LINKBOX_LEAF_TOKEN); m2m_live_ keys are refused;
                    each credential is checked once before the first case;
                    what the suite creates is cleaned up
  --ca-cert FILE:   trust this PEM CA too (a private CA); the built-in roots stay trusted
  --insecure:       do not verify the target's certificate at all
  --timeout SECS:   per request (default 30)
  --max-wait SECS:  the longest Retry-After of a 429 to wait out (default 120)
  --list:           print the selected cases' ids and tags, send nothing
  --fail-fast:      stop after the first case that does not pass
  --coverage:       per API, the facts of docs/contract/ the selected cases check, and
                    every fact without a case; sends nothing

  each case ends PASS, FAIL (drift: the answer contradicts the contract) or ERROR (weather:
  connection refused or reset, timeout, 5xx, 429, still so after the retries)
  exit code: 0 all passed, 1 a case failed, 2 usage, certificate or a refused credential,
             3 cases errored and none failed, 130 interrupted
  (cargo xtask contract is the same command, for a source checkout)";

/// The environment variable that stands in for `--m2m-key`.
pub const M2M_KEY_VAR: &str = "LINKBOX_M2M_KEY";
/// The environment variable that stands in for `--leaf-token`.
pub const LEAF_TOKEN_VAR: &str = "LINKBOX_LEAF_TOKEN";

/// An in-process linkbox the suite runs against: its base URL, and whatever keeps it
/// serving (dropped when the run ends).
pub struct Started {
    base: String,
    _running: Box<dyn Send>,
}

impl Started {
    /// `base` is `http://127.0.0.1:PORT`; `running` is held until the run ends.
    pub fn new(base: impl Into<String>, running: impl Send + 'static) -> Started {
        Started {
            base: base.into(),
            _running: Box::new(running),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }
}

/// The parsed command line.
#[derive(Debug, Default)]
struct Args {
    help: bool,
    target: Option<String>,
    m2m_key: Option<String>,
    leaf_token: Option<String>,
    only: Option<Only>,
    api: Option<Api>,
    filter: Option<String>,
    junit: Option<String>,
    json: Option<String>,
    list: bool,
    fail_fast: bool,
    coverage: bool,
    ca_cert: Option<String>,
    insecure: bool,
    timeout: Option<Duration>,
    max_wait: Option<Duration>,
}

/// An argument as a flag and the value written with it: `--flag=value`, as `linkbox
/// serve` takes it, or a flag (or a stray value) alone.
fn flag_and_value(arg: &str) -> (&str, Option<String>) {
    match arg.split_once('=') {
        Some((flag, value)) if flag.starts_with('-') => (flag, Some(value.to_owned())),
        _ => (arg, None),
    }
}

/// Where a command line that does not parse names its report files (`--json`, `--junit`,
/// either form), for the report saying why it stopped.
fn report_places(args: &[String]) -> Args {
    let mut places = Args::default();
    let mut iter = args.iter().peekable();
    while let Some(arg) = iter.next() {
        let (flag, inline) = flag_and_value(arg);
        let place = match flag {
            "--json" => &mut places.json,
            "--junit" => &mut places.junit,
            _ => continue,
        };
        *place = inline.or_else(|| iter.next_if(|next| !next.starts_with("--")).cloned());
    }
    places
}

/// `--timeout` / `--max-wait`: whole seconds, at least 1.
fn seconds(flag: &str, text: &str) -> Result<Duration, String> {
    match text.parse::<u64>() {
        Ok(seconds) if seconds > 0 => Ok(Duration::from_secs(seconds)),
        _ => Err(format!(
            "{flag} takes a whole number of seconds, at least 1"
        )),
    }
}

/// A key or token given to `flag`, without the spaces and line ends around it (a secret
/// saved with its newline); refused, unquoted, when nothing is left or it holds what no
/// header can carry.
fn credential(flag: &str, given: &str) -> Result<String, String> {
    let trimmed = given.trim();
    if trimmed.is_empty() {
        return Err(format!("{flag} needs a value"));
    }
    if trimmed.bytes().any(|byte| byte.is_ascii_control()) {
        return Err(format!(
            "{flag} holds a control character (a line end?), which no header can carry"
        ));
    }
    Ok(trimmed.to_owned())
}

/// The flags that take a value, for [`unknown_flag`].
const VALUE_FLAGS: [&str; 10] = [
    "--target",
    "--m2m-key",
    "--leaf-token",
    "--only",
    "--api",
    "--filter",
    "--junit",
    "--json",
    "--ca-cert",
    "--timeout",
];

/// The usage error for `flag`, no flag this command takes, the argument at `position`: it is
/// quoted only when it reads as a flag's name (a dash or two, lower-case letters, digits
/// and dashes), for anything else may hold a credential: a value glued to its flag
/// (`--m2m-keym2m_test_…`, `--m2m-key:…`) is named as such, anything else by its place.
fn unknown_flag(flag: &str, position: usize) -> String {
    let name = flag.trim_start_matches('-');
    let reads_as_a_name = flag.len() - name.len() <= 2
        && name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if reads_as_a_name {
        return format!("unknown flag {flag:?}");
    }
    let argument = position + 1;
    match VALUE_FLAGS
        .iter()
        .chain(&["--max-wait"])
        .find(|known| flag.starts_with(**known))
    {
        Some(known) => format!(
            "argument {argument} starts with {known} but is no flag: give its value after a \
             space or = (not shown: it may be a credential)"
        ),
        None => format!(
            "argument {argument} is no flag this command takes (not shown: it may be a \
             credential)"
        ),
    }
}

/// Parses `args`; `env` looks up the credential variables (the process environment in
/// [`run`]).
fn parse(args: &[String], env: impl Fn(&str) -> Option<String>) -> Result<Args, String> {
    let mut parsed = Args::default();
    let mut iter = args.iter().enumerate();
    while let Some((position, arg)) = iter.next() {
        let (flag, mut inline) = flag_and_value(arg);
        // No value of these flags starts with `--`: one that does is the next flag, after
        // a value left out (an empty variable in a CI step).
        let mut value = || match inline.take() {
            Some(value) => Ok(value),
            None => match iter.next() {
                Some((_, next)) if !next.starts_with("--") => Ok(next.clone()),
                _ => Err(format!("{flag} needs a value")),
            },
        };
        match flag {
            "--help" | "-h" => parsed.help = true,
            "--target" => parsed.target = Some(value()?),
            "--m2m-key" => parsed.m2m_key = Some(credential(flag, &value()?)?),
            "--leaf-token" => parsed.leaf_token = Some(credential(flag, &value()?)?),
            // The value refused is not quoted: a credential may have landed here.
            "--only" => {
                parsed.only = Some(match value()?.as_str() {
                    "documented" | "doc" => Only::Documented,
                    "all" => Only::All,
                    _ => return Err("--only takes documented or all".into()),
                })
            }
            "--api" => {
                let text = value()?;
                parsed.api = Some(
                    Api::parse(&text)
                        .ok_or_else(|| "--api takes m2m, leaf or sandbox".to_owned())?,
                );
            }
            "--filter" => parsed.filter = Some(value()?),
            "--junit" => parsed.junit = Some(value()?),
            "--json" => parsed.json = Some(value()?),
            "--list" => parsed.list = true,
            "--fail-fast" => parsed.fail_fast = true,
            "--coverage" => parsed.coverage = true,
            "--ca-cert" => parsed.ca_cert = Some(value()?),
            "--insecure" => parsed.insecure = true,
            "--timeout" => parsed.timeout = Some(seconds("--timeout", &value()?)?),
            "--max-wait" => parsed.max_wait = Some(seconds("--max-wait", &value()?)?),
            // A value is never quoted back: a stray one may be a key or a token, also one
            // glued to a flag (`--m2m-keym2m_test_…`).
            other if other.starts_with('-') => return Err(unknown_flag(other, position)),
            _ => {
                return Err(format!(
                    "argument {} is a value no flag takes (not shown: it may be a credential)",
                    position + 1
                ));
            }
        }
        if inline.is_some() {
            return Err(format!("{flag} takes no value"));
        }
    }
    if parsed.target.is_none() && (parsed.m2m_key.is_some() || parsed.leaf_token.is_some()) {
        return Err("--m2m-key and --leaf-token need --target".into());
    }
    if parsed.target.is_none() && (parsed.ca_cert.is_some() || parsed.insecure) {
        return Err("--ca-cert and --insecure need --target".into());
    }
    if parsed.ca_cert.is_some() && parsed.insecure {
        return Err(
            "--ca-cert and --insecure exclude each other: --insecure verifies nothing".into(),
        );
    }
    if parsed.target.is_some() {
        // A variable set but blank counts as unset; one holding a secret is read as a
        // flag's value is (trimmed, refused with a control character in it).
        let set = |name: &str| -> Result<Option<String>, String> {
            env(name)
                .filter(|value| !value.trim().is_empty())
                .map(|value| credential(name, &value))
                .transpose()
        };
        if parsed.m2m_key.is_none() {
            parsed.m2m_key = set(M2M_KEY_VAR)?;
        }
        if parsed.leaf_token.is_none() {
            parsed.leaf_token = set(LEAF_TOKEN_VAR)?;
        }
    }
    Ok(parsed)
}

fn options(args: &Args, console: Console) -> Options {
    let defaults = Patience::default();
    Options {
        base: args
            .target
            .clone()
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_owned(),
        target: args.target.as_ref().map(|_| Credentials {
            m2m_key: args.m2m_key.clone(),
            leaf_token: args.leaf_token.clone(),
        }),
        only: args.only.unwrap_or(if args.target.is_some() {
            Only::Documented
        } else {
            Only::All
        }),
        api: args.api,
        filter: args.filter.clone(),
        fail_fast: args.fail_fast,
        tls: Tls {
            ca_cert: args.ca_cert.as_ref().map(Into::into),
            insecure: args.insecure,
        },
        patience: Patience {
            timeout: args.timeout.unwrap_or(defaults.timeout),
            max_wait: args.max_wait.unwrap_or(defaults.max_wait),
            ..defaults
        },
        console,
    }
}

/// `--list`: one line per selected case, `id [tag]`, `local` for the in-process-only ones.
fn write_list(options: &Options, out: &mut (dyn Write + Send)) -> std::io::Result<()> {
    for case in super::select(options) {
        let local = if case.local { " local" } else { "" };
        writeln!(out, "{} {}{local}", case.id, case.source.tag())?;
    }
    out.flush()
}

/// Runs the command line `args` (without the program and task names), writing progress and
/// the summary to `out` and errors to stderr; returns the exit code. `start` is called only
/// without `--target`, after every usage check; `interrupt` is Ctrl-C or its stand-in.
pub async fn run<S, F>(
    args: &[String],
    start: S,
    interrupt: impl Future<Output = ()>,
    out: &mut (dyn Write + Send),
) -> u8
where
    S: FnOnce() -> F,
    F: Future<Output = std::io::Result<Started>>,
{
    run_with(args, start, interrupt, out, Console::stderr()).await
}

/// [`run`] with its stderr side given: waits, warnings and errors go to `console`.
pub async fn run_with<S, F>(
    args: &[String],
    start: S,
    interrupt: impl Future<Output = ()>,
    out: &mut (dyn Write + Send),
    console: Console,
) -> u8
where
    S: FnOnce() -> F,
    F: Future<Output = std::io::Result<Started>>,
{
    let args = match parse(args, |name| std::env::var(name).ok()) {
        Ok(args) if args.help => {
            let _ = writeln!(out, "{USAGE}");
            return 0;
        }
        Ok(args) => args,
        Err(message) => {
            let message = format!("{message} (linkbox contract --help for the usage)");
            console.error(&message);
            // The report files still say why, where the command line names them.
            let report = Report::stopped(None, None, &UsageError::Usage(message));
            return match write_files(&report_places(args), &report, &console) {
                Ok(()) => 2,
                Err(code) => code,
            };
        }
    };
    // What the target echoes of the credentials (a 401 naming the key it refused) is
    // quoted nowhere: not on stdout, stderr, nor in the report files.
    let console = console.hiding(
        [args.m2m_key.clone(), args.leaf_token.clone()]
            .into_iter()
            .flatten(),
    );
    let out = &mut super::console::Scrubbed::new(out, console.clone());
    let mut options = options(&args, console.clone());
    // The live-key refusal and every other usage check, before any socket is opened.
    let refused = if args.target.is_some() {
        super::validate(&options).err()
    } else {
        None
    };
    if let Some(error) = &refused
        && (args.list || args.coverage)
    {
        console.error(&error.to_string());
        return error.exit_code();
    }
    if args.list {
        let _ = write_list(&options, out);
        return 0;
    }
    if args.coverage {
        let _ = super::facts::write_coverage(&options, out);
        return 0;
    }
    // The report files' places, before a run whose report would otherwise be lost at its end.
    for path in [&args.junit, &args.json].into_iter().flatten() {
        if let Err(error) = prepare(path) {
            if let Some(refused) = &refused {
                console.error(&refused.to_string());
            }
            console.error(&format!("cannot write {path}: {error}"));
            return 2;
        }
    }
    // From here on the report files are in place: a run that stops before its first case
    // (options refused before any socket, a target that cannot be asked, a credential it
    // refuses, a certificate that fails) still fills them, saying why, for the CI step that
    // uploads them: a secret that is not set is a report saying so.
    let target = args
        .target
        .as_ref()
        .map(|_| super::shown_target(&options.base));
    let stop = |error: UsageError| {
        console.error(&error.to_string());
        let report = Report::stopped(target.clone(), args.api, &error);
        match write_files(&args, &report, &console) {
            Ok(()) => error.exit_code(),
            Err(code) => code,
        }
    };
    if let Some(error) = refused {
        return stop(error);
    }
    if args.insecure {
        console.warning(
            "--insecure: the target's certificate and host name are not verified, so \
             anyone between here and the target can read the credentials and answer in \
             its place",
        );
    }
    let _linkbox = if args.target.is_none() {
        match start().await {
            Ok(started) => {
                options.base = started.base.clone();
                Some(started)
            }
            Err(error) => {
                return stop(UsageError::Usage(format!("cannot start linkbox: {error}")));
            }
        }
    } else {
        None
    };
    let report = match super::run(&options, interrupt, out).await {
        Ok(report) => report,
        Err(error) => return stop(error),
    };
    let _ = report.write_end(out);
    if let Err(code) = write_files(&args, &report, &console) {
        return code;
    }
    report.exit_code()
}

/// Makes a report file's directory, as `--junit target/contract.xml` in a fresh checkout
/// expects, and checks the file can be written there (it is created, empty, if missing).
fn prepare(path: &str) -> std::io::Result<()> {
    if let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map(drop)
}

/// Writes `--junit` and `--json`, when asked; `Err(2)` when one cannot be written.
fn write_files(args: &Args, report: &Report, console: &Console) -> Result<(), u8> {
    if let Some(path) = &args.junit
        && let Err(error) = std::fs::write(path, console.scrub(&report.junit()).as_bytes())
    {
        console.error(&format!("cannot write {path}: {error}"));
        return Err(2);
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report.json()).unwrap_or_default();
        if let Err(error) = std::fs::write(path, console.scrub(&text).into_owned() + "\n") {
            console.error(&format!("cannot write {path}: {error}"));
            return Err(2);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    async fn never_started() -> std::io::Result<Started> {
        Err(std::io::Error::other("nothing may start in this test"))
    }

    #[test]
    fn flags_parse_and_keys_need_a_target() {
        let parsed = parse(
            &args("--api m2m --filter create --only all --fail-fast"),
            no_env,
        )
        .expect("parses");
        assert_eq!(parsed.api, Some(Api::M2m));
        assert_eq!(parsed.filter.as_deref(), Some("create"));
        assert!(parsed.fail_fast && !parsed.list);
        assert!(parse(&args("--m2m-key m2m_test_x"), no_env).is_err());
        assert!(parse(&args("--only some"), no_env).is_err());
        assert!(parse(&args("--target"), no_env).is_err());
        let parsed = parse(
            &args("--target=http://127.0.0.1:9/?a=b --m2m-key=m2m_test_x"),
            no_env,
        )
        .expect("--flag=value parses");
        assert_eq!(parsed.target.as_deref(), Some("http://127.0.0.1:9/?a=b"));
        assert_eq!(parsed.m2m_key.as_deref(), Some("m2m_test_x"));
        assert!(parse(&args("--list=yes"), no_env).is_err());
    }

    /// A usage error never quotes a value back: a flag's value left out (an empty
    /// variable) makes the next flag's value a stray one, and that may be a credential.
    #[tokio::test]
    async fn usage_errors_quote_no_credential() {
        let token = "eyJhbGciOiJIUzI1NiJ9.TOKENSECRETPAYLOAD.sig";
        for (line, says) in [
            (
                format!("--target http://127.0.0.1:9 --m2m-key --leaf-token {token}"),
                "--m2m-key needs a value",
            ),
            (
                format!("--target http://127.0.0.1:9 --api leaf {token}"),
                "argument 5 is a value no flag takes",
            ),
            (
                format!("--target http://127.0.0.1:9 --leaf-tokn={token}"),
                "unknown flag \"--leaf-tokn\"",
            ),
            (
                format!("--target http://127.0.0.1:9 -leaf-token={token}"),
                "unknown flag \"-leaf-token\"",
            ),
            (
                format!("--target http://127.0.0.1:9 --leaf-token{token}"),
                "argument 3 starts with --leaf-token but is no flag",
            ),
            (
                format!("--target http://127.0.0.1:9 --leaf-token:{token}"),
                "argument 3 starts with --leaf-token but is no flag",
            ),
            (
                format!("--target http://127.0.0.1:9 -{token}=x"),
                "argument 3 is no flag this command takes",
            ),
            (
                format!("--target http://127.0.0.1:9 --only {token}"),
                "--only takes",
            ),
            (
                format!("--target http://127.0.0.1:9 --api={token}"),
                "--api takes",
            ),
            (
                format!("--target http://127.0.0.1:9 --max-wait {token}"),
                "--max-wait takes",
            ),
            (
                "--target http://127.0.0.1:9 --m2m-key=".to_owned(),
                "--m2m-key needs a value",
            ),
            (
                format!("--target http://u:{token}@127.0.0.1:9 --m2m-key m2m_test_x"),
                "is not a usable URL",
            ),
            // A URL that does not parse is quoted without its password too, which reads
            // `[redacted]`.
            (
                format!("--target http://u:{token}@127.0.0.1:99999 --m2m-key m2m_test_x"),
                "\"http://[redacted]@127.0.0.1:99999\" is not a usable URL",
            ),
            (
                format!("--target http://u:{token}@[::1 --m2m-key m2m_test_x"),
                "\"http://[redacted]@[::1\" is not a usable URL",
            ),
            (
                format!("--target https://deploy:Xy7#{token}@qa.internal --m2m-key m2m_test_x"),
                "\"https://[redacted]@qa.internal\" is not a usable URL",
            ),
            (
                format!("--target http://u:PW?{token}@127.0.0.1:9 --m2m-key m2m_test_x"),
                "\"http://[redacted]@127.0.0.1:9\" is not a usable URL",
            ),
            (
                format!("--target http://{token}@127.0.0.1:9 --m2m-key m2m_test_x"),
                "\"http://[redacted]@127.0.0.1:9\" is not a usable URL",
            ),
        ] {
            let (code, out, err) = run_captured(&args(&line)).await;
            assert_eq!(code, 2, "{line}: {err}");
            assert!(err.contains(says), "{line}: {err}");
            assert!(
                !err.contains("TOKENSECRET") && !out.contains("TOKENSECRET"),
                "{err}"
            );
        }
    }

    /// A command line that does not parse still fills the report files it names, saying
    /// why, as a run refused later does.
    #[tokio::test]
    async fn a_command_line_that_does_not_parse_still_writes_its_reports() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (json, junit) = (dir.path().join("run.json"), dir.path().join("run.xml"));
        let line = format!(
            "--target http://127.0.0.1:9 --json={} --junit {} --m2m-key",
            json.display(),
            junit.display()
        );
        let (code, _, err) = run_captured(&args(&line)).await;
        assert_eq!(code, 2, "{err}");
        let written = std::fs::read_to_string(&json).expect("the JSON report");
        assert!(
            written.contains("preflight.usage") && written.contains("--m2m-key needs a value"),
            "{written}"
        );
        let xml = std::fs::read_to_string(&junit).expect("the JUnit report");
        assert!(xml.contains("--m2m-key needs a value"), "{xml}");
    }

    /// A credential is read without the spaces and line end around it (a CI secret saved
    /// with its newline); one holding a control character is a usage error, never weather.
    #[test]
    fn credentials_are_trimmed_and_refused_with_a_control_character() {
        let env = |name: &str| match name {
            M2M_KEY_VAR => Some("m2m_test_from_env\n".to_owned()),
            LEAF_TOKEN_VAR => Some("  tok\u{7}en ".to_owned()),
            _ => None,
        };
        let refused = parse(&args("--target http://127.0.0.1:9"), env).expect_err("a bell");
        assert!(
            refused.contains("control character") && !refused.contains("tok"),
            "{refused}"
        );
        let parsed = parse(&args("--target http://127.0.0.1:9 --leaf-token t0k"), env)
            .expect("the variable's newline is trimmed");
        assert_eq!(parsed.m2m_key.as_deref(), Some("m2m_test_from_env"));
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn credentials_come_from_the_environment_with_a_target_and_flags_win() {
        let env = |name: &str| match name {
            M2M_KEY_VAR => Some("m2m_test_from_env".to_owned()),
            LEAF_TOKEN_VAR => Some("token-from-env".to_owned()),
            _ => None,
        };
        let parsed =
            parse(&args("--target http://127.0.0.1:9 --leaf-token flag"), env).expect("parses");
        assert_eq!(parsed.m2m_key.as_deref(), Some("m2m_test_from_env"));
        assert_eq!(parsed.leaf_token.as_deref(), Some("flag"));
        // In-process the suite makes its own credentials: the variables are not read.
        let local = parse(&[], env).expect("parses");
        assert!(local.m2m_key.is_none() && local.leaf_token.is_none());
    }

    #[tokio::test]
    async fn list_prints_every_case_and_starts_nothing() {
        let mut out = Vec::new();
        let code = run(
            &args("--list --api sandbox"),
            never_started,
            std::future::pending(),
            &mut out,
        )
        .await;
        assert_eq!(code, 0);
        let text = String::from_utf8_lossy(&out);
        let lines: Vec<&str> = text.lines().collect();
        assert!(!lines.is_empty());
        assert!(
            lines
                .iter()
                .all(|line| line.starts_with("sandbox.") && line.ends_with("[sandbox] local")),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_live_key_exits_2_before_starting_or_connecting() {
        // Port 9 (discard) on loopback: nothing listens, and nothing is attempted anyway.
        let mut out = Vec::new();
        let code = run(
            &args(
                "--target http://127.0.0.1:9 --m2m-key m2m_live_0123456789abcdefghijklmnopqrstuv",
            ),
            never_started,
            std::future::pending(),
            &mut out,
        )
        .await;
        assert_eq!(code, 2);
        assert!(out.is_empty());
    }

    #[tokio::test]
    async fn a_linkbox_that_cannot_start_exits_2() {
        let mut out = Vec::new();
        let code = run(&[], never_started, std::future::pending(), &mut out).await;
        assert_eq!(code, 2);
    }

    #[tokio::test]
    async fn help_prints_the_usage_and_exits_0() {
        let mut out = Vec::new();
        let code = run(
            &args("--help"),
            never_started,
            std::future::pending(),
            &mut out,
        )
        .await;
        assert_eq!(code, 0);
        assert!(String::from_utf8_lossy(&out).starts_with("usage: linkbox contract"));
    }

    /// Runs `line` with a captured console; returns the exit code, stdout and stderr.
    async fn run_captured(line: &[String]) -> (u8, String, String) {
        let (console, captured) = Console::buffer();
        let mut out = Vec::new();
        let code = run_with(
            line,
            never_started,
            std::future::pending(),
            &mut out,
            console,
        )
        .await;
        (
            code,
            String::from_utf8_lossy(&out).into_owned(),
            captured.text(),
        )
    }

    #[tokio::test]
    async fn bad_input_is_one_line_naming_the_flag_and_exit_2() {
        // Nothing listens on port 9 and nothing is attempted: each is refused before.
        let key = "--m2m-key m2m_test_0123456789abcdefghijklmnopqrstuv";
        for (line, flag) in [
            (format!("--target http//127.0.0.1:9 {key}"), "--target"),
            (format!("--target ftp://127.0.0.1:9 {key}"), "--target"),
            (format!("--target http://127.0.0.1:9?x=1 {key}"), "--target"),
            (
                "--target http://127.0.0.1:9 --api leaf --m2m-key m2m_test_x".to_owned(),
                "--leaf-token",
            ),
            (
                "--target http://127.0.0.1:9 --api m2m --leaf-token t".to_owned(),
                "--m2m-key",
            ),
            ("--target http://127.0.0.1:9".to_owned(), "--m2m-key"),
            (
                format!("--target https://127.0.0.1:9 {key} --ca-cert /nonexistent/ca.pem"),
                "--ca-cert",
            ),
            ("--insecure".to_owned(), "--insecure"),
            (
                format!("--target http://127.0.0.1:9 {key} --timeout 0"),
                "--timeout",
            ),
        ] {
            let (code, out, err) = run_captured(&args(&line)).await;
            assert_eq!(code, 2, "{line}: {err}");
            assert!(out.is_empty(), "{line}: {out}");
            assert_eq!(err.lines().count(), 1, "{line}: one line: {err}");
            assert!(
                err.starts_with("contract: ") && err.contains(flag),
                "{line}: names {flag}: {err}"
            );
        }
    }

    /// A report file's directory is made as the run starts (the docs' `--junit
    /// target/contract.xml` in a fresh checkout), and a place no file can be written is a
    /// usage error before any case runs, not a report lost at the end.
    #[tokio::test]
    async fn report_files_are_placed_before_the_run_and_an_impossible_one_stops_it() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let nested = dir.path().join("target/deeper/run.xml");
        let key = "--m2m-key m2m_test_0123456789abcdefghijklmnopqrstuv";
        let blocker = dir.path().join("a-file");
        std::fs::write(&blocker, "not a directory").expect("a file");
        let impossible = blocker.join("run.json");
        let line = format!(
            "--target http://127.0.0.1:9 {key} --timeout 1 --max-wait 1 --junit {} --json {}",
            nested.display(),
            impossible.display()
        );
        let (code, out, err) = run_captured(&args(&line)).await;
        assert_eq!(code, 2, "{err}");
        assert!(out.is_empty(), "no case ran: {out}");
        assert!(
            err.contains("cannot write") && err.contains("a-file/run.json"),
            "{err}"
        );
        assert!(nested.exists(), "its directory was made");
    }

    /// A target nothing answers is weather (exit 3), and the report files asked for are
    /// still written, saying so: a CI step that uploads them finds them.
    #[tokio::test]
    async fn an_unreachable_target_still_writes_its_report_files() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("addr").port()
        };
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (json, junit) = (dir.path().join("run.json"), dir.path().join("run.xml"));
        let line = format!(
            "--target http://127.0.0.1:{port} --m2m-key m2m_test_0123456789abcdefghijklmnopqrstuv \
             --timeout 1 --max-wait 1 --json {} --junit {}",
            json.display(),
            junit.display()
        );
        let (code, _, err) = run_captured(&args(&line)).await;
        assert_eq!(code, 3, "{err}");
        let written: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).expect("the JSON report"))
                .expect("JSON");
        assert_eq!(written["errored"], 1, "{written}");
        assert_eq!(written["cases"][0]["id"], "preflight.target-reachable");
        assert!(
            written["cases"][0]["error"]["actual"]
                .as_str()
                .is_some_and(|actual| actual.contains("the target could not be asked")),
            "{written}"
        );
        let xml = std::fs::read_to_string(&junit).expect("the JUnit report");
        assert!(
            xml.contains("type=\"weather\"") && xml.contains("errors=\"1\""),
            "{xml}"
        );
    }

    /// A target that quotes the credentials it got (a 401 naming the key it refused) has
    /// them quoted nowhere: stdout, stderr and both report files say `[redacted]`.
    #[tokio::test]
    async fn credentials_a_target_echoes_are_redacted_everywhere_the_run_writes() {
        let key = "m2m_test_SEKRITTKI6jltriKIAs1nBr7IznLlrl";
        // Padded or not: an excerpt cut inside the key must not keep its first characters.
        for pad in [0, 105] {
            let port = canned_target(move |_| {
                let filler = "x".repeat(pad);
                let body = format!(
                    r#"{{"success":false,"error":{{"code":"UNAUTHORIZED","message":"{filler}Invalid API key {key}","details":null}}}}"#
                );
                format!(
                    "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
            })
            .await;
            let (code, written) = run_reporting(&format!(
                "--target http://127.0.0.1:{port} --api m2m --m2m-key {key} --timeout 2 \
                 --max-wait 1"
            ))
            .await;
            assert_ne!(code, 0, "{written:?}");
            for (place, text) in &written {
                assert!(
                    !text.contains("SEKRIT"),
                    "{pad}: {place} quotes the key: {text}"
                );
            }
            let [(_, out), (_, err), (_, json), _] = &written;
            assert!(
                format!("{out}{err}{json}").contains("Invalid API key [redacted]"),
                "{pad}: {out}{err}{json}"
            );
        }
    }

    /// A run of `line` writing both reports: its exit code, and what it wrote to stdout,
    /// stderr and the JSON and JUnit reports, each named.
    async fn run_reporting(line: &str) -> (u8, [(&'static str, String); 4]) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (json, junit) = (dir.path().join("run.json"), dir.path().join("run.xml"));
        let line = format!(
            "{line} --json {} --junit {}",
            json.display(),
            junit.display()
        );
        let (code, out, err) = run_captured(&args(&line)).await;
        let json = std::fs::read_to_string(&json).expect("the JSON report");
        let xml = std::fs::read_to_string(&junit).expect("the JUnit report");
        (
            code,
            [
                ("stdout", out),
                ("stderr", err),
                ("JSON", json),
                ("JUnit", xml),
            ],
        )
    }

    /// A target on loopback answering each request with what `answer` makes of its request
    /// line; its port.
    async fn canned_target(answer: impl Fn(&str) -> String + Send + Sync + 'static) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let answer = std::sync::Arc::new(answer);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let answer = answer.clone();
                tokio::spawn(async move {
                    let mut buffer = vec![0; 16 * 1024];
                    let read = stream.read(&mut buffer).await.unwrap_or(0);
                    let request = String::from_utf8_lossy(&buffer[..read]);
                    let line = request.lines().next().unwrap_or_default().to_owned();
                    let _ = stream.write_all(answer(&line).as_bytes()).await;
                });
            }
        });
        port
    }

    /// A credential a target quotes in a header of its answer is redacted before any
    /// excerpt of the header is cut: a cut must not keep most of it.
    #[tokio::test]
    async fn a_credential_quoted_in_an_answers_header_is_redacted_before_it_is_cut() {
        fn answer(line: &str) -> String {
            let key = "m2m_test_SEKRITTKI6jltriKIAs1nBr7IznLlrl";
            let (kind, body) = if line.starts_with("POST") {
                (
                    format!("text/plain; x={}{key}", "p".repeat(150)),
                    r#"{"success":true,"data":{"linkId":"link_abc_0123456789ab","referenceId":"r",
                    "status":"created","url":"https://x.test/l","token":
                    "6f1c2a4e-8b7d-4c3e-9a1f-2b3c4d5e6f70","expiresAt":"2026-02-10T12:00:00.000Z",
                    "createdAt":"2026-02-10T12:00:00.000Z"}}"#
                        .to_owned(),
                )
            } else {
                (
                    "application/json".to_owned(),
                    r#"{"success":true,"data":[],"pagination":{"total":0,"limit":1,"offset":0}}"#
                        .to_owned(),
                )
            };
            format!(
                "HTTP/1.1 201 Created\r\ncontent-type: {kind}\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{body}",
                body.len()
            )
        }
        let port = canned_target(answer).await;
        let (code, written) = run_reporting(&format!(
            "--target http://127.0.0.1:{port} --api m2m --m2m-key \
             m2m_test_SEKRITTKI6jltriKIAs1nBr7IznLlrl --filter content-type-json --timeout 2 \
             --max-wait 1"
        ))
        .await;
        assert_eq!(code, 1, "{written:?}");
        for (place, text) in &written {
            assert!(!text.contains("SEKRIT"), "{place} quotes the key: {text}");
        }
        let out = &written[0].1;
        assert!(out.contains("text/plain"), "{out}");
    }

    /// A target that redirects is not followed: the key is sent to no other host, and the
    /// run stops at the preflight naming the redirect and where it leads.
    #[tokio::test]
    async fn a_redirect_is_not_followed_and_stops_the_run_at_the_preflight() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let asked = std::sync::Arc::new(AtomicBool::new(false));
        let elsewhere = canned_target({
            let asked = asked.clone();
            move |_| {
                asked.store(true, Ordering::SeqCst);
                "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}".to_owned()
            }
        })
        .await;
        let port = canned_target(move |_| {
            format!(
                "HTTP/1.1 302 Found\r\nlocation: http://localhost:{elsewhere}/collect\r\n\
                 content-length: 0\r\nconnection: close\r\n\r\n"
            )
        })
        .await;
        let line = format!(
            "--target http://127.0.0.1:{port} --api m2m --m2m-key \
             m2m_test_SEKRITTKI6jltriKIAs1nBr7IznLlrl --timeout 2 --max-wait 1"
        );
        let (code, out, err) = run_captured(&args(&line)).await;
        assert_eq!(code, 2, "{out}{err}");
        assert!(!asked.load(Ordering::SeqCst), "the redirect was followed");
        assert!(
            err.contains("was answered 302, a redirect to http://localhost:")
                && err.contains("/collect;")
                && err.contains("follows no redirect"),
            "{err}"
        );
    }

    /// A run refused before any socket opens (a credential not given, a live key) still
    /// writes the report files asked for, naming why in `preflight.usage`: a CI secret that
    /// is not set leaves a report, not nothing.
    #[tokio::test]
    async fn a_run_refused_for_its_options_still_writes_its_report_files() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        for (credential, says) in [
            ("", "needs --m2m-key KEY"),
            (
                "--m2m-key m2m_live_0123456789abcdefghijklmnopqrstuv",
                "m2m_live_ key, refused",
            ),
        ] {
            let (json, junit) = (dir.path().join("run.json"), dir.path().join("run.xml"));
            let _ = std::fs::remove_file(&json);
            let _ = std::fs::remove_file(&junit);
            let line = format!(
                "--target http://127.0.0.1:9 --api m2m {credential} --json {} --junit {}",
                json.display(),
                junit.display()
            );
            let (code, _, err) = run_captured(&args(&line)).await;
            assert_eq!(code, 2, "{err}");
            let written: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&json).expect("the JSON report"))
                    .expect("JSON");
            assert_eq!(written["cases"][0]["id"], "preflight.usage", "{written}");
            assert!(
                written["cases"][0]["error"]["actual"]
                    .as_str()
                    .is_some_and(|actual| actual.contains(says)),
                "{credential}: {written}"
            );
            let xml = std::fs::read_to_string(&junit).expect("the JUnit report");
            assert!(xml.contains("type=\"usage\""), "{xml}");
        }
    }

    #[tokio::test]
    async fn a_ca_cert_that_is_not_pem_is_refused() {
        let file = tempfile::Builder::new()
            .prefix("linkbox-contract-not-pem-")
            .suffix(".txt")
            .tempfile()
            .expect("a temporary file");
        std::fs::write(file.path(), "not a certificate").expect("write");
        let line = format!(
            "--target https://127.0.0.1:9 --m2m-key m2m_test_0123456789abcdefghijklmnopqrstuv \
             --ca-cert {}",
            file.path().display()
        );
        let (code, _, err) = run_captured(&args(&line)).await;
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("--ca-cert") && err.contains("PEM"), "{err}");
    }
}
