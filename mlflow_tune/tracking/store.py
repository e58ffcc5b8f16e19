"""The tracking store made ready once per process, before anything is written to it.

SQLite: MLflow creates a new database's schema on first use, with ~50 migrations, in whichever
process gets there first. Two first searches at once then race (`duplicate column name`,
`_alembic_tmp_tags already exists`), and a first search interrupted mid-migration leaves a
half-migrated file that MLflow refuses from then on. So the schema is created under an exclusive
lock on a sidecar file (`mlflow.db.lock`), into a temporary file renamed into place when complete:
the store is either absent or whole, never half-made.

HTTP: a server that does not answer is one line within seconds, not minutes of retries; MLflow's
own retries are bounded (unless the user set them) so a server lost mid-search stops the search.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import sqlite3
import threading
import urllib.error
import urllib.request
from pathlib import Path

from mlflow_tune import faults
from mlflow_tune.training.config import ConfigError

SERVER_CHECK_SECONDS = 3.0
# MLflow's defaults retry a failed request 7 times with a factor-2 backoff and a 120 s timeout:
# minutes per request. These keep one request under ~10 s against a refused connection.
HTTP_BOUNDS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
               "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
_ready: set[str] = set()
_lock = threading.Lock()


def prepare(uri: str) -> None:
    """Make the store at `uri` usable (once per process): create a new SQLite schema safely, or
    check that a tracking server answers."""
    with _lock:
        if uri in _ready:
            return
        if uri.startswith("sqlite:///"):
            _prepare_sqlite(Path(uri[len("sqlite:///"):]))
        elif uri.startswith(("http://", "https://")):
            _check_http(uri)
        _ready.add(uri)


def check_server(uri: str) -> None:
    """For a tracking server: `prepare` now (cheap: no MLflow import), before workers or runs start."""
    if uri.startswith(("http://", "https://")):
        prepare(uri)


def _check_http(uri: str) -> None:
    for key, value in HTTP_BOUNDS.items():
        os.environ.setdefault(key, value)
    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=SERVER_CHECK_SECONDS).close()
    except urllib.error.HTTPError:
        return   # it answered (an older server or a proxy without /health): reachable
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConfigError(f"tracking server {uri[:100]} does not answer ({reason}); start it "
                          f"(mlflow server) or set MLFLOW_TRACKING_URI / --tracking-uri.") from None


def _version(path: Path) -> str:
    """The schema revision recorded in the file ("" if none: new, empty or half-created)."""
    if not path.exists() or path.stat().st_size == 0:
        return ""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
            row = db.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        return ""
    return str(row[0]) if row else ""


def _has_runs(path: Path) -> bool:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
            return db.execute("SELECT 1 FROM runs LIMIT 1").fetchone() is not None
    except sqlite3.Error:
        return False


def _prepare_sqlite(path: Path) -> None:
    from mlflow.store.db.utils import _get_latest_schema_revision

    head = str(_get_latest_schema_revision())  # type: ignore[no-untyped-call]
    if _version(path) == head:   # the usual case: one read, no lock
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)   # released when the file closes (or the process dies)
        found = _version(path)
        if found == head:   # another process made it while we waited
            return
        if found and _has_runs(path):   # an older MLflow's store with runs: MLflow says what to do
            return
        _create(path)


class StoreUnusable(ConfigError):
    """The store cannot be made or written at all (a full disk, a read-only folder): one line, exit 1."""

    exit_code = 1


def _create(path: Path) -> None:
    """A new store, written beside `path` and renamed onto it once every migration is in."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    for left in path.parent.glob(f".{path.name}.creating-*"):   # a creation killed midway (we hold the lock)
        left.unlink(missing_ok=True)
    tmp = path.with_name(f".{path.name}.creating-{os.getpid()}")
    artifacts = path.parent.joinpath("mlartifacts").as_uri()
    try:
        store = SqlAlchemyStore(f"sqlite:///{tmp}", artifacts)  # type: ignore[no-untyped-call]
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        if cause := storage_error(exc):   # found by bench/chaos.py --moment disk on a 0.6 MB disk
            raise StoreUnusable(f"cannot create the tracking store {path}: {cause}; free space or give "
                                "another --tracking-uri / MLFLOW_TRACKING_URI") from None
        raise
    store.engine.dispose()
    faults.point("store-created")
    os.replace(tmp, path)


# What a store says when it cannot take a write, whoever raised it (SQLite, the OS for an artifact,
# a server relaying either): matched in the text because MLflow rewraps each into its own exception.
STORAGE_ERRORS = ("No space left on device", "database or disk is full", "Disk quota exceeded",
                  "Read-only file system", "attempt to write a readonly database", "Permission denied",
                  "Not a directory", "disk I/O error")


def storage_error(exc: BaseException) -> str:
    """The short cause when `exc` (or what it wraps) is the store refusing a write, else ""."""
    seen: BaseException | None = exc
    while seen is not None:
        text = f"{type(seen).__name__}: {seen}"
        for cause in STORAGE_ERRORS:
            if cause in text:
                errno = re.search(r"\[Errno \d+\] [^:'\n]+(?::\s*'[^']{0,120}')?", text)
                return errno.group(0) if errno and cause in errno.group(0) else cause
        seen = seen.__cause__ or seen.__context__
    return ""


def short_cause(exc: BaseException | str) -> str:
    """A failed write's cause in a few words, for one line: the storage error, the OS error of a
    lost connection, or the first line of the message."""
    if isinstance(exc, BaseException) and (refused := storage_error(exc)):
        return refused
    text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    if refused := storage_error(RuntimeError(text)):
        return refused
    found = re.search(r"\[Errno -?\d+\] [\w ]+", text) or re.search(r"timed out|Max retries exceeded", text)
    return found.group(0).strip() if found else (text.splitlines() or [""])[0][:100]
