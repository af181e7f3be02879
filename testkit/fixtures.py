"""pytest fixtures of the test kit: import them into a test module (or a conftest.py)."""
from __future__ import annotations

import pytest

from testkit.business_api import BusinessAPI
from testkit.server import FlowgateServer, RedisProcess


@pytest.fixture(scope="session")
def flowgate_redis():
    """One real redis-server for the session."""
    server = RedisProcess().start()
    yield server
    server.stop()


@pytest.fixture
def business_api():
    """The business's own API, played on loopback: fill ``business_api.records[resource]``."""
    api = BusinessAPI().start()
    yield api
    api.stop()


@pytest.fixture
def flowgate(flowgate_redis):
    """``flowgate(**settings)`` starts the app serving your flows (FLOWS_PACKAGE) on a clean
    Redis and returns it running; it stops after the test."""
    started = []

    def start(**settings) -> FlowgateServer:
        import redis as redis_lib

        redis_lib.Redis.from_url(flowgate_redis.url).flushdb()
        server = FlowgateServer(flowgate_redis.url, **settings).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
