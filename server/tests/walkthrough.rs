//! Runs `docs/webhooks-walkthrough.sh`, the README's webhook walk-through as a script,
//! against this build's `linkbox`. It needs bash, curl, jq and python3: without them the
//! test says so on stderr and passes, unless `LINKBOX_WALKTHROUGH_TEST=1` (what CI sets)
//! makes a missing tool a failure.

use std::process::Command;
use std::time::{Duration, Instant};

fn available(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success())
}

#[test]
fn the_webhook_walkthrough_runs_as_written() {
    let missing: Vec<&str> = ["bash", "curl", "jq", "python3"]
        .into_iter()
        .filter(|tool| !available(tool))
        .collect();
    if !missing.is_empty() {
        assert!(
            std::env::var("LINKBOX_WALKTHROUGH_TEST").as_deref() != Ok("1"),
            "the walk-through needs {missing:?}"
        );
        eprintln!("skipped: the walk-through needs {missing:?}");
        return;
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/webhooks-walkthrough.sh"
    );
    let started = Instant::now();
    let output = Command::new("bash")
        .arg(script)
        .env("LINKBOX", env!("CARGO_BIN_EXE_linkbox"))
        .output()
        .expect("run the walk-through");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("walk-through OK"), "{stdout}");
    assert!(started.elapsed() < Duration::from_secs(60));
}
