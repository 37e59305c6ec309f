"""Starting and stopping the ``linkbox`` process: where its binary is, reading the address it
prints first, keeping the tail of its stderr for error messages, and making sure it is gone
when the sandbox stops, or when Python exits, however it exits.

linkbox's stdin is a pipe whose write end only this process holds (the descriptor is not
inheritable, and ``close_fds`` keeps it from other children); ``serve --stop-with-stdin``
stops when it closes, so a Python process killed by a signal, which runs no ``atexit``
hook, still takes its linkbox with it."""

from __future__ import annotations

import atexit
import os
import queue
import shutil
import subprocess
import sysconfig
import threading
from typing import IO, Dict, List, NoReturn, Optional, Sequence, Set

from ._errors import StartError

#: The first line ``linkbox serve`` prints on stdout.
LISTENING_PREFIX = "listening on "

#: How much of linkbox's stderr is kept for error messages (the newest bytes).
STDERR_TAIL_BYTES = 64 * 1024

_EXE = "linkbox.exe" if os.name == "nt" else "linkbox"


def find_binary(binary: Optional[str] = None) -> str:
    """The linkbox binary to run: ``binary``, else ``$LINKBOX_BINARY``, else the one this
    wheel put in the environment's scripts directory, else ``linkbox`` on ``PATH``."""
    if binary:
        return binary
    from_env = os.environ.get("LINKBOX_BINARY")
    if from_env:
        return from_env
    looked: List[str] = []
    schemes = [None, f"{os.name}_user"]
    for scheme in schemes:
        try:
            scripts = sysconfig.get_path("scripts", scheme) if scheme else sysconfig.get_path("scripts")
        except KeyError:
            continue
        if not scripts:
            continue
        candidate = os.path.join(scripts, _EXE)
        looked.append(candidate)
        if os.path.isfile(candidate):
            return candidate
    on_path = shutil.which("linkbox")
    if on_path:
        return on_path
    raise StartError(
        "cannot find the linkbox binary: not in "
        + ", ".join(looked)
        + " nor on PATH; install the linkbox wheel, or set LINKBOX_BINARY or pass binary=",
        stderr="",
        returncode=None,
    )


class _StderrTail:
    """The newest bytes of a stream, read on a thread so that the pipe never fills up."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._chunks = bytearray()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True, name="linkbox-stderr")
        self._thread.start()

    def _pump(self, stream: IO[bytes]) -> None:
        try:
            while True:
                chunk = stream.read1(8192) if hasattr(stream, "read1") else stream.read(8192)
                if not chunk:
                    break
                with self._lock:
                    self._chunks += chunk
                    if len(self._chunks) > STDERR_TAIL_BYTES:
                        del self._chunks[: len(self._chunks) - STDERR_TAIL_BYTES]
        except (OSError, ValueError):
            pass
        finally:
            try:
                stream.close()
            except OSError:
                pass

    def text(self) -> str:
        with self._lock:
            return self._chunks.decode("utf-8", errors="replace")

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


class _StdoutLines:
    """linkbox's stdout, line by line, on a thread: the first line (the address, or ``None``
    when stdout closed first) goes to ``first``; later ones (the ``--seed`` credentials) are
    kept in ``rest``."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.first: "queue.Queue[Optional[str]]" = queue.Queue()
        self.rest: List[str] = []
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True, name="linkbox-stdout")
        self._thread.start()

    def _pump(self, stream: IO[bytes]) -> None:
        # Read as it arrives, a chunk at a time: linkbox writes its address and the lines
        # after it in one write, and every line of the chunk that holds the address is in
        # ``rest`` before the address is handed on. Handed on line by line, a caller that
        # read ``rest`` at once found it empty about one start in four.
        sent_first = False
        pending = b""
        try:
            while True:
                chunk = stream.read1(65536)  # type: ignore[attr-defined]
                if not chunk:
                    break
                *complete, pending = (pending + chunk).split(b"\n")
                lines = [raw.decode("utf-8", errors="replace").rstrip("\r") for raw in complete]
                if not lines:
                    continue
                if sent_first:
                    self.rest.extend(lines)
                else:
                    self.rest.extend(lines[1:])
                    self.first.put(lines[0])
                    sent_first = True
            if pending:
                last = pending.decode("utf-8", errors="replace").rstrip("\r")
                if sent_first:
                    self.rest.append(last)
                else:
                    self.first.put(last)
                    sent_first = True
        except (OSError, ValueError):
            pass
        finally:
            if not sent_first:
                self.first.put(None)
            try:
                stream.close()
            except OSError:
                pass

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


# Every process started and not yet stopped, so that none outlives the interpreter (held
# strongly: a sandbox dropped without stop() must still be stopped at exit).
_LIVE: "Set[Process]" = set()


def _stop_all() -> None:
    for process in list(_LIVE):
        process.stop(timeout=2.0)


atexit.register(_stop_all)


class Process:
    """One running ``linkbox serve``: started by :meth:`start`, which returns once it has
    printed its address, and stopped (SIGTERM, then SIGKILL after ``timeout``) by
    :meth:`stop`."""

    def __init__(self, command: Sequence[str], env: Optional[Dict[str, str]] = None) -> None:
        self.command = list(command)
        self.env = env
        self.url = ""
        self._popen: Optional["subprocess.Popen[bytes]"] = None
        self._stderr: Optional[_StderrTail] = None
        self._stdout: Optional[_StdoutLines] = None

    @property
    def pid(self) -> Optional[int]:
        return self._popen.pid if self._popen is not None else None

    def returncode(self) -> Optional[int]:
        """The exit status once linkbox has exited, ``None`` while it runs."""
        return self._popen.poll() if self._popen is not None else None

    def stderr(self) -> str:
        """The newest part of what linkbox wrote on stderr."""
        return self._stderr.text() if self._stderr is not None else ""

    def start(self, timeout: float) -> str:
        binary = self.command[0]
        try:
            self._popen = subprocess.Popen(
                self.command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self.env,
                close_fds=True,
            )
        except FileNotFoundError as error:
            raise StartError(f"cannot start linkbox: {binary} does not exist ({error.strerror})", "", None) from error
        except PermissionError as error:
            raise StartError(f"cannot start linkbox: {binary} is not executable ({error.strerror})", "", None) from error
        except OSError as error:
            raise StartError(f"cannot start linkbox: {binary}: {error.strerror or error}", "", None) from error
        _LIVE.add(self)
        assert self._popen.stdout is not None and self._popen.stderr is not None
        self._stderr = _StderrTail(self._popen.stderr)
        self._stdout = _StdoutLines(self._popen.stdout)
        try:
            first = self._stdout.first.get(timeout=timeout)
        except queue.Empty:
            self._fail(f"linkbox printed no address within {timeout:g} s")
        if first is None:
            self._fail("linkbox exited before printing its address", exiting=True)
        if not first.startswith(LISTENING_PREFIX):
            self._fail(f"linkbox printed {first!r} instead of its address")
        self.url = first[len(LISTENING_PREFIX) :].strip()
        return self.url

    def extra_lines(self) -> List[str]:
        """Lines linkbox printed on stdout after its address (``--seed`` credentials)."""
        return list(self._stdout.rest) if self._stdout is not None else []

    def _fail(self, what: str, exiting: bool = False) -> NoReturn:
        """Stops the process and raises :class:`StartError` with its stderr."""
        if exiting and self._popen is not None:
            # Its stdout closed: give it a moment to exit by itself, with its own status.
            try:
                self._popen.wait(2.0)
            except subprocess.TimeoutExpired:
                pass
        self.stop(timeout=2.0)
        code = self.returncode()
        status = f" (exit status {code})" if code is not None and code >= 0 else ""
        stderr = self.stderr().strip()
        detail = f"; its stderr:\n{stderr}" if stderr else "; it wrote nothing on stderr"
        raise StartError(f"{what}{status}{detail}\ncommand: {' '.join(self.command)}", stderr, code, self.pid)

    def stop(self, timeout: float) -> None:
        """SIGTERM, up to ``timeout`` seconds for a graceful exit, then SIGKILL. Idempotent."""
        popen = self._popen
        if popen is None:
            return
        if popen.poll() is None:
            try:
                popen.terminate()
                popen.wait(timeout)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()
            except OSError:
                popen.wait()
        if popen.stdin is not None:
            try:
                popen.stdin.close()
            except OSError:
                pass
        for reader in (self._stdout, self._stderr):
            if reader is not None:
                reader.join(2.0)
        _LIVE.discard(self)


def is_running(pid: int) -> bool:
    """Whether a process with this id still exists, for tests that check that nothing was
    left behind (linkbox's own processes are reaped when they stop)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
