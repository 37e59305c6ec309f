//! `cargo xtask contract`: the contract suite's command line (`linkbox_suite::cli`) with
//! what only this crate may know — how to start linkbox in-process (on a free loopback port,
//! open mode, the documented rate limits) — and Ctrl-C as the interruption.

use std::process::ExitCode;

use linkbox_suite::cli::{self, Started};

/// Runs the task; every outcome is an exit code.
pub fn run(args: &[String]) -> ExitCode {
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
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let mut stdout = std::io::stdout();
    ExitCode::from(runtime.block_on(cli::run(args, start_linkbox, interrupt, &mut stdout)))
}

/// A linkbox on `127.0.0.1:0` in this runtime; it stops when the [`Started`] drops.
async fn start_linkbox() -> std::io::Result<Started> {
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
    Ok(Started::new(format!("http://{addr}"), stop))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_key_exits_2_before_connecting() {
        let args: Vec<String> =
            "--target http://127.0.0.1:9 --m2m-key m2m_live_0123456789abcdefghijklmnopqrstuv"
                .split_whitespace()
                .map(str::to_owned)
                .collect();
        assert_eq!(run(&args), ExitCode::from(2));
    }
}
