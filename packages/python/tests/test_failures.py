"""Bad input and failure: a missing or non-executable binary, a port in use, linkbox exiting
or hanging before it prints its address. Each raises ``StartError`` carrying linkbox's own
stderr, within a bounded time, and leaves no process behind. And a Python process killed by
a signal, which runs no ``atexit`` hook, still takes its linkbox with it."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import linkbox


def test_a_missing_binary_is_named() -> None:
    with pytest.raises(linkbox.StartError) as failure:
        linkbox.Sandbox(binary="/nonexistent/linkbox").start()
    assert "/nonexistent/linkbox does not exist" in str(failure.value)
    assert failure.value.pid is None


def test_the_env_given_chooses_the_binary() -> None:
    # Its LINKBOX_BINARY wins over this process's; without one, this process's still counts.
    env = {**os.environ, "LINKBOX_BINARY": "/nonexistent/from-env/linkbox"}
    with pytest.raises(linkbox.StartError) as failure:
        linkbox.Sandbox(env=env).start()
    assert "/nonexistent/from-env/linkbox does not exist" in str(failure.value)
    with linkbox.Sandbox(env={"PATH": os.environ.get("PATH", "")}) as sandbox:
        assert sandbox.running


def test_a_binary_that_is_not_executable_is_named(tmp_path: Path) -> None:
    binary = tmp_path / "linkbox"
    binary.write_bytes(Path(linkbox.find_binary()).read_bytes()[:4096])
    binary.chmod(stat.S_IRUSR | stat.S_IWUSR)
    if os.access(binary, os.X_OK):
        pytest.skip("this user may execute any file")
    with pytest.raises(linkbox.StartError) as failure:
        linkbox.Sandbox(binary=binary).start()
    assert f"{binary} is not executable" in str(failure.value)


def test_a_port_in_use_fails_with_linkboxs_stderr() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(linkbox.StartError) as failure:
            linkbox.Sandbox(addr=f"127.0.0.1:{port}").start()
    error = failure.value
    assert f"cannot listen on 127.0.0.1:{port}" in error.stderr
    assert error.stderr.strip() in str(error)
    assert error.returncode == 1
    assert error.pid is not None and not linkbox.is_running(error.pid)


def test_exiting_before_the_address_fails_with_linkboxs_stderr(tmp_path: Path) -> None:
    config = tmp_path / "linkbox.toml"
    config.write_text("[[partners]]\nslug = 'Not A Slug'\n")
    with pytest.raises(linkbox.StartError) as failure:
        linkbox.Sandbox(config=config).start()
    error = failure.value
    assert "exited before printing its address" in str(error)
    assert "linkbox:" in error.stderr and error.stderr.strip() in str(error)
    assert error.returncode == 1
    assert error.pid is not None and not linkbox.is_running(error.pid)


def test_an_unknown_flag_fails_with_the_usage_message() -> None:
    with pytest.raises(linkbox.StartError) as failure:
        linkbox.Sandbox(args=["--no-such-flag"]).start()
    assert "--no-such-flag" in str(failure.value)
    assert failure.value.returncode == 2


def test_a_process_that_never_prints_its_address_is_stopped_in_bounded_time(tmp_path: Path) -> None:
    fake = tmp_path / "linkbox"
    fake.write_text("#!/bin/sh\necho 'warming up forever' >&2\nexec sleep 60\n")
    fake.chmod(0o755)
    started = time.monotonic()
    with pytest.raises(linkbox.StartError) as failure:
        linkbox.Sandbox(binary=fake, start_timeout=1.0).start()
    assert time.monotonic() - started < 10
    error = failure.value
    assert "printed no address within 1 s" in str(error)
    assert "warming up forever" in str(error)
    assert error.pid is not None and not linkbox.is_running(error.pid)


def test_a_process_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    fake = tmp_path / "linkbox"
    fake.write_text("#!/bin/sh\ntrap '' TERM\necho 'listening on http://127.0.0.1:9'\nwhile :; do sleep 0.1; done\n")
    fake.chmod(0o755)
    sandbox = linkbox.Sandbox(binary=fake, stop_timeout=1.0).start()
    pid = sandbox.pid
    assert sandbox.url == "http://127.0.0.1:9" and pid is not None
    started = time.monotonic()
    sandbox.stop()
    assert time.monotonic() - started < 10
    assert not linkbox.is_running(pid)


def test_calls_to_a_sandbox_that_died_say_so_with_its_stderr() -> None:
    with linkbox.Sandbox() as sandbox:
        pid = sandbox.pid
        assert pid is not None
        os.kill(pid, 9)
        deadline = time.monotonic() + 10
        while sandbox.running and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(linkbox.LinkboxError) as failure:
            sandbox.webhooks()
        assert "linkbox is not running (exit status -9)" in str(failure.value)


def test_using_a_sandbox_before_starting_it_is_an_error() -> None:
    with pytest.raises(linkbox.LinkboxError, match="not started"):
        linkbox.Sandbox().url


def _answers(url: str) -> bool:
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(f"{url}/_sandbox/health", timeout=2):
            return True
    except (urllib.error.URLError, OSError):
        return False


def _exited(pid: int) -> bool:
    """Gone, or a zombie nobody reaps (linkbox is reparented when its Python process dies)."""
    if not linkbox.is_running(pid):
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat_file:
            return stat_file.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False


@pytest.mark.parametrize("signal_name", ["SIGKILL", "SIGTERM", "SIGHUP"])
def test_a_python_process_killed_by_a_signal_takes_linkbox_with_it(signal_name: str) -> None:
    if not hasattr(signal, signal_name):
        pytest.skip(f"no {signal_name} here")
    script = (
        "import time, linkbox\n"
        "sandbox = linkbox.Sandbox().start()\n"
        "print(sandbox.pid, sandbox.url, flush=True)\n"
        "time.sleep(120)\n"
    )
    runner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    pid = None
    try:
        assert runner.stdout is not None
        line = runner.stdout.readline()
        assert line, f"the Python process exited first (status {runner.wait(10)})"
        pid_text, url = line.split()
        pid = int(pid_text)
        assert _answers(url)
        runner.send_signal(getattr(signal, signal_name))
        runner.wait(10)
        deadline = time.monotonic() + 5
        while not _exited(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _exited(pid), f"linkbox {pid} outlived its Python process ({signal_name})"
        assert not _answers(url), f"{url} still answers after its Python process died"
    finally:
        runner.kill()
        runner.wait()
        if runner.stdout is not None:
            runner.stdout.close()
        if pid is not None and not _exited(pid):
            os.kill(pid, signal.SIGKILL)  # a failed run leaves nothing behind either
