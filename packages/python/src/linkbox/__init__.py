"""linkbox from Python: :class:`Sandbox` starts the ``linkbox`` binary this wheel installs on
a free loopback port and stops it when the ``with`` block ends; its methods wrap the control
API under ``/_sandbox``. The pytest plugin (:mod:`linkbox.pytest_plugin`) provides the
``linkbox`` and ``linkbox_tenant`` fixtures. Standard library only."""

from __future__ import annotations

from ._errors import ControlError, LinkboxError, StartError, VerificationError
from ._process import find_binary, is_running
from ._sandbox import Sandbox, Tenant, new_m2m_key

__all__ = [
    "ControlError",
    "LinkboxError",
    "Sandbox",
    "StartError",
    "Tenant",
    "VerificationError",
    "__version__",
    "find_binary",
    "is_running",
    "new_m2m_key",
]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("linkbox")
    except PackageNotFoundError:
        return "0+unknown"


#: The package's version, which is linkbox's (the workspace version it was built from).
__version__ = _version()
