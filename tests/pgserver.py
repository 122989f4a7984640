"""A throwaway, real PostgreSQL server for tests: initdb into a temp dir, run it, remove it afterwards.

PostgreSQL refuses to run as root, so when the tests run as root the server runs as the `postgres` OS user.
Set LOADPILOT_TEST_POSTGRES_URL to use an existing server instead (its user must be allowed to create
databases).
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

ENV_URL = "LOADPILOT_TEST_POSTGRES_URL"
START_TIMEOUT_S = 30.0


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server could be found or started for the tests."""


def find_bindir() -> Path:
    """The directory holding initdb and postgres: pg_config's bindir, else the newest /usr/lib/postgresql."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(Path(out.stdout.strip()))

    def version(path: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", Path(path).parent.name))

    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)]
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "postgres").is_file():
            return bindir
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, postgres) not found: looked in `pg_config --bindir`, "
        "/usr/lib/postgresql/*/bin and PATH. Install PostgreSQL (`make test` does) "
        f"or set {ENV_URL} to a server the tests may create databases on."
    )


def _run_as() -> dict[str, Any]:
    """subprocess arguments that drop root to the `postgres` user; nothing when not root."""
    if os.geteuid() != 0:
        return {}
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailable("running as root, and PostgreSQL refuses root: create a `postgres` user") from None
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def with_database(url: str, dbname: str) -> str:
    """The same server URL, naming another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


class PostgresServer:
    """A PostgreSQL server the tests may create and drop databases on; `url` names its admin database."""

    def __init__(self, url: str) -> None:
        self.url = url

    def create_database(self, prefix: str = "lp_test") -> str:
        """Create a fresh, empty database and return its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return with_database(self.url, name)

    def drop_database(self, url: str) -> None:
        """Drop a database made by `create_database`, disconnecting whoever is still in it."""
        name = urlsplit(url).path.lstrip("/")
        with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            raise PostgresUnavailable(f"postgres exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise PostgresUnavailable(
                    f"postgres did not accept connections within {START_TIMEOUT_S:.0f} s: {exc}\n"
                    f"{log.read_text()[-3000:]}"
                ) from exc
            time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Fast shutdown (SIGINT), then immediate (SIGQUIT), then SIGKILL."""
    for sig, wait_s in ((signal.SIGINT, 15.0), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


class _Started(PostgresServer):
    def __init__(self, url: str, process: subprocess.Popen[bytes]) -> None:
        super().__init__(url)
        self.process = process


def _start(bindir: Path, data: Path, tmp: Path, log: Path, run_as: dict[str, Any], durable: bool) -> _Started:
    """Run postgres on a free port (again if another process took it first); create the test database."""
    for attempt in range(3):
        port = _free_port()
        with log.open("wb") as log_file:
            proc = subprocess.Popen(
                [
                    str(bindir / "postgres"),
                    "-D",
                    str(data),
                    "-p",
                    str(port),
                    "-k",
                    str(tmp),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "max_connections=200",
                    *([] if durable else FAST_UNSAFE),
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=tmp,
                start_new_session=True,
                **run_as,
            )
        admin = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        try:
            _wait_ready(admin, proc, log)
        except PostgresUnavailable:
            _stop(proc)
            if attempt < 2 and "could not bind" in log.read_text():
                continue
            raise
        try:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute("CREATE DATABASE loadpilot_test")
        except BaseException:
            _stop(proc)
            raise
        return _Started(with_database(admin, "loadpilot_test"), proc)
    raise AssertionError("unreachable")


# Tests need no durability; benchmarks start the server with durable=True to be compared fairly.
FAST_UNSAFE = ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]


@contextmanager
def running_postgres(durable: bool = False) -> Iterator[PostgresServer]:
    """A PostgreSQL server for the block: LOADPILOT_TEST_POSTGRES_URL's, or a throwaway one."""
    external = os.environ.get(ENV_URL)
    if external:
        try:
            psycopg.connect(external, connect_timeout=10).close()
        except psycopg.Error as exc:
            raise PostgresUnavailable(f"{ENV_URL} names a server that cannot be reached: {exc}") from exc
        yield PostgresServer(external)
        return
    bindir = find_bindir()
    run_as = _run_as()
    tmp = Path(tempfile.mkdtemp(prefix="loadpilot-pg-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        if run_as:
            os.chown(tmp, run_as["user"], run_as["group"])
        data, log = tmp / "data", tmp / "postgres.log"
        init = subprocess.run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp,
            **run_as,
        )
        if init.returncode != 0:
            raise PostgresUnavailable(f"initdb failed ({init.returncode}):\n{init.stdout}\n{init.stderr}")
        server = _start(bindir, data, tmp, log, run_as, durable)
        proc = server.process
        yield server
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)
