//! `cargo xtask contract`: runs the contract suite (`linkbox_contracts::suite`) against an
//! in-process linkbox on a free loopback port, or with `--target URL` against any deployment.
//! Exit codes: 0 every case passed, 1 a case failed, 2 a usage or connection error, 130
//! interrupted (after cleaning up).

use std::process::ExitCode;

use linkbox_contracts::suite::{self, Api, Credentials, Only, Options, UsageError};

pub const USAGE: &str =
    "usage: cargo xtask contract [--target URL --m2m-key KEY --leaf-token TOKEN]
                            [--only documented|all] [--api m2m|leaf|sandbox] [--filter TEXT]
                            [--junit FILE] [--json FILE]

  without --target: every case, against linkbox started in-process on a free loopback port
  with --target:    [doc] cases only (unless --only all), with the given credentials;
                    m2m_live_ keys are refused; what the suite creates is cleaned up";

/// The parsed command line.
#[derive(Debug, Default)]
struct Args {
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

/// Runs the task; every outcome is an exit code.
pub fn run(args: &[String]) -> ExitCode {
    if args.iter().any(|arg| arg == "--help" || arg == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let args = match parse(args) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("xtask contract: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let options = Options {
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
    };
    // The live-key refusal and every other usage check, before any socket is opened.
    if args.target.is_some()
        && let Err(error) = suite::validate(&options)
    {
        eprintln!("xtask contract: {error}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("xtask contract: cannot start a runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let code = runtime.block_on(run_suite(options, &args));
    ExitCode::from(code)
}

async fn run_suite(mut options: Options, args: &Args) -> u8 {
    // In-process: linkbox in open mode with the documented rate limits, on a free port.
    let _server = if options.target.is_none() {
        match start_linkbox().await {
            Ok((base, server)) => {
                options.base = base;
                Some(server)
            }
            Err(error) => {
                eprintln!("xtask contract: cannot start linkbox: {error}");
                return 2;
            }
        }
    } else {
        None
    };
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let mut stdout = std::io::stdout();
    let report = match suite::run(&options, interrupt, &mut stdout).await {
        Ok(report) => report,
        Err(error) => {
            eprintln!("xtask contract: {error}");
            return match error {
                UsageError::LiveKey | UsageError::Usage(_) | UsageError::Connection(_) => 2,
            };
        }
    };
    let _ = report.write_end(&mut stdout);
    if let Some(path) = &args.junit
        && let Err(error) = std::fs::write(path, report.junit())
    {
        eprintln!("xtask contract: cannot write {path}: {error}");
        return 2;
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report.json()).unwrap_or_default();
        if let Err(error) = std::fs::write(path, text + "\n") {
            eprintln!("xtask contract: cannot write {path}: {error}");
            return 2;
        }
    }
    report.exit_code()
}

/// A linkbox on `127.0.0.1:0` in this runtime; it stops when the returned sender drops.
async fn start_linkbox() -> std::io::Result<(String, tokio::sync::oneshot::Sender<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = linkbox::App::new(linkbox::Settings::resolve(
        linkbox::Options::default(),
        addr,
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(linkbox::serve(listener, app, async {
        let _ = stopped.await;
    }));
    Ok((format!("http://{addr}"), stop))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
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

    #[test]
    fn a_live_key_exits_2_before_connecting() {
        // Port 9 (discard) on loopback: nothing listens, and nothing is attempted anyway.
        let code = run(&args(
            "--target http://127.0.0.1:9 --m2m-key m2m_live_0123456789abcdefghijklmnopqrstuv",
        ));
        assert_eq!(code, ExitCode::from(2));
    }
}
