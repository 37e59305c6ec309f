"""The pytest plugin as a partner's suite meets it, run in a separate pytest process: a
failing test still stops linkbox, parallel workers each get their own sandbox and tenants,
``linkbox_tenant`` cleans up after itself, and the ini options reach ``linkbox serve``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from linkbox import is_running

RECORD = """
import json, os, requests

def record(linkbox, tenant=None, **extra):
    entry = {"url": linkbox.url, "pid": linkbox.pid,
             "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"), **extra}
    if tenant is not None:
        entry["key"] = tenant.key
        entry["token"] = tenant.token
    with open(os.environ["RECORD_TO"], "a") as out:
        out.write(json.dumps(entry) + "\\n")
"""


def records(path: Path) -> list:  # type: ignore[type-arg]
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def record_to(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = pytester.path / "records.jsonl"
    monkeypatch.setenv("RECORD_TO", str(path))
    pytester.makepyfile(record_helper=RECORD)
    return path


def test_a_failing_test_still_stops_linkbox(pytester: pytest.Pytester, record_to: Path) -> None:
    pytester.makepyfile(
        test_fails="""
        from record_helper import record

        def test_fails(linkbox_tenant):
            record(linkbox_tenant.sandbox, linkbox_tenant)
            assert False, "a partner's test fails"
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    [entry] = records(record_to)
    assert not is_running(entry["pid"])


def test_an_error_in_the_session_still_stops_linkbox(pytester: pytest.Pytester, record_to: Path) -> None:
    pytester.makepyfile(
        test_errors="""
        import pytest
        from record_helper import record

        @pytest.fixture
        def broken(linkbox):
            record(linkbox)
            raise RuntimeError("a fixture of the partner's breaks")

        def test_errors(broken):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    [entry] = records(record_to)
    assert not is_running(entry["pid"])


def test_parallel_workers_each_get_their_own_sandbox_and_tenants(pytester: pytest.Pytester, record_to: Path) -> None:
    pytester.makepyfile(
        test_parallel="""
        import pytest, requests
        from record_helper import record

        @pytest.mark.parametrize("n", range(6))
        def test_creates_a_link(linkbox_tenant, n):
            answer = requests.post(f"{linkbox_tenant.url}/partner/links", headers=linkbox_tenant.m2m_headers,
                                   json={"referenceId": f"user-{n}"}, timeout=10)
            assert answer.status_code == 201
            # A tenant sees only its own links, whatever runs beside it.
            listed = requests.get(f"{linkbox_tenant.url}/partner/links", headers=linkbox_tenant.m2m_headers, timeout=10)
            assert [link["referenceId"] for link in listed.json()["data"]["items"]] == [f"user-{n}"]
            record(linkbox_tenant.sandbox, linkbox_tenant)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=6)
    entries = records(record_to)
    workers = {entry["worker"] for entry in entries}
    assert workers == {"gw0", "gw1"}
    # One sandbox per worker, shared by that worker's tests.
    for worker in workers:
        assert len({(e["url"], e["pid"]) for e in entries if e["worker"] == worker}) == 1
    assert len({entry["url"] for entry in entries}) == 2
    assert len({entry["key"] for entry in entries}) == 6
    assert len({entry["token"] for entry in entries}) == 6
    assert not any(is_running(entry["pid"]) for entry in entries)


def test_the_tenant_fixture_resets_its_data_and_puts_the_clock_back(pytester: pytest.Pytester, record_to: Path) -> None:
    pytester.makepyfile(
        test_order="""
        import requests
        from record_helper import record

        def test_first(linkbox_tenant):
            before = linkbox_tenant.sandbox.clock()["offsetSeconds"]
            answer = requests.post(f"{linkbox_tenant.url}/partner/links", headers=linkbox_tenant.m2m_headers,
                                   json={"referenceId": "kept?"}, timeout=10)
            assert answer.status_code == 201
            linkbox_tenant.advance(40 * 24 * 3600)  # past the Leaf token's 30 days
            record(linkbox_tenant.sandbox, linkbox_tenant, offset=before)

        def test_second(linkbox):
            import json, os
            with open(os.environ["RECORD_TO"]) as lines:
                first = json.loads(lines.readline())
            assert linkbox.clock()["offsetSeconds"] == first["offset"]
            listed = requests.get(f"{linkbox.url}/partner/links", headers={"X-API-Key": first["key"]}, timeout=10)
            assert listed.json()["data"]["items"] == []
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=2)


def test_under_clock_admin_the_tenant_fixture_still_puts_the_clock_back(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        linkbox_args = --clock admin --admin-token s3cret
        """
    )
    pytester.makepyfile(
        test_admin_clock="""
        def test_first(linkbox, linkbox_tenant):
            linkbox.advance(3600)

        def test_second(linkbox):
            assert linkbox.clock()["offsetSeconds"] == 0
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=2)


def test_ini_options_reach_linkbox_serve(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".toml",
        linkbox="""
        [[partners]]
        slug = "acme"
        keys = ["m2m_test_acme0000000000000000000000000000"]
        """,
    )
    pytester.makeini(
        """
        [pytest]
        linkbox_config = linkbox.toml
        linkbox_args = --rate-limits off --journal-size 7 --admin-token s3cret
        """
    )
    pytester.makepyfile(
        test_configured="""
        import requests

        ACME = {"X-API-Key": "m2m_test_acme0000000000000000000000000000"}

        def test_only_the_configured_partner(linkbox):
            url = f"{linkbox.url}/partner/links"
            assert requests.get(url, headers=ACME, timeout=10).status_code == 200
            assert requests.get(url, headers={"X-API-Key": linkbox.m2m_key()}, timeout=10).status_code == 401
            assert requests.get(f"{linkbox.url}/_sandbox/requests", headers=ACME, timeout=10).json()["capacity"] == 7
            assert requests.get(f"{linkbox.url}/_sandbox/requests", timeout=10).status_code == 401
            # The token given among linkbox_args is the one the wrappers present.
            assert isinstance(linkbox.requests(), list)
            linkbox.reset()

        def test_no_fresh_tenant_where_the_config_names_the_partners(linkbox_tenant):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*LinkboxError: a fresh tenant needs open mode*"])


def test_a_missing_binary_fails_the_session_with_a_clear_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_uses="""
        def test_uses(linkbox):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--linkbox-binary", "/nonexistent/linkbox")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*StartError: cannot start linkbox: /nonexistent/linkbox does not exist*"])


def test_a_killed_xdist_run_takes_every_workers_linkbox_with_it(pytester: pytest.Pytester, record_to: Path) -> None:
    """The controller killed mid-test: each worker's linkbox stops within a second or two,
    not once execnet's own watchdog ends the worker."""
    import os
    import signal
    import subprocess
    import sys
    import time

    pytester.makepyfile(
        test_hang="""
        import time
        import pytest
        from record_helper import record

        @pytest.mark.parametrize("n", range(2))
        def test_hangs(linkbox, n):
            record(linkbox)
            time.sleep(120)
        """
    )
    runner = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "-q"],
        cwd=pytester.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while (not record_to.exists() or len(records(record_to)) < 2) and time.monotonic() < deadline:
            time.sleep(0.1)
        entries = records(record_to)
        assert len(entries) == 2, entries
        runner.send_signal(signal.SIGKILL)
        runner.wait(10)
        deadline = time.monotonic() + 5
        while any(is_running(entry["pid"]) for entry in entries) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(is_running(entry["pid"]) for entry in entries), "a worker's linkbox outlived pytest"
    finally:
        try:
            os.killpg(runner.pid, signal.SIGKILL)
        except OSError:
            pass

