//! The suite's command line, `contract [--target URL ...]`: parses the arguments, runs the
//! selected cases, writes the requested reports and answers with the exit code — 0 every
//! case passed, 1 a case failed, 2 a usage or connection error, 130 interrupted (after
//! cleaning up). Without `--target` the suite needs a linkbox in-process; the caller starts
//! it (the `start` argument of [`run`]), so this crate never depends on the server.

use std::future::Future;
use std::io::Write;

use super::{Api, Credentials, Only, Options, UsageError};

pub const USAGE: &str =
    "usage: cargo xtask contract [--target URL --m2m-key KEY --leaf-token TOKEN]
                            [--only documented|all] [--api m2m|leaf|sandbox] [--filter TEXT]
                            [--junit FILE] [--json FILE]

  without --target: every case, against linkbox started in-process on a free loopback port
  with --target:    [doc] cases only (unless --only all), with the given credentials;
                    m2m_live_ keys are refused; what the suite creates is cleaned up";

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
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut parsed = Args::default();
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        let mut value = || {
            iter.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--help" | "-h" => parsed.help = true,
            "--target" => parsed.target = Some(value()?),
            "--m2m-key" => parsed.m2m_key = Some(value()?),
            "--leaf-token" => parsed.leaf_token = Some(value()?),
            "--only" => {
                parsed.only = Some(match value()?.as_str() {
                    "documented" | "doc" => Only::Documented,
                    "all" => Only::All,
                    other => return Err(format!("--only {other:?}: documented or all")),
                })
            }
            "--api" => {
                let text = value()?;
                parsed.api = Some(
                    Api::parse(&text)
                        .ok_or_else(|| format!("--api {text:?}: m2m, leaf or sandbox"))?,
                );
            }
            "--filter" => parsed.filter = Some(value()?),
            "--junit" => parsed.junit = Some(value()?),
            "--json" => parsed.json = Some(value()?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if parsed.target.is_none() && (parsed.m2m_key.is_some() || parsed.leaf_token.is_some()) {
        return Err("--m2m-key and --leaf-token need --target".into());
    }
    Ok(parsed)
}

fn options(args: &Args) -> Options {
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
    }
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
    let args = match parse(args) {
        Ok(args) if args.help => {
            let _ = writeln!(out, "{USAGE}");
            return 0;
        }
        Ok(args) => args,
        Err(message) => {
            eprintln!("contract: {message}\n\n{USAGE}");
            return 2;
        }
    };
    let mut options = options(&args);
    // The live-key refusal and every other usage check, before any socket is opened.
    if args.target.is_some()
        && let Err(error) = super::validate(&options)
    {
        eprintln!("contract: {error}");
        return 2;
    }
    let _linkbox = if args.target.is_none() {
        match start().await {
            Ok(started) => {
                options.base = started.base.clone();
                Some(started)
            }
            Err(error) => {
                eprintln!("contract: cannot start linkbox: {error}");
                return 2;
            }
        }
    } else {
        None
    };
    let report = match super::run(&options, interrupt, out).await {
        Ok(report) => report,
        Err(error) => {
            eprintln!("contract: {error}");
            return match error {
                UsageError::LiveKey | UsageError::Usage(_) | UsageError::Connection(_) => 2,
            };
        }
    };
    let _ = report.write_end(out);
    if let Some(path) = &args.junit
        && let Err(error) = std::fs::write(path, report.junit())
    {
        eprintln!("contract: cannot write {path}: {error}");
        return 2;
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report.json()).unwrap_or_default();
        if let Err(error) = std::fs::write(path, text + "\n") {
            eprintln!("contract: cannot write {path}: {error}");
            return 2;
        }
    }
    report.exit_code()
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
        let parsed = parse(&args("--api m2m --filter create --only all")).expect("parses");
        assert_eq!(parsed.api, Some(Api::M2m));
        assert_eq!(parsed.filter.as_deref(), Some("create"));
        assert!(parse(&args("--m2m-key m2m_test_x")).is_err());
        assert!(parse(&args("--only some")).is_err());
        assert!(parse(&args("--target")).is_err());
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
        assert!(String::from_utf8_lossy(&out).starts_with("usage: cargo xtask contract"));
    }
}
