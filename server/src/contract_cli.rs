//! `linkbox contract`: the contract suite (`linkbox_suite::cli`, which parses its own flags)
//! with what only the server knows — how to start linkbox in-process for a run without
//! `--target` (a free loopback port, open mode, the documented rate limits) — and Ctrl-C as
//! the interruption. `cargo xtask contract` calls [`run`] too.

use std::process::ExitCode;

use linkbox_suite::cli::{self, Started};

use crate::app::App;
use crate::config::{Options, Settings};

/// Runs the suite with `args` (the words after `contract`); every outcome is an exit code.
pub async fn run(args: &[String]) -> ExitCode {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let mut stdout = std::io::stdout();
    ExitCode::from(cli::run(args, start_linkbox, interrupt, &mut stdout).await)
}

/// A linkbox on `127.0.0.1:0` in this runtime; it stops when the [`Started`] drops.
async fn start_linkbox() -> std::io::Result<Started> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = App::new(Settings::resolve(Options::default(), addr));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(crate::http::run(listener, app, async {
        let _ = stopped.await;
    }));
    Ok(Started::new(format!("http://{addr}"), stop))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_live_key_exits_2_before_connecting() {
        let args: Vec<String> =
            "--target http://127.0.0.1:9 --m2m-key m2m_live_0123456789abcdefghijklmnopqrstuv"
                .split_whitespace()
                .map(str::to_owned)
                .collect();
        assert_eq!(run(&args).await, ExitCode::from(2));
    }
}
