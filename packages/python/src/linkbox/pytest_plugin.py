"""The pytest plugin (entry point ``pytest11``): a session-scoped ``linkbox`` fixture (one
sandbox per test session, so one per pytest-xdist worker) and a function-scoped
``linkbox_tenant`` fixture (a fresh M2M key and Leaf token, reset after the test, with the
sandbox clock put back where it was).

Configure it in ``pytest.ini``/``pyproject.toml`` with ``linkbox_config`` (a TOML file, relative
to the rootdir) and ``linkbox_args`` (more ``linkbox serve`` flags), or ``--linkbox-binary``;
override the ``linkbox`` fixture in a ``conftest.py`` for anything else."""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Dict, Iterator, Optional

import pytest

from ._errors import ControlError
from ._sandbox import Sandbox, Tenant


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("linkbox", "linkbox sandbox")
    group.addoption(
        "--linkbox-binary",
        default=None,
        help="the linkbox binary to run (default: $LINKBOX_BINARY, else the one the wheel installed)",
    )
    parser.addini("linkbox_config", "TOML config file for the linkbox fixture (--config)", default="")
    parser.addini("linkbox_args", "more `linkbox serve` flags for the linkbox fixture", type="args", default=[])


@pytest.fixture(scope="session")
def linkbox(pytestconfig: pytest.Config) -> Iterator[Sandbox]:
    """One linkbox for the test session, stopped at its end."""
    config_name = str(pytestconfig.getini("linkbox_config") or "")
    config: Optional[str] = os.path.join(str(pytestconfig.rootpath), config_name) if config_name else None
    binary: Optional[str] = pytestconfig.getoption("linkbox_binary")
    args = [str(arg) for arg in pytestconfig.getini("linkbox_args")]
    with Sandbox(config=config, args=args, binary=binary) as sandbox:
        if os.environ.get("PYTEST_XDIST_WORKER"):
            _stop_with_the_controller(sandbox)
        yield sandbox


def _stop_with_the_controller(sandbox: Sandbox) -> None:
    """In a pytest-xdist worker: stops the sandbox as soon as the pytest process that
    started the worker is gone (killed, say). linkbox already stops when the worker goes,
    but a worker outlives a killed controller until execnet notices, some seconds later;
    meanwhile its linkbox would hold its port."""
    controller = os.getppid()

    def watch() -> None:
        while sandbox.running:
            if os.getppid() != controller:
                sandbox.stop()
                return
            time.sleep(0.2)

    threading.Thread(target=watch, name="linkbox-controller-watch", daemon=True).start()


@pytest.fixture
def linkbox_tenant(linkbox: Sandbox) -> Iterator[Tenant]:
    """A fresh tenant on the session's sandbox; its data is reset after the test and the
    clock put back, whatever the test did."""
    tenant = linkbox.tenant()
    before = linkbox.clock(tenant.key)
    try:
        yield tenant
    finally:
        if linkbox.running:
            tenant.reset()
            _restore_clock(linkbox, before, tenant.key)


def _restore_clock(sandbox: Sandbox, before: Dict[str, Any], key: str) -> None:
    # As the admin, who may always move the clock (under `--clock admin` a tenant may not);
    # with the tenant's key where the admin's token is not known here.
    try:
        _put_clock_back(sandbox, before, None)
    except ControlError as error:
        if error.status != 401:
            raise
        _put_clock_back(sandbox, before, key)


def _put_clock_back(sandbox: Sandbox, before: Dict[str, Any], key: Optional[str]) -> None:
    now = sandbox.clock(key)
    if now["frozen"] != before["frozen"]:
        now = sandbox.freeze(bool(before["frozen"]), key)
    drift = int(before["offsetSeconds"]) - int(now["offsetSeconds"])
    if drift:
        sandbox.advance(drift, key)
