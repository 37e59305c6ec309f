//! `cargo xtask <task>`: the project's automation, in Rust, in the workspace.
//!
//! - `ci`: what CI runs — `cargo fmt --check`, `cargo clippy --all-targets -D warnings`,
//!   then every test of the workspace, which includes the codegen check and one full run of
//!   the contract suite against an in-process linkbox (`tests/tests/api/contract.rs`); `ci`
//!   does not run the suite a second time; then the generated clients.
//! - `bench [--quick] [--million] [--baseline NAME=BINARY]... [--binary PATH]
//!   [--replicas POSTGRES_URL] [--restart LINKS]`: throughput, latency, memory and
//!   start-up, measured beside a bare reference, or compared with other builds, or replicas
//!   on PostgreSQL, or restarts on a large state file ([`bench`]).
//! - `clients`: TypeScript and Python clients generated from `/openapi.json`, run against
//!   linkbox ([`clients`]).
//! - `codegen [--check]`: the generated OpenAPI document and JSON Schemas ([`codegen`]).
//! - `contract [...]`: the contract suite against linkbox or a deployment ([`contract`]).
//! - `package [--profile P]`: the Python wheel and the npm packages ([`package`]).

mod bench;
mod clients;
mod codegen;
mod contract;
#[cfg(test)]
mod docs_links;
mod package;

use std::process::{Command, ExitCode};

use anyhow::{Context, bail};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("contract") {
        return contract::run(&args[1..]);
    }
    if wants_help(&args) {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let task = args.first().map_or("", String::as_str);
    let outcome = match task {
        "ci" => ci(),
        "bench" => {
            bench_args(&args[1..]).and_then(|options| bench::run(&workspace_root(), options))
        }
        "clients" => clients::run(&workspace_root()),
        "codegen" => codegen::run(&workspace_root(), args.iter().any(|arg| arg == "--check")),
        "package" => package::run(&workspace_root(), &args[1..]),
        other => Err(anyhow::anyhow!("unknown task {other:?}\n\n{USAGE}")),
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
  ci                 fmt check, clippy, codegen check, tests, contract suite, clients
  clients            generated TypeScript and Python clients against linkbox
  codegen [--check]  write (or check) openapi/ and schemas/
  bench [--quick] [--million] [--baseline NAME=BINARY]... [--binary PATH] [--replicas URL]
        [--restart LINKS]
                     measure a release build (or PATH) on loopback beside a bare warp
                     reference, with wrk when it is on PATH (target/bench/), or compare it
                     round by round with other linkbox binaries; --restart times starts
                     on a state file of LINKS seeded links
  contract [...]     the contract suite (`cargo xtask contract --help`)
  package [--profile release|dev]
                     the Python wheel (target/wheels/) and npm tarballs (target/npm/)";

/// Whether to print the usage instead of running a task: no task, `help`, or `--help` or
/// `-h` anywhere after one (`cargo xtask codegen --help` must not write files, nor
/// `cargo xtask ci --help` run the suite). `contract` has its own help and is not asked.
fn wants_help(args: &[String]) -> bool {
    let help = |arg: &String| matches!(arg.as_str(), "help" | "--help" | "-h");
    match args.split_first() {
        None => true,
        Some((task, rest)) => help(task) || (task != "contract" && rest.iter().any(help)),
    }
}

/// `bench`'s flags: `--quick`, `--million`, any number of `--baseline NAME=BINARY`,
/// `--binary PATH`.
fn bench_args(args: &[String]) -> anyhow::Result<bench::Options> {
    let mut options = bench::Options::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--million" => options.million = true,
            "--replicas" => {
                let value = args.next().context("--replicas takes a PostgreSQL URL")?;
                options.replicas = Some(value.clone());
            }
            "--restart" => {
                let value = args.next().context("--restart takes a number of links")?;
                let links = value
                    .replace('_', "")
                    .parse()
                    .ok()
                    .filter(|&links| links > 0)
                    .with_context(|| format!("--restart takes a number of links, not {value:?}"))?;
                options.restart = Some(links);
            }
            "--baseline" => {
                let value = args.next().context("--baseline takes NAME=BINARY")?;
                options.baselines.push(bench::Build::parse(value)?);
            }
            "--binary" => {
                let value = args.next().context("--binary takes a path")?;
                options.binary = Some(bench::Build::parse(&format!("this build={value}"))?.binary);
            }
            other => bail!("bench: unknown flag {other:?}\n\n{USAGE}"),
        }
    }
    Ok(options)
}

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
    // The contract suite's full run is a test (`every_case_passes_against_linkbox`), so
    // plain `cargo test` catches a regression too; it runs here, once.
    cargo(&["test", "--workspace"])?;
    clients::run(&workspace_root())
}

/// Runs `cargo args...` from the workspace root, failing when it fails.
fn cargo(args: &[&str]) -> anyhow::Result<()> {
    let cargo = cargo_program();
    eprintln!("xtask: cargo {}", args.join(" "));
    let status = cargo_command()
        .args(args)
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("cannot run {cargo}"))?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// The cargo that runs this task (`$CARGO`), else `cargo` on `PATH`.
fn cargo_program() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// A command for [`cargo_program`], in the environment a shell would give it.
fn cargo_command() -> Command {
    let mut command = Command::new(cargo_program());
    as_from_a_shell(&mut command);
    command
}

/// Takes out of `command`'s environment the variables `cargo run` sets for this task
/// (`CARGO_PKG_NAME=xtask`, its manifest's directory...). A build script that declares
/// `rerun-if-env-changed` on one of them (ring's does, on `CARGO_PKG_NAME`) otherwise
/// runs again whenever a build started here follows one started from a shell, or the other
/// way round, and everything above it is compiled again: ring, rustls, reqwest, the suite
/// and linkbox, a minute or two of CI each time.
fn as_from_a_shell(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if is_set_by_cargo_run(name) {
            command.env_remove(name);
        }
    }
}

/// Whether `cargo run` sets `name` for the one package it runs (as opposed to `CARGO`,
/// `CARGO_HOME`, `CARGO_TARGET_DIR` and the like, which hold for every build).
fn is_set_by_cargo_run(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_MANIFEST_")
        || matches!(
            name,
            "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE"
        )
}

fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_started_here_see_the_environment_a_shell_gives_them() {
        for name in [
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION_MAJOR",
            "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_PATH",
            "CARGO_CRATE_NAME",
            "CARGO_BIN_NAME",
            "CARGO_PRIMARY_PACKAGE",
        ] {
            assert!(is_set_by_cargo_run(name), "{name} is cargo run's");
        }
        for name in [
            "CARGO",
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO_INCREMENTAL",
            "PATH",
        ] {
            assert!(!is_set_by_cargo_run(name), "{name} holds for every build");
        }
        // Tests run with cargo's variables for this package set, as `cargo xtask` runs.
        assert!(std::env::var_os("CARGO_PKG_NAME").is_some());
        let command = cargo_command();
        let removed: Vec<_> = command
            .get_envs()
            .filter(|(_, value)| value.is_none())
            .map(|(name, _)| name.to_string_lossy().into_owned())
            .collect();
        assert!(
            removed.iter().any(|name| name == "CARGO_PKG_NAME"),
            "{removed:?}"
        );
        assert!(
            removed.iter().any(|name| name == "CARGO_MANIFEST_DIR"),
            "{removed:?}"
        );
        assert!(!removed.iter().any(|name| name == "CARGO"), "{removed:?}");
    }

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn help_anywhere_after_a_task_is_the_usage_and_runs_nothing() {
        for asked in [
            "",
            "help",
            "--help",
            "-h",
            "ci --help",
            "codegen -h",
            "bench --million --help",
        ] {
            assert!(wants_help(&args(asked)), "{asked:?}");
        }
        for task in [
            "ci",
            "codegen --check",
            "bench --million",
            "contract --help",
        ] {
            assert!(!wants_help(&args(task)), "{task:?}");
        }
    }

    #[test]
    fn restart_takes_a_positive_number_of_links() {
        let options = bench_args(&args("--restart 1_000_000")).expect("parsed");
        assert_eq!(options.restart, Some(1_000_000));
        for bad in ["--restart 0", "--restart many", "--restart"] {
            let error = bench_args(&args(bad)).expect_err(bad).to_string();
            assert!(
                error.contains("--restart takes a number of links"),
                "{error}"
            );
        }
    }
}
