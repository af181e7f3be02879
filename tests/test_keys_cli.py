"""flask keys upload / status / rotate against the loopback Graph API stand-in."""
from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from app import create_app
from flows import keys
from standins.graph import ACCESS_TOKEN, graph_error

PHONE_ID = "109876543210"


@pytest.fixture
def keys_app(app_config, graph):
    return create_app({**app_config, "WHATSAPP_API_BASE": graph.url, "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN,
                       "WHATSAPP_PHONE_NUMBER_ID": PHONE_ID})


def run(app, *args):
    return app.test_cli_runner().invoke(args=["keys", *args])


def test_upload_posts_the_public_key_form_encoded(keys_app, graph, keypair):
    result = run(keys_app, "upload")
    assert result.exit_code == 0, result.output
    [req] = graph.matching("POST", f"/{PHONE_ID}/whatsapp_business_encryption")
    assert req.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    form = parse_qs(req.body.decode())
    assert keys.fingerprint(form["business_public_key"][0]) == keys.fingerprint(keypair[1])
    assert keys.fingerprint(keypair[1]) in result.output
    assert "PRIVATE KEY" not in result.output and ACCESS_TOKEN not in result.output


def test_upload_a_given_file_and_reject_a_non_key(keys_app, graph, other_keypair, tmp_path):
    pub = tmp_path / "public.pem"
    pub.write_text(other_keypair[1])
    assert run(keys_app, "upload", "--public-key", str(pub)).exit_code == 0
    assert keys.fingerprint(graph.public_keys[PHONE_ID]) == keys.fingerprint(other_keypair[1])
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    result = run(keys_app, "upload", "--public-key", str(junk))
    assert result.exit_code == 1 and "not a PEM RSA public key" in result.output
    assert len(graph.matching("POST", "/whatsapp_business_encryption")) == 1


def test_status_reports_a_match_with_the_signature_status(keys_app, graph, keypair):
    graph.public_keys[PHONE_ID] = keypair[1]
    result = run(keys_app, "status")
    assert result.exit_code == 0, result.output
    assert "signature status:    VALID" in result.output
    assert f"sha256:{keys.fingerprint(keypair[1])}  MATCH" in result.output


def test_status_fails_on_a_key_this_app_cannot_decrypt(keys_app, graph, other_keypair):
    graph.public_keys[PHONE_ID] = other_keypair[1]
    result = run(keys_app, "status")
    assert result.exit_code == 1
    assert "MISMATCH" in result.output and "421" in result.output
    assert keys.fingerprint(other_keypair[1]) in result.output


def test_status_recognises_the_previous_key_during_a_rotation(app_config, graph, keypair, other_keypair):
    app = create_app({**app_config, "FLOW_PRIVATE_KEY": other_keypair[0],
                      "FLOW_PRIVATE_KEY_PREVIOUS": keypair[0],
                      "WHATSAPP_API_BASE": graph.url, "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN,
                      "WHATSAPP_PHONE_NUMBER_ID": PHONE_ID})
    graph.public_keys[PHONE_ID] = keypair[1]
    result = run(app, "status")
    assert result.exit_code == 0, result.output
    assert "still holds the previous key" in result.output


def test_status_with_nothing_registered(keys_app):
    result = run(keys_app, "status")
    assert result.exit_code == 1 and "no public key registered" in result.output


def test_graph_errors_are_explained_not_dumped(keys_app, graph):
    graph.fail_next(401, graph_error(190, "Invalid OAuth access token"))
    result = run(keys_app, "status")
    assert result.exit_code == 1
    assert "WHATSAPP_ACCESS_TOKEN is invalid or expired" in result.output
    assert "Traceback" not in result.output and ACCESS_TOKEN not in result.output


def test_missing_graph_settings_are_named(app):
    result = run(app, "upload")
    assert result.exit_code == 1
    assert "WHATSAPP_ACCESS_TOKEN and WHATSAPP_PHONE_NUMBER_ID" in result.output


def test_rotate_prints_heroku_changes_and_uploads_on_request(keys_app, graph, keypair, tmp_path):
    result = run(keys_app, "rotate", "--app", "flowgate-demo", "--out", str(tmp_path / "new"), "--upload")
    assert result.exit_code == 0, result.output
    new_private = (tmp_path / "new" / "private.pem").read_text()
    new_public = (tmp_path / "new" / "public.pem").read_text()
    assert (tmp_path / "new" / "private.pem").stat().st_mode & 0o777 == 0o600
    [set_line] = [line for line in result.output.splitlines() if line.startswith("heroku config:set")]
    # The current key moves to PREVIOUS on Heroku's side; the new one is set in one-line form.
    assert 'FLOW_PRIVATE_KEY_PREVIOUS="$(heroku config:get FLOW_PRIVATE_KEY --app flowgate-demo)"' in set_line
    assert f"FLOW_PRIVATE_KEY='{keys.one_line(new_private)}'" in set_line
    assert set_line.endswith("--app flowgate-demo")
    assert keypair[0].strip().splitlines()[1] not in result.output  # the old private key is never printed
    assert "heroku config:unset FLOW_PRIVATE_KEY_PREVIOUS" in result.output
    assert keys.fingerprint(graph.public_keys[PHONE_ID]) == keys.fingerprint(new_public)
    # The printed one-line key is what config.load() accepts and it matches the uploaded public key.
    import config
    loaded = config.load({"FLOW_PRIVATE_KEY": keys.one_line(new_private)})["FLOW_PRIVATE_KEY"]
    assert keys.fingerprint(keys.load_private_key(loaded)) == keys.fingerprint(new_public)


def test_rotate_without_upload_leaves_meta_alone(keys_app, graph):
    result = run(keys_app, "rotate")
    assert result.exit_code == 0, result.output
    assert "BEGIN PUBLIC KEY" in result.output
    assert graph.matching("POST", "/whatsapp_business_encryption") == []
