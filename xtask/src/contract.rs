//! `cargo xtask contract`: an alias of `linkbox contract` for a source checkout — the same
//! suite, flags and exit codes (`linkbox::contract_cli`).

use std::process::ExitCode;

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
    runtime.block_on(linkbox::contract_cli::run(args))
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
