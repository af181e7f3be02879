"""A real PostgreSQL cluster of the tests' own: ``initdb`` in a temporary folder, a free port, its
unix socket in that folder, stopped (and restarted, for the fault tests) by the tests. Nothing
here relies on a server already running on the machine; CI installs the binaries (``.ci/run``).

PostgreSQL refuses to run as root: as root, the cluster runs as the ``postgres`` user that the
distribution's package creates.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

from support import free_port, wait_for


def binaries() -> Path | None:
    """The folder holding initdb and pg_ctl: on PATH, else Debian's /usr/lib/postgresql/<v>/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    def version(path: str) -> int:
        name = Path(path).parent.parent.name
        return int(name) if name.isdigit() else 0

    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    return Path(versions[-1]).parent if versions else None


class PostgresCluster:
    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="flowgate-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
        self.databases = 0

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([*self.as_user, str(self.bindir / tool), *args], capture_output=True, text=True,
                              check=check, timeout=60)

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.root} -c listen_addresses='' -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "server.log"),
                  "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@/{database}?host={self.root}&port={self.port}"

    def create_database(self) -> str:
        """A fresh, empty database; its URL (Heroku's form would be postgres://; both work)."""
        import psycopg

        self.databases += 1
        name = f"flowgate_{self.databases}"
        with psycopg.connect(host=str(self.root), port=self.port, user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def accepting(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(host=str(self.root), port=self.port, user="postgres", dbname="postgres",
                                 connect_timeout=1):
                return True
        except psycopg.OperationalError:
            return False

    def wait_up(self) -> None:
        wait_for(self.accepting, timeout=30, message="PostgreSQL to accept connections")

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def started_cluster():
    """A cluster started for the ``with`` block and destroyed after it; the test is skipped, with
    the fix, on a machine without the binaries."""
    import pytest

    bindir = binaries()
    if bindir is None:
        pytest.skip("no PostgreSQL binaries (initdb, pg_ctl): apt-get install postgresql, as .ci/run does")
    cluster = PostgresCluster(bindir)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()
