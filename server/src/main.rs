//! The `linkbox` binary: parses the command line and hands over to the library.
//!
//! A command whose stdout is closed early (`linkbox openapi | head -1`) stops writing and
//! exits 0 without a word: the reader has what it wanted. `serve` keeps serving when its
//! stdout goes away.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::CommandFactory;
use clap::Parser;
use linkbox::cli::{Cli, Command, DocFormat, LogFormat, ServeArgs};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of the system allocator: a create-link allocates and frees a few dozen
/// small blocks, and glibc's malloc spent about a sixth of the request's CPU on them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `serve` spreads its connections over one single-threaded runtime per core (the
    // library's `http::workers`); this one is the first of them. The other commands are
    // clients and get tokio's usual runtime.
    let runtime = match cli.command {
        Command::Serve(_) => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    }
    .enable_all()
    .build();
    match runtime {
        Ok(runtime) => runtime.block_on(run(cli)),
        Err(error) => {
            eprintln!("linkbox: cannot start the runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> ExitCode {
    let outcome = match cli.command {
        Command::Serve(args) => serve(*args).await,
        Command::Openapi(args) => print_openapi(args.format),
        Command::Seed(args) => linkbox::seed_cli::run(args).await,
        Command::Completions(args) => print_completions(args.shell),
        Command::Contract(args) => return linkbox::contract_cli::run(&args.args).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if closed_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("linkbox: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let log = init_logging(args.log_format)?;
    for warning in args.check_exposure()? {
        tracing::warn!("{warning}");
    }
    let options = args.options()?;
    let listener = TcpListener::bind(args.addr.as_str())
        .await
        .map_err(|error| anyhow::anyhow!("cannot listen on {}: {error}", args.addr))?;
    let addr = listener.local_addr()?;
    // A state file is loaded (or refused) before the sandbox says it is listening.
    let app = linkbox::open(&listener, options).await?;
    let mut lines = vec![format!("listening on http://{addr}")];
    if args.seed > 0 {
        // In a sandbox shared by replicas, seeded as one request on everything; with a
        // state file, as one request too (all of it in the file or none, whenever linkbox
        // is stopped), saved before `listening on` is printed.
        let hint = linkbox::app::replica::Hint::Everything;
        let demo = app
            .within(&hint, async {
                linkbox::persist::tracking(async {
                    linkbox::ops::seed::demo(&app, args.seed, args.rng_seed)
                })
                .await
                .0
            })
            .await??;
        app.sink
            .settled()
            .await
            .map_err(|error| anyhow::anyhow!("--seed: the seeded state is not saved: {error}"))?;
        lines.extend(demo.lines());
    }
    {
        // One write of the whole block: a reader that has the address has the credentials
        // after it too (the packages' `stdout_lines` / `stdoutLines`). Line by line, a test
        // that read them at once found none about one start in four.
        let mut block = lines.join("\n");
        block.push('\n');
        let mut stdout = std::io::stdout().lock();
        let written = stdout
            .write_all(block.as_bytes())
            .and_then(|()| stdout.flush());
        match written {
            Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
                return Err(error.into());
            }
            _ => {}
        }
    }
    let stdin_closed = args.stop_with_stdin.then(stdin_closed);
    let served = linkbox::serve(listener, app, shutdown_signal(stdin_closed)).await;
    tracing::info!("stopped");
    log.report();
    // Changes acknowledged in memory but never saved: the exit status says so, for the
    // supervisor that would otherwise take the stop for a clean one.
    Ok(served?)
}

fn print_openapi(format: DocFormat) -> anyhow::Result<()> {
    let text = match format {
        DocFormat::Json => linkbox_contracts::openapi::json(),
        DocFormat::Yaml => linkbox_contracts::openapi::yaml(),
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// `linkbox completions SHELL`: the script on stdout.
fn print_completions(shell: clap_complete::Shell) -> anyhow::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "linkbox", &mut script);
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&script)?;
    stdout.flush()?;
    Ok(())
}

/// Whether `error` is stdout closed under us.
fn closed_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|error| error.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Log lines waiting for the log's own thread, at most; past it, lines are dropped.
const LOG_LINES_WAITING: usize = 16 * 1024;

/// Logs on stderr at `LINKBOX_LOG` (default `info`), coloured only on a terminal and never
/// with `NO_COLOR` set to anything non-empty.
///
/// A line is formatted where it is logged and written by a thread of its own, which writes
/// whatever has gathered in one go: a request no longer waits for a `write` of its line,
/// and a stderr nobody reads (a full pipe) no longer stalls the sandbox. Past
/// [`LOG_LINES_WAITING`] lines waiting, lines are dropped, and their count is logged when
/// `serve` stops. Lines are written out when the returned guard drops.
fn init_logging(format: LogFormat) -> anyhow::Result<Log> {
    // A filter that does not parse is refused, not quietly replaced by `info`: a typo in
    // `linkbox::request=off` would otherwise log every request it was meant to silence.
    let filter = match std::env::var("LINKBOX_LOG") {
        Ok(value) => EnvFilter::try_new(&value).map_err(|error| {
            anyhow::anyhow!(
                "LINKBOX_LOG={value:?} is not a tracing filter ({error}); e.g. \
                 LINKBOX_LOG=debug, or LINKBOX_LOG=info,linkbox::request=off"
            )
        })?,
        Err(_) => EnvFilter::new("info"),
    };
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(LOG_LINES_WAITING)
        .lossy(true)
        .thread_name("linkbox-log")
        .finish(std::io::BufWriter::new(std::io::stderr()));
    let dropped = writer.error_counter();
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal() && !no_color)
        .with_writer(writer);
    match format {
        LogFormat::Pretty => builder
            .event_format(linkbox::http::TextLines::default())
            .init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(Log {
        _guard: guard,
        dropped,
    })
}

/// The log's thread, kept until `serve` returns, and its count of dropped lines.
struct Log {
    _guard: tracing_appender::non_blocking::WorkerGuard,
    dropped: tracing_appender::non_blocking::ErrorCounter,
}

impl Log {
    /// Says how many lines were dropped, if any.
    fn report(&self) {
        let dropped = self.dropped.dropped_lines();
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "log lines were dropped: stderr was not read as fast as they came"
            );
        }
    }
}

/// Completes on SIGINT or SIGTERM, or once `stdin_closed` (`--stop-with-stdin`) does.
async fn shutdown_signal(stdin_closed: Option<tokio::sync::oneshot::Receiver<()>>) {
    let interrupt = tokio::signal::ctrl_c();
    // Without --stop-with-stdin, never; a sender dropped without a word counts as closed.
    let stdin_closed = async {
        match stdin_closed {
            Some(closed) => {
                let _ = closed.await;
            }
            None => std::future::pending::<()>().await,
        }
    };
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
            () = stdin_closed => tracing::info!("standard input closed"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::select! {
            _ = interrupt => {}
            () = stdin_closed => tracing::info!("standard input closed"),
        }
    }
    tracing::info!("shutting down");
}

/// `--stop-with-stdin`: a thread of its own reads standard input, discarding what comes, and
/// sends on the returned channel at its end or on a read error. A thread, not the runtime:
/// a blocking read of a pipe or terminal cannot be cancelled, and the process exits without
/// waiting for it.
fn stdin_closed() -> tokio::sync::oneshot::Receiver<()> {
    let (closed, receiver) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("linkbox-stdin".into())
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buffer = [0u8; 4096];
            loop {
                match std::io::Read::read(&mut stdin, &mut buffer) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(error) => {
                        tracing::warn!("cannot read standard input: {error}");
                        break;
                    }
                }
            }
            let _ = closed.send(());
        });
    if let Err(error) = spawned {
        // The receiver sees its sender dropped, as if stdin had closed: better stopped now
        // than outliving the process that started it.
        tracing::warn!("cannot start the thread that reads standard input: {error}");
    }
    receiver
}
