"""Milvus Lite for the milvus store: the Milvus server's C++ engine as a child process serving one
`.db` file, started on first use and stopped when the last store of this process using that file
closes. Also the error every Milvus failure becomes, and keeping pymilvus's and Lite's own logging
off stderr (pakus reports each failure itself, in one line)."""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path

from ..errors import ConfigError, PakusError

ENV_URI = "PAKUS_MILVUS_URI"


class MilvusError(PakusError):
    """Milvus cannot be reached, or refused a request."""


def lite_path(folder: Path, uri: str) -> Path:
    """The Milvus Lite file a path URI names (relative to the collection's folder), checked
    against what Milvus Lite accepts."""
    path = Path(os.path.expanduser(uri))
    path = path if path.is_absolute() else folder / path
    if path.suffix != ".db":
        raise ConfigError(f"Milvus URI {uri!r}: use http://host:port for a server, or a file name ending in .db for Milvus Lite")
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,35}", path.name):
        raise ConfigError(f"Milvus Lite file name {path.name!r}: use at most 35 letters, digits, '.', '_' or '-'")
    return path


def quiet_logging() -> None:
    """pymilvus logs every failed call to stderr through its own handlers, and milvus-lite logs
    through the root logger; pakus reports every failure itself, in one line."""
    for name in ("pymilvus", "pymilvus.milvus_client", "pymilvus.decorators"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    root = logging.getLogger()
    if not any(isinstance(f, _LiteLogFilter) for f in root.filters):
        root.addFilter(_LiteLogFilter())


class _LiteLogFilter(logging.Filter):
    """Keeps milvus-lite's messages (it logs on the root logger) out of stderr; the last one is
    kept for the error pakus raises."""

    last = ""

    def filter(self, record: logging.LogRecord) -> bool:
        if "milvus_lite" in (record.pathname or ""):
            _LiteLogFilter.last = record.getMessage()
            return False
        return True


def _import_milvus_lite():
    """milvus-lite 2.5 imports `pkg_resources` for its version string only; setuptools 81+ no longer
    has it. A stand-in is present for that one import, then removed."""
    import sys
    import types

    try:
        import milvus_lite.server_manager as manager
        return manager
    except ModuleNotFoundError as exc:
        if exc.name != "pkg_resources":
            raise ConfigError("a Milvus Lite file needs the milvus-lite package: pip install 'pakus[milvus]' "
                              f"(or set {ENV_URI} to a Milvus server, http://host:19530)") from None
    from importlib.metadata import PackageNotFoundError, version

    stand_in = types.ModuleType("pkg_resources")
    stand_in.DistributionNotFound = PackageNotFoundError
    stand_in.get_distribution = lambda name: types.SimpleNamespace(version=version(name))
    sys.modules["pkg_resources"] = stand_in
    try:
        for name in [n for n in sys.modules if n == "milvus_lite" or n.startswith("milvus_lite.")]:
            del sys.modules[name]
        import milvus_lite.server_manager as manager
        return manager
    finally:
        if sys.modules.get("pkg_resources") is stand_in:
            del sys.modules["pkg_resources"]


# --- Milvus Lite child processes, one per file, shared by the stores of this process -------------

_lock = threading.Lock()
lite_users: dict[str, int] = {}


def lite_start(path: Path) -> str:
    """Start (or share) the Milvus Lite process serving `path`; returns its socket URI."""
    manager = _import_milvus_lite()
    key = str(path.resolve())
    with _lock:
        _LiteLogFilter.last = ""
        address = manager.server_manager_instance.start_and_get_uri(key)
        if address is None:
            why = _LiteLogFilter.last
            if "opened by another program" in why:
                raise MilvusError(f"Milvus Lite file {path} is open in another process (Milvus Lite serves one process at a "
                                  "time); wait for it to finish, or use a Milvus server (PAKUS_MILVUS_URI=http://host:19530)")
            raise MilvusError(f"cannot start Milvus Lite on {path}" + (f" ({why})" if why else ""))
        lite_users[key] = lite_users.get(key, 0) + 1
        return address


def lite_stop(path: Path) -> None:
    """One store of this process is done with `path`; the last one stops its process."""
    manager = _import_milvus_lite()
    key = str(path.resolve())
    with _lock:
        lite_users[key] = lite_users.get(key, 1) - 1
        if lite_users[key] <= 0:
            del lite_users[key]
            manager.server_manager_instance.release_server(key)
