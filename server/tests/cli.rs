//! The `linkbox` binary as a user runs it: closed pipes, completions, `serve --seed` on a
//! state file that already holds links, a second server on a state file in use, a
//! stderr nobody reads, SIGTERM with requests in flight on every serving runtime, and
//! `--stop-with-stdin` stopping when its stdin closes (and nothing stopping without it), and
//! switches set from the environment as `1` or `0`.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};

fn linkbox() -> Command {
    Command::new(env!("CARGO_BIN_EXE_linkbox"))
}

#[test]
fn openapi_exits_zero_quietly_when_its_reader_goes_away() {
    let mut child = linkbox()
        .arg("openapi")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut first = [0u8; 1];
    child
        .stdout
        .take()
        .expect("stdout")
        .read_exact(&mut first)
        .expect("read");
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success(), "{:?}", output.status);
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
}

#[test]
fn completions_print_a_script_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let output = linkbox()
            .args(["completions", shell])
            .output()
            .expect("run");
        assert!(output.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&output.stdout);
        assert!(
            script.contains("linkbox") && script.contains("serve"),
            "{shell}"
        );
    }
}

#[test]
fn help_documents_linkbox_log() {
    let output = linkbox().args(["serve", "--help"]).output().expect("run");
    assert!(String::from_utf8_lossy(&output.stdout).contains("LINKBOX_LOG"));
}

#[test]
fn a_bad_public_url_or_count_is_a_usage_error_naming_the_flag() {
    let output = linkbox()
        .args(["serve", "--public-url", "notaurl"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--public-url"));
    let output = linkbox()
        .args([
            "seed",
            "--target",
            "http://127.0.0.1:1",
            "--api",
            "m2m",
            "--count",
            "0",
            "--key",
            "k",
        ])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--count"));
}

/// A `LINKBOX_LOG` that does not parse stops `serve` naming it, rather than log at `info`
/// what a typo meant to silence.
#[test]
fn a_linkbox_log_that_does_not_parse_is_refused() {
    let output = linkbox()
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("LINKBOX_LOG", "info,linkbox::request=of")
        .output()
        .expect("run");
    assert!(!output.status.success(), "{output:?}");
    assert!(output.stdout.is_empty(), "it never listened");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("LINKBOX_LOG"), "{stderr}");
}

/// `linkbox seed` takes its flags from `LINKBOX_<FLAG>` as `serve` does: with every one
/// given so, it gets as far as the (absent) sandbox.
#[test]
fn seed_reads_its_flags_from_the_environment() {
    let output = linkbox()
        .arg("seed")
        .env("LINKBOX_TARGET", "http://127.0.0.1:9")
        .env("LINKBOX_API", "m2m")
        .env("LINKBOX_COUNT", "2")
        .env("LINKBOX_RNG_SEED", "3")
        .env("LINKBOX_KEY", "m2m_test_0123456789abcdefghijklmnopqrstuv")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot reach the sandbox"), "{stderr}");
    assert!(
        !stderr.contains("rng seed:"),
        "LINKBOX_RNG_SEED was read, not a random one drawn: {stderr}"
    );
}

/// `linkbox openapi` takes `--format` from `LINKBOX_FORMAT` too.
#[test]
fn openapi_reads_its_format_from_the_environment() {
    let output = linkbox()
        .arg("openapi")
        .env("LINKBOX_FORMAT", "yaml")
        .output()
        .expect("run");
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.starts_with('"') && text.contains("\"openapi\": \"3.1.0\""),
        "{text:.200}"
    );
}

/// The address a just-spawned `linkbox serve` (stdout piped) prints on its first line.
fn listening(child: &mut Child) -> String {
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("a first line");
    first
        .trim()
        .trim_start_matches("listening on http://")
        .to_owned()
}

/// One raw HTTP/1.1 exchange on a connection of its own, closed after the answer.
fn exchange(addr: &str, request: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    std::io::Write::write_all(&mut stream, request.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    answer
}

/// `serve --seed 2 --state FILE` until its demo lines are out; then stopped with SIGTERM.
fn serve_seeded(state: &std::path::Path) -> Vec<String> {
    let mut child: Child = linkbox()
        .args(["serve", "--addr", "localhost:0", "--seed", "2", "--state"])
        .arg(state)
        .env("LINKBOX_LOG", "off")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        let last = line.starts_with("dashboard:");
        lines.push(line);
        if last {
            break;
        }
    }
    // One answered request: the server is serving, its signal handler in place.
    let addr = lines[0]
        .trim_start_matches("listening on http://")
        .to_owned();
    let answer = exchange(
        &addr,
        "GET /_sandbox/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    stop(child);
    lines
}

/// Stops a `linkbox serve` with SIGTERM; it must exit cleanly.
fn stop(mut child: Child) {
    let stopped = Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(stopped.success());
    assert!(child.wait().expect("wait").success());
}

#[test]
fn serve_seed_on_a_state_file_with_links_seeds_nothing_and_says_so() {
    let dir = tempfile::Builder::new()
        .prefix("linkbox-cli-")
        .tempdir()
        .expect("dir");
    let state = dir.path().join("state.db");
    let first = serve_seeded(&state);
    assert!(first[0].starts_with("listening on http://"), "{first:?}");
    assert!(
        !first.iter().any(|line| line.contains("nothing seeded")),
        "{first:?}"
    );
    let second = serve_seeded(&state);
    assert!(
        second.iter().any(|line| line.contains("nothing seeded")),
        "{second:?}"
    );
}

/// One request on `stream` (kept alive) and its status line, its body read whole.
fn ask(stream: &mut BufReader<std::net::TcpStream>, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    std::io::Write::write_all(stream.get_mut(), request.as_bytes()).expect("send");
    let mut status = String::new();
    stream
        .read_line(&mut status)
        .expect("a status line in time");
    let mut length = 0;
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).expect("a header line");
        if line == "\r\n" {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().expect("a length");
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).expect("the body");
    status
}

/// A CI step that starts linkbox with stderr piped and never reads it: once the pipe is
/// full, a request whose log line waited for `write` would never be answered. Three thousand
/// request lines are several times a pipe's 64 KiB.
#[test]
fn requests_are_answered_while_nobody_reads_stderr() {
    let mut child: Child = linkbox()
        .args(["serve", "--addr", "127.0.0.1:0", "--rate-limits", "off"])
        .env("LINKBOX_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let addr = listening(&mut child);
    let stream = std::net::TcpStream::connect(&addr).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("a timeout");
    let mut stream = BufReader::new(stream);
    for _ in 0..3000 {
        let status = ask(&mut stream, "/_sandbox/clock");
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    }
    child.kill().expect("kill");
    child.wait().expect("wait");
}

#[test]
fn a_second_server_on_a_state_file_in_use_exits_naming_the_first_process() {
    let dir = tempfile::Builder::new()
        .prefix("linkbox-cli-lock-")
        .tempdir()
        .expect("dir");
    let state = dir.path().join("state.db");
    let mut first: Child = linkbox()
        .args(["serve", "--addr", "localhost:0", "--state"])
        .arg(&state)
        .env("LINKBOX_LOG", "off")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = first.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let listening = lines.next().expect("a line").expect("line");
    assert!(listening.starts_with("listening on http://"), "{listening}");

    let second = linkbox()
        .args(["serve", "--addr", "localhost:0", "--state"])
        .arg(&state)
        .env("LINKBOX_LOG", "off")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{stderr}");
    assert!(stderr.contains("in use by another linkbox"), "{stderr}");
    let pid = first.id();
    assert!(
        stderr.contains(&format!("pid {pid} on ")) || stderr.contains(&format!("pid {pid})")),
        "names the first process: {stderr}"
    );

    stop(first);
    assert!(
        !dir.path().join("state.db-holder").exists(),
        "a clean stop takes its note away"
    );
}

#[test]
fn sigterm_lets_requests_in_flight_on_every_connection_finish() {
    let mut child = linkbox()
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("LINKBOX_LOG", "off")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let addr = listening(&mut child);
    let key = "m2m_test_shutdown000000000000000000000000";
    let fault = r#"{"path": "/partner/links", "delayMs": 1500, "times": 6}"#;
    let added = exchange(
        &addr,
        &format!(
            "POST /_sandbox/faults HTTP/1.1\r\nHost: x\r\nx-api-key: {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{fault}",
            fault.len()
        ),
    );
    assert!(added.starts_with("HTTP/1.1 201"), "{added}");
    // Six connections at once, so that every runtime serving connections has some, each
    // request held in its delay when the signal comes.
    let requests: Vec<_> = (0..6)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                exchange(
                    &addr,
                    &format!("GET /partner/links HTTP/1.1\r\nHost: x\r\nx-api-key: {key}\r\nConnection: close\r\n\r\n"),
                )
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(500));
    stop(child);
    for request in requests {
        let answer = request.join().expect("request thread");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains("\"data\""), "{answer}");
    }
}

/// Waits up to `within` for `child` to exit; its status, or `None` while it still runs.
fn exits_within(
    child: &mut Child,
    within: std::time::Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The process that started linkbox holds the write end of its stdin; when that process goes,
/// however it goes, the pipe closes and linkbox stops as on SIGTERM. What was written on it
/// before is ignored.
#[test]
fn stop_with_stdin_stops_gracefully_when_stdin_closes() {
    let mut child = linkbox()
        .args(["serve", "--addr", "127.0.0.1:0", "--stop-with-stdin"])
        .env("LINKBOX_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let addr = listening(&mut child);
    let mut stdin = child.stdin.take().expect("stdin");
    std::io::Write::write_all(&mut stdin, b"anything at all\n").expect("write");
    let answer = exchange(
        &addr,
        "GET /_sandbox/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "still serving: {answer}"
    );
    drop(stdin);
    let status = exits_within(&mut child, std::time::Duration::from_secs(5));
    if status.is_none() {
        child.kill().expect("kill");
        child.wait().expect("wait");
    }
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    let status = status.unwrap_or_else(|| panic!("still running 5 s after stdin closed: {stderr}"));
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(stderr.contains("standard input closed"), "{stderr}");
    assert!(stderr.contains("shutting down"), "{stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
}

#[test]
fn without_stop_with_stdin_a_closed_stdin_changes_nothing() {
    let mut child = linkbox()
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("LINKBOX_LOG", "off")
        .env_remove("LINKBOX_STOP_WITH_STDIN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let addr = listening(&mut child);
    drop(child.stdin.take());
    let status = exits_within(&mut child, std::time::Duration::from_secs(1));
    assert!(status.is_none(), "exited when stdin closed: {status:?}");
    let answer = exchange(
        &addr,
        "GET /_sandbox/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    stop(child);
}

/// A flag's environment variable takes the values a shell user sets a switch with: `1`,
/// `yes`, `on`, `true` turn it on and `0`, `no`, `off`, `false` leave it off, rather than
/// `1` stopping linkbox from starting.
#[test]
fn switches_read_one_and_zero_from_the_environment() {
    for (value, stops) in [("1", true), ("yes", true), ("0", false), ("off", false)] {
        let mut child = linkbox()
            .args(["serve", "--addr", "127.0.0.1:0"])
            .env("LINKBOX_LOG", "off")
            .env("LINKBOX_STOP_WITH_STDIN", value)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn");
        listening(&mut child);
        drop(child.stdin.take());
        let status = exits_within(
            &mut child,
            std::time::Duration::from_secs(if stops { 5 } else { 1 }),
        );
        if stops {
            assert!(
                status.is_some_and(|status| status.success()),
                "LINKBOX_STOP_WITH_STDIN={value}: {status:?}"
            );
        } else {
            assert!(
                status.is_none(),
                "LINKBOX_STOP_WITH_STDIN={value}: {status:?}"
            );
            stop(child);
        }
    }
}
