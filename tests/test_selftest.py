"""flask endpoint selftest: against real gunicorn, and against the classic misconfigurations."""
from __future__ import annotations

import socket

import pytest

from app import create_app
from conftest import APP_SECRET, LiveServer, free_port, served_settings
from flows import keys
from devtools import selftest
from standins.graph import ACCESS_TOKEN, GraphStandIn
from procs import Gunicorn


def selftest_cli(app, *args):
    return app.test_cli_runner().invoke(args=["endpoint", "selftest", *args])


def test_selftest_passes_against_gunicorn(app, redis_url, keypair):
    with Gunicorn(APP_ENV="production", REDIS_URL=redis_url, WEB_CONCURRENCY=1,
                  FLOW_PRIVATE_KEY=keys.one_line(keypair[0]), WHATSAPP_APP_SECRET=APP_SECRET,
                  **served_settings()) as server:
        result = selftest_cli(app, f"{server.url}/flows/member_check", "--requests", "8")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "(flow member_check)" in out
    assert "the endpoint decrypted our request" in out
    assert 'ping answered {"data": {"status": "active"}}' in out
    assert "a wrongly signed request gets 432" in out
    assert "INIT opens MEMBER_LOOKUP" in out
    assert "over 9 requests" in out and "p90" in out  # 8 pings + INIT
    assert out.rstrip().endswith("Result: OK")


def test_wrong_key_explains_421_and_compares_with_the_registered_key(app_config, live_server, keypair,
                                                                     other_keypair, tmp_path):
    wrong = tmp_path / "wrong_public.pem"
    wrong.write_text(other_keypair[1])
    with GraphStandIn() as graph:
        graph.public_keys["555"] = keypair[1]  # Meta holds the right key; we test with a stale one
        cli_app = create_app({**app_config, "WHATSAPP_API_BASE": graph.url,
                              "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN, "WHATSAPP_PHONE_NUMBER_ID": "555"})
        result = selftest_cli(cli_app, f"{live_server.url}/flows/member_check", "--public-key", str(wrong))
    assert result.exit_code == 1
    out = " ".join(result.output.split())
    assert "421: the endpoint could not decrypt the request" in out
    assert f"sha256:{keys.fingerprint(other_keypair[1])[:16]}" in out
    assert f"registered at Meta: sha256:{keys.fingerprint(keypair[1])[:16]}" in out
    assert "(different keys)" in out and "flask keys status" in out
    assert out.endswith("Result: FAILED")


def test_wrong_app_secret_explains_432(app, live_server):
    result = selftest_cli(app, f"{live_server.url}/flows/member_check", "--app-secret", "not-the-secret")
    assert result.exit_code == 1
    out = " ".join(result.output.split())
    assert "432: the endpoint rejected the request signature" in out
    assert "WHATSAPP_APP_SECRET" in out and "not-the-secret" not in out


def test_an_endpoint_that_ignores_signatures_is_caught(app_config):
    lax = create_app({**app_config, "APP_ENV": "development", "WHATSAPP_APP_SECRET": None,
                      "WHATSAPP_APP_SECRET_PREVIOUS": None})
    with LiveServer(lax) as server:
        report = selftest.run(f"{server.url}/flows/member_check", lax.extensions["keyring"].public_pem,
                              APP_SECRET, count=2)
    forged = next(c for c in report.checks if c.name == "signature-check")
    assert forged.ok is False and "got 200, not 432" in forged.summary
    assert not report.ok


def test_unknown_flow_path_is_a_404_explanation(app, live_server):
    result = selftest_cli(app, f"{live_server.url}/flows/nope")
    assert result.exit_code == 1 and "404: no Flow endpoint at this URL" in result.output


def test_closed_port_is_connection_refused(app):
    result = selftest_cli(app, f"http://127.0.0.1:{free_port()}/flows/member_check")
    assert result.exit_code == 1
    assert "connection refused: nothing listens" in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_tls_to_a_plain_http_port_is_a_tls_error(app, live_server):
    result = selftest_cli(app, f"https://127.0.0.1:{live_server.port}/flows/member_check")
    assert result.exit_code == 1
    assert "TLS handshake failed" in result.output


def test_an_endpoint_that_never_answers_is_a_timeout(app):
    # A listening socket that is never accepted: the TCP handshake completes, no reply ever comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        result = selftest_cli(app, f"http://127.0.0.1:{port}/flows/member_check", "--timeout", "0.5")
    assert result.exit_code == 1
    assert "no answer within 0.5 s" in result.output and "Meta waits at most 10 s" in result.output


@pytest.mark.parametrize("p90, alert", [(0.2, None), (0.999, None), (1.0, 1.0), (5.5, 5.0), (7.5, 7.0)])
def test_latency_alert_levels_are_metas(p90, alert):
    assert selftest.latency_alert(p90) == alert


def test_p90_is_nearest_rank():
    report = selftest.Report("x", latencies=[0.01] * 9 + [3.0])
    assert report.percentile(0.9) == 0.01 and report.percentile(1.0) == 3.0 and report.percentile(0.5) == 0.01
