//! The `linkbox` binary: parses the command line and hands over to the library.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use linkbox::cli::{Cli, Command, DocFormat, LogFormat, ServeArgs};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Openapi(args) => print_openapi(args.format),
        Command::Seed(args) => linkbox::seed_cli::run(args).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("linkbox: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    init_logging(args.log_format);
    let options = args.options()?;
    let listener = TcpListener::bind(args.addr)
        .await
        .map_err(|error| anyhow::anyhow!("cannot listen on {}: {error}", args.addr))?;
    let addr = listener.local_addr()?;
    // A state file is loaded (or refused) before the sandbox says it is listening.
    let app = linkbox::open(&listener, options)?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on http://{addr}")?;
        stdout.flush()?;
    }
    if args.seed > 0 {
        let demo = linkbox::ops::seed::demo(&app, args.seed, args.rng_seed)?;
        let mut stdout = std::io::stdout().lock();
        for line in demo.lines() {
            writeln!(stdout, "{line}")?;
        }
        stdout.flush()?;
    }
    linkbox::serve(listener, app, shutdown_signal()).await;
    tracing::info!("stopped");
    Ok(())
}

fn print_openapi(format: DocFormat) -> anyhow::Result<()> {
    let text = match format {
        DocFormat::Json => linkbox_contracts::openapi::json(),
        DocFormat::Yaml => linkbox_contracts::openapi::yaml(),
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}

/// Logs on stderr at `LINKBOX_LOG` (default `info`), coloured only on a terminal and never
/// with `NO_COLOR` set to anything non-empty.
fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("LINKBOX_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal() && !no_color)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = interrupt => {}
            () = terminate => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("shutting down");
}
