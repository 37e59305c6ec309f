//! `cargo xtask <task>`: the project's automation, in Rust, in the workspace.
//!
//! - `ci`: what CI runs — `cargo fmt --check`, `cargo clippy --all-targets -D warnings`,
//!   the codegen check, then every test of the workspace.
//! - `bench [--quick]`: throughput, latency, memory and start-up, measured ([`bench`]).
//! - `codegen [--check]`: the generated OpenAPI document and JSON Schemas ([`codegen`]).
//! - `contract [...]`: the contract suite against linkbox or a deployment ([`contract`]).

mod bench;
mod codegen;
mod contract;

use std::process::{Command, ExitCode};

use anyhow::{Context, bail};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("contract") {
        return contract::run(&args[1..]);
    }
    let outcome = match args.first().map(String::as_str) {
        None | Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            Ok(())
        }
        Some("ci") => ci(),
        Some("bench") => bench::run(&workspace_root(), args.iter().any(|arg| arg == "--quick")),
        Some("codegen") => codegen::run(&workspace_root(), args.iter().any(|arg| arg == "--check")),
        Some(other) => Err(anyhow::anyhow!("unknown task {other:?}\n\n{USAGE}")),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: {error:#}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  help               this list (also --help, or no task at all)
  ci                 fmt check, clippy, codegen check, tests
  codegen [--check]  write (or check) openapi/ and schemas/
  bench [--quick]    measure a release build on loopback (target/bench/)
  contract [...]     the contract suite (`cargo xtask contract --help`)";

fn ci() -> anyhow::Result<()> {
    cargo(&["fmt", "--all", "--", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    cargo(&["test", "--workspace"])?;
    if contract::run(&[]) != ExitCode::SUCCESS {
        bail!("the contract suite failed against linkbox");
    }
    Ok(())
}

/// Runs `cargo args...` from the workspace root, failing when it fails.
fn cargo(args: &[&str]) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    eprintln!("xtask: cargo {}", args.join(" "));
    let status = Command::new(&cargo)
        .args(args)
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("cannot run {cargo}"))?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}

fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default()
}
