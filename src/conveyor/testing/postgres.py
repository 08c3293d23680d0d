"""A throwaway PostgreSQL server for tests and benchmarks.

Runs the `initdb`, `pg_ctl` and `postgres` binaries found on PATH (or in
/usr/lib/postgresql/*/bin) in a temporary folder, listening on 127.0.0.1 at
a free port and on a unix socket in that folder. `initdb` refuses to run as
root, so as root the server runs as the `postgres` system user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg

INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found on PATH. "
    "Install them, e.g. `apt-get install -y postgresql` on Debian, "
    "or put their folder (such as /usr/lib/postgresql/15/bin) on PATH."
)


def find_binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if candidates:
        return candidates[0]
    raise RuntimeError(INSTALL_HINT)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    def __init__(self, *, durable: bool = False) -> None:
        """`durable=False` turns fsync off: fine for tests, not for measuring commits."""
        self.durable = durable
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="conveyor-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self._user: str | None = None
        self._bins = {name: find_binary(name) for name in ("initdb", "pg_ctl", "postgres")}

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            list(args), user=self._user, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args[:2])} failed ({result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}"
            )

    def start(self) -> PostgresServer:
        if os.geteuid() == 0:
            self._user = "postgres"
            entry = pwd.getpwnam("postgres")
            os.chmod(self.dir, 0o755)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        self._run(
            self._bins["initdb"],
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C",
        )
        return self.resume()

    def resume(self) -> PostgresServer:
        """Start the initialised server (again, after `halt`); returns once it accepts queries."""
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-k {self.dir}",
            "-c max_connections=200",
            "-c shared_buffers=128MB",
        ]
        if not self.durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self._run(
            self._bins["pg_ctl"],
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            " ".join(options),
            "-w",
            "-t",
            "60",
            "start",
        )
        return self

    def halt(self, mode: str = "fast") -> None:
        """Stop the server, keeping its data (`pg_ctl stop -m mode`), to `resume` it later."""
        self._run(self._bins["pg_ctl"], "-D", str(self.data), "-m", mode, "-w", "stop")

    def stop(self) -> None:
        if self.data.exists():
            subprocess.run(
                [self._bins["pg_ctl"], "-D", str(self.data), "-m", "fast", "-w", "stop"],
                user=self._user,
                capture_output=True,
                check=False,
            )
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        )

    def create_database(self, name: str, template: str | None = None) -> str:
        with self._admin() as conn:
            suffix = f" TEMPLATE {template}" if template else ""
            conn.execute(f'CREATE DATABASE "{name}"{suffix}')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
