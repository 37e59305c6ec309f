"""``Sandbox`` (one linkbox process, with thin wrappers over its control API) and ``Tenant``
(a fresh M2M key and Leaf token on a sandbox, what one test works in). HTTP is the standard
library's ``urllib``, without proxies: the sandbox is always on this machine."""

from __future__ import annotations

import datetime
import json
import os
import secrets
import urllib.error
import urllib.parse
import urllib.request
from types import TracebackType
from typing import Any, Dict, List, Mapping, Optional, Sequence, Type, Union

from ._errors import ControlError, LinkboxError, VerificationError
from ._process import Process, find_binary

PathLike = Union[str, "os.PathLike[str]"]
Json = Any

#: The prefix of a sandbox M2M key; 32 letters or digits follow it.
TEST_KEY_PREFIX = "m2m_test_"

#: Deliveries asked for per ``GET /_sandbox/webhooks`` page: the most linkbox answers at once.
DELIVERY_PAGE = 1000


def new_m2m_key() -> str:
    """A fresh, well-formed M2M sandbox key: in open mode, a partner of its own."""
    return TEST_KEY_PREFIX + secrets.token_hex(16)


class Sandbox:
    """A linkbox process on a free loopback port, stopped when the ``with`` block ends (also
    when it ends with an exception)::

        with linkbox.Sandbox() as sandbox:
            key = sandbox.m2m_key()
            requests.post(f"{sandbox.url}/partner/links", headers={"X-API-Key": key}, json={...})

    ``config`` is a TOML file (``--config``), ``state`` a SQLite file (``--state``), ``seed``
    the number of demo links (``--seed``) and ``args`` further ``linkbox serve`` flags. The
    binary is ``binary``, else ``LINKBOX_BINARY`` from ``env`` or, failing that, from this
    process's environment, else the one the wheel installed.

    Control calls take a credential ``key``: an M2M key or a Leaf ``id_token`` scopes them to
    that tenant; ``None`` acts for every tenant (as admin), presenting ``admin_token`` (passed
    as ``--admin-token``), else an ``--admin-token`` among ``args``, else the
    ``LINKBOX_ADMIN_TOKEN`` of linkbox's environment, which linkbox reads too.
    """

    def __init__(
        self,
        config: Optional[PathLike] = None,
        state: Optional[PathLike] = None,
        seed: Optional[int] = None,
        args: Sequence[str] = (),
        *,
        addr: str = "127.0.0.1:0",
        binary: Optional[PathLike] = None,
        admin_token: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
        start_timeout: float = 10.0,
        stop_timeout: float = 5.0,
        request_timeout: float = 30.0,
    ) -> None:
        # linkbox stops when its stdin (a pipe only this process holds) closes: when this
        # process goes, even killed by a signal.
        command: List[str] = ["serve", "--addr", addr, "--stop-with-stdin"]
        if config is not None:
            command += ["--config", os.fspath(config)]
        if state is not None:
            command += ["--state", os.fspath(state)]
        if seed is not None:
            command += ["--seed", str(int(seed))]
        if admin_token is not None:
            command += ["--admin-token", admin_token]
        command += [str(arg) for arg in args]
        self._command = command
        self._binary = os.fspath(binary) if binary is not None else None
        self._env = dict(os.environ if env is None else env)
        # Log lines end up in error messages: keep them free of colour codes.
        self._env.setdefault("NO_COLOR", "1")
        if admin_token is None:
            # A token passed as a plain flag among ``args`` is presented too; else linkbox reads
            # LINKBOX_ADMIN_TOKEN from its environment when no --admin-token is given.
            admin_token = _admin_token_in(command) or self._env.get("LINKBOX_ADMIN_TOKEN") or None
        self._admin_token = admin_token
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._request_timeout = request_timeout
        self._process: Optional[Process] = None
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> "Sandbox":
        """Starts linkbox and returns once it listens; :class:`StartError` (with linkbox's
        stderr) when it cannot, with no process left behind."""
        if self._process is not None and self._process.returncode() is None:
            raise LinkboxError("this sandbox is already running")
        # An explicit env's LINKBOX_BINARY is the one the caller means, over this process's.
        binary = find_binary(self._binary or self._env.get("LINKBOX_BINARY") or None)
        process = Process([binary] + self._command, self._env)
        process.start(self._start_timeout)
        self._process = process
        return self

    def stop(self) -> None:
        """Stops linkbox (SIGTERM, then SIGKILL after ``stop_timeout``) and waits until it has
        exited. Safe to call more than once."""
        if self._process is not None:
            self._process.stop(self._stop_timeout)

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, the base URL of every API."""
        return self._running().url

    @property
    def pid(self) -> Optional[int]:
        """The process id, once started."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode() is None

    @property
    def stderr(self) -> str:
        """The newest part (64 KiB) of linkbox's log on stderr."""
        return self._process.stderr() if self._process is not None else ""

    @property
    def stdout_lines(self) -> List[str]:
        """What linkbox printed on stdout after its address (the ``seed`` demo credentials)."""
        return self._process.extra_lines() if self._process is not None else []

    def _running(self) -> Process:
        if self._process is None or not self._process.url:
            raise LinkboxError("the sandbox is not started: use `with Sandbox() as sandbox:` or call start()")
        return self._process

    # -- credentials ----------------------------------------------------------------------

    def m2m_key(self) -> str:
        """A fresh M2M key: in open mode (no ``partners`` in the config), its own partner."""
        return new_m2m_key()

    def leaf_token(self, username: Optional[str] = None, password: str = "linkbox", remember_me: bool = True) -> str:
        """A Leaf ``id_token`` from ``POST /api/authenticate``. Without ``username``, a fresh
        account (open mode accepts any name and password)."""
        if username is None:
            username = f"user-{secrets.token_hex(6)}@linkbox.test"
        answer = self._call(
            "POST",
            "/api/authenticate",
            body={"username": username, "password": password, "rememberMe": remember_me},
            credential=None,
            admin=False,
        )
        token = answer.get("id_token") if isinstance(answer, dict) else None
        if not isinstance(token, str):
            raise LinkboxError(f"POST /api/authenticate answered no id_token: {answer!r}")
        return token

    def tenant(self) -> "Tenant":
        """A fresh tenant: a new M2M key (its own partner) and a new Leaf account's token."""
        key = self.m2m_key()
        username = f"tenant-{secrets.token_hex(6)}@linkbox.test"
        try:
            self.clock(key)
            token = self.leaf_token(username)
        except ControlError as error:
            if error.status != 401:
                raise
            raise LinkboxError(
                "a fresh tenant needs open mode, and this sandbox's config lists its partners or Leaf "
                f"accounts ({error}): use the keys and accounts the config names instead"
            ) from error
        return Tenant(self, key, token, username)

    # -- control API ----------------------------------------------------------------------

    def reset(self, key: Optional[str] = None) -> Json:
        """``POST /_sandbox/reset``: forget that tenant's data, or everything (and put the
        clock back on real time) without ``key``."""
        return self._call("POST", "/_sandbox/reset", credential=key)

    def advance(self, seconds: Union[int, float, datetime.timedelta], key: Optional[str] = None) -> Json:
        """``POST /_sandbox/clock {"advanceSeconds"}``: move the sandbox clock (shared by every
        tenant) by whole seconds; due webhook retries fire and links expire at once. Answers
        ``{now, offsetSeconds, frozen}``."""
        if isinstance(seconds, datetime.timedelta):
            seconds = seconds.total_seconds()
        if isinstance(seconds, bool) or not float(seconds).is_integer():
            raise ValueError(f"advance() takes whole seconds, not {seconds!r}")
        return self._call("POST", "/_sandbox/clock", body={"advanceSeconds": int(seconds)}, credential=key)

    def clock(self, key: Optional[str] = None) -> Json:
        """``GET /_sandbox/clock``: ``{now, offsetSeconds, frozen}``."""
        return self._call("GET", "/_sandbox/clock", credential=key)

    def freeze(self, frozen: bool = True, key: Optional[str] = None) -> Json:
        """``POST /_sandbox/clock {"frozen"}``: stop (or restart) the sandbox clock."""
        return self._call("POST", "/_sandbox/clock", body={"frozen": frozen}, credential=key)

    def webhooks(self, key: Optional[str] = None) -> List[Json]:
        """``GET /_sandbox/webhooks``: the deliveries the caller may see, newest first, each
        with its attempts. linkbox answers a page at a time; this follows ``nextBefore``
        until the last page, so the list is complete."""
        deliveries: List[Json] = []
        query = {"limit": str(DELIVERY_PAGE)}
        while True:
            page = self._call("GET", "/_sandbox/webhooks?" + urllib.parse.urlencode(query), credential=key)
            deliveries += page["deliveries"]
            before = page.get("nextBefore")
            if not before:
                return deliveries
            query["before"] = before

    def requests(
        self,
        key: Optional[str] = None,
        *,
        method: Optional[str] = None,
        path: Optional[str] = None,
        status: Union[int, str, None] = None,
        **filters: str,
    ) -> List[Json]:
        """``GET /_sandbox/requests``: the journal of calls to the vendor APIs, newest first.
        Filters: ``method``, ``path`` (exact, or a prefix ending in ``*``), ``status`` (``404``
        or ``"4xx"``), and any other filter the server knows, by its own name."""
        query: Dict[str, str] = dict(filters)
        if method is not None:
            query["method"] = method
        if path is not None:
            query["path"] = path
        if status is not None:
            query["status"] = str(status)
        target = "/_sandbox/requests"
        if query:
            target += "?" + urllib.parse.urlencode(query)
        return list(self._call("GET", target, credential=key)["requests"])

    def verify(
        self,
        key: Optional[str] = None,
        *,
        method: Optional[str] = None,
        path: Optional[str] = None,
        body_contains: Optional[str] = None,
        body_json: Optional[Json] = None,
        exactly: Optional[int] = None,
        at_least: Optional[int] = None,
        at_most: Optional[int] = None,
    ) -> int:
        """``POST /_sandbox/requests/verify``: asserts that the journal holds the requests
        described (at least one, unless a count is given) and returns how many matched;
        raises :class:`VerificationError` (an ``AssertionError``) listing linkbox's closest
        near-misses when it does not."""
        spec: Dict[str, Json] = {}
        for name, value in (("method", method), ("path", path), ("bodyContains", body_contains), ("bodyJson", body_json)):
            if value is not None:
                spec[name] = value
        count = {
            name: value
            for name, value in (("exactly", exactly), ("atLeast", at_least), ("atMost", at_most))
            if value is not None
        }
        if count:
            spec["count"] = count
        try:
            answer = self._call("POST", "/_sandbox/requests/verify", body=spec, credential=key)
        except ControlError as error:
            if error.status != 409:
                raise
            raise VerificationError(_verification_message(spec, error.body), error.body) from None
        return int(answer["matched"])

    def set_webhook_url(self, key: str, url: Optional[str]) -> None:
        """``PUT /_sandbox/m2m/webhook-config``: the partner's webhook URL (``None`` clears
        it), what the vendor's portal sets."""
        self._call("PUT", "/_sandbox/m2m/webhook-config", body={"url": url}, credential=key)

    # -- HTTP -------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        target: str,
        *,
        body: Optional[Json] = None,
        credential: Optional[str],
        admin: bool = True,
    ) -> Json:
        """One JSON call; non-2xx raises :class:`ControlError`."""
        process = self._running()
        headers = {"Accept": "application/json"}
        if credential is not None:
            if credential.startswith("m2m_"):
                headers["X-API-Key"] = credential
            else:
                headers["Authorization"] = f"Bearer {credential}"
        elif admin and self._admin_token is not None:
            headers["Authorization"] = f"Bearer {self._admin_token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(process.url + target, data=data, headers=headers, method=method)
        path = target.split("?", 1)[0]
        try:
            with self._opener.open(request, timeout=self._request_timeout) as response:
                return _decode(response.read())
        except urllib.error.HTTPError as error:
            with error:
                raise ControlError(method, path, error.code, _decode(error.read())) from None
        except (urllib.error.URLError, OSError) as error:
            code = process.returncode()
            if code is not None:
                raise LinkboxError(
                    f"{method} {path}: linkbox is not running (exit status {code}); its stderr:\n{process.stderr().strip()}"
                ) from error
            raise LinkboxError(f"{method} {path}: {error}") from error


def _decode(raw: bytes) -> Json:
    if not raw:
        return None
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def _verification_message(spec: Mapping[str, Json], body: Json) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    said = error.get("message") if isinstance(error, dict) else None
    lines = [f"linkbox: the requests do not match {json.dumps(spec, sort_keys=True)}"]
    if said:
        lines.append(str(said))
    lines.append("linkbox answered: " + json.dumps(body, indent=2, sort_keys=True))
    return "\n".join(lines)


class Tenant:
    """A fresh M2M partner (``key``) and Leaf account (``token``) on a sandbox, so that tests
    sharing one sandbox never see each other's links, journal entries or webhooks. The
    clock stays shared by the whole sandbox."""

    def __init__(self, sandbox: Sandbox, key: str, token: str, username: str, password: str = "linkbox") -> None:
        self.sandbox = sandbox
        #: The M2M ``X-API-Key``.
        self.key = key
        #: The Leaf ``id_token`` (``Authorization: Bearer``), valid 30 days on the sandbox clock.
        self.token = token
        #: The Leaf account's username and password.
        self.username = username
        self.password = password

    def __repr__(self) -> str:
        return f"Tenant(url={self.sandbox.url!r}, key={self.key!r})"

    @property
    def url(self) -> str:
        return self.sandbox.url

    @property
    def m2m_headers(self) -> Dict[str, str]:
        """``{"X-API-Key": key}``, for the M2M partner API."""
        return {"X-API-Key": self.key}

    @property
    def leaf_headers(self) -> Dict[str, str]:
        """``{"Authorization": "Bearer <token>"}``, for the Leaf API."""
        return {"Authorization": f"Bearer {self.token}"}

    def reset(self) -> None:
        """Forgets this tenant's M2M and Leaf data (the webhook URL and secret stay)."""
        self.sandbox.reset(self.key)
        try:
            self.sandbox.reset(self.token)
        except ControlError as error:
            if error.status != 401:
                raise
            # The clock moved past the token's lifetime: the account is still there.
            self.token = self.sandbox.leaf_token(self.username, self.password)
            self.sandbox.reset(self.token)

    def advance(self, seconds: Union[int, float, datetime.timedelta]) -> Json:
        """Moves the sandbox clock, for every tenant."""
        return self.sandbox.advance(seconds, key=self.key)

    def webhooks(self) -> List[Json]:
        """This partner's webhook deliveries, newest first."""
        return self.sandbox.webhooks(self.key)

    def requests(self, *, leaf: bool = False, **filters: Any) -> List[Json]:
        """This tenant's journal (M2M calls, or Leaf calls with ``leaf=True``)."""
        return self.sandbox.requests(self.token if leaf else self.key, **filters)

    def verify(self, *, leaf: bool = False, **spec: Any) -> int:
        """:meth:`Sandbox.verify` over this tenant's M2M (or Leaf) calls."""
        return self.sandbox.verify(self.token if leaf else self.key, **spec)

    def set_webhook_url(self, url: Optional[str]) -> None:
        """The partner's webhook URL (``None`` clears it)."""
        self.sandbox.set_webhook_url(self.key, url)

    def regenerate_webhook_secret(self) -> str:
        """``POST /partner/webhooks/config/regenerate-secret``: a new signing secret, which
        signs every delivery from now on (the vendor shows it only once)."""
        answer = self.sandbox._call(
            "POST", "/partner/webhooks/config/regenerate-secret", credential=self.key, admin=False
        )
        return str(answer["webhookSecret"])


def _admin_token_in(args: Sequence[str]) -> Optional[str]:
    """The ``--admin-token`` among ``args`` (``--admin-token T`` or ``--admin-token=T``; the
    last one given)."""
    token: Optional[str] = None
    args = list(args)
    for i, arg in enumerate(args):
        if arg == "--admin-token" and i + 1 < len(args):
            token = args[i + 1]
        elif arg.startswith("--admin-token="):
            token = arg[len("--admin-token="):]
    return token
