"""Real servers for tests and benchmarks: PostgreSQL in a temporary data directory, `mlflow server` over HTTP.

PostgreSQL refuses to run as root (CI's user), so as root it runs as `nobody` in a directory
that user owns. Both listen on loopback only, on free ports, and are stopped by their PID.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postgres_bin(name: str) -> str | None:
    """A PostgreSQL program: on PATH, or where Debian's `postgresql` package puts it."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


@dataclass
class Postgres:
    folder: Path
    port: int
    process: subprocess.Popen[bytes]

    def uri(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        return self.uri(name)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)   # "fast" shutdown
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def start_postgres() -> Postgres:
    """PostgreSQL in a new temporary directory (directly under /tmp: `nobody` cannot enter pytest's)."""
    initdb, postgres = postgres_bin("initdb"), postgres_bin("postgres")
    if initdb is None or postgres is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="mlflow-tune-postgres-"))
    user = None
    if os.geteuid() == 0:
        shutil.chown(folder, "nobody")
        user = "nobody"
    data = folder / "data"
    subprocess.run([initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
                   check=True, capture_output=True, user=user)
    port = free_port()
    log = open(folder / "postgres.log", "wb")   # noqa: SIM115 - the server's whole life
    process = subprocess.Popen([postgres, "-D", str(data), "-h", "127.0.0.1", "-p", str(port),
                                "-k", str(folder), "-F"], stdout=log, stderr=subprocess.STDOUT, user=user)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return Postgres(folder, port, process)
        except OSError:
            if process.poll() is not None:
                raise RuntimeError((folder / "postgres.log").read_text()[-2000:]) from None
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("postgres did not start in 60 s")


@dataclass
class MlflowServer:
    """`mlflow server` on loopback, artifacts served through it; restartable on the same port."""

    folder: Path
    backend_store_uri: str
    port: int = field(default_factory=free_port)
    app_name: str = ""
    workers: int = 1                # uvicorn processes: each imports MLflow at start (seconds)
    serve_artifacts: bool = True    # off: the runs' own artifact locations, as `mlflow ui` reads them
    env: Mapping[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120) -> MlflowServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port),
                "--backend-store-uri", self.backend_store_uri, "--workers", str(self.workers)]
        if self.serve_artifacts:
            args += ["--serve-artifacts", "--artifacts-destination", str(self.folder / "artifacts")]
        if self.app_name:
            args += ["--app-name", self.app_name]
        log = open(self.folder / "server.log", "ab")   # noqa: SIM115 - the server's whole life
        # Its own process group: stopping it stops its uvicorn workers too.
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                        env={**os.environ, **self.env}, cwd=self.folder)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.uri + "/health", timeout=2) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError((self.folder / "server.log").read_text()[-3000:]) from None
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"mlflow server did not answer in {timeout} s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
