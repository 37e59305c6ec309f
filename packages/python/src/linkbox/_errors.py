"""The exceptions the package raises: one base class, and one per way things go wrong."""

from __future__ import annotations

from typing import Any, Optional


class LinkboxError(Exception):
    """Anything that went wrong starting, driving or stopping linkbox."""


class StartError(LinkboxError):
    """linkbox could not be started: the binary is missing or not executable, or it exited
    (or printed nothing) before its address. The message carries linkbox's own stderr."""

    def __init__(self, message: str, stderr: str, returncode: Optional[int], pid: Optional[int] = None) -> None:
        super().__init__(message)
        #: The id the process had, when it was started at all (it is gone by now).
        self.pid = pid
        #: What linkbox wrote on stderr (its newest 64 KiB), empty when it never ran.
        self.stderr = stderr
        #: Its exit status, when it exited; negative for a signal.
        self.returncode = returncode


class ControlError(LinkboxError):
    """linkbox answered a control call with an error status."""

    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        self.method = method
        self.path = path
        self.status = status
        #: The decoded JSON body (or its text when it was not JSON).
        self.body = body
        error = body.get("error") if isinstance(body, dict) else None
        #: linkbox's error code (``NOT_FOUND``, ``INVALID_REQUEST``, ...), when it sent one.
        self.code: Optional[str] = error.get("code") if isinstance(error, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        super().__init__(f"{method} {path} answered {status}" + (f" {self.code}: {message}" if self.code else f": {body}"))


class VerificationError(AssertionError, LinkboxError):
    """``verify()`` found a different number of matching requests than expected; the message
    lists linkbox's closest near-misses."""

    def __init__(self, message: str, body: Any) -> None:
        super().__init__(message)
        #: linkbox's whole answer, near-misses included.
        self.body = body
