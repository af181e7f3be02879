"""The app's secrets: the RSA key ring, the app-secret verifier and SECRET_KEY, built once at start.

Production refuses to start without them; development generates a key pair and a SECRET_KEY under
instance/ and skips the signature check with a warning, so ``make run`` needs no configuration.
"""
from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from config import ConfigError, is_development
from flows import keys
from flows.signing import Verifier

log = logging.getLogger("flowgate.security")


ConfigurationError = ConfigError  # the name this module used to raise


def _private_pem(cfg) -> str | None:
    if cfg["FLOW_PRIVATE_KEY"]:
        return cfg["FLOW_PRIVATE_KEY"]
    if cfg["FLOW_PRIVATE_KEY_PATH"]:
        try:
            return Path(cfg["FLOW_PRIVATE_KEY_PATH"]).read_text()
        except OSError as exc:
            raise ConfigError(f"FLOW_PRIVATE_KEY_PATH cannot be read: {exc.strerror} "
                              "(point it at a PEM file, or set FLOW_PRIVATE_KEY instead)") from None
    return None


def build_keyring(cfg) -> keys.KeyRing:
    pem = _private_pem(cfg)
    if pem is None:
        if not is_development(cfg):
            raise ConfigError("no private key: FLOW_PRIVATE_KEY is not set (flask keys generate makes a "
                              "pair and prints the line to paste; or set FLOW_PRIVATE_KEY_PATH)")
        private_path, public_path, created = keys.ensure_dev_pair(cfg["INSTANCE_DIR"])
        if created:
            log.warning("generated a development key pair; public key: %s", public_path)
        pem = private_path.read_text()
        cfg["FLOW_PRIVATE_KEY_PATH"] = str(private_path)
    try:
        current = keys.load_private_key(pem, cfg["FLOW_PRIVATE_KEY_PASSPHRASE"])
        previous = None
        if cfg["FLOW_PRIVATE_KEY_PREVIOUS"]:
            previous = keys.load_private_key(
                cfg["FLOW_PRIVATE_KEY_PREVIOUS"], cfg["FLOW_PRIVATE_KEY_PREVIOUS_PASSPHRASE"]
            )
    except keys.KeyConfigError as exc:
        raise ConfigError(f"private key unusable: {exc} (check the PEM text and "
                          "FLOW_PRIVATE_KEY_PASSPHRASE; flask keys generate prints a valid one)") from None
    return keys.KeyRing(current=current, previous=previous)


def keyring(app) -> keys.KeyRing:
    """This app's key ring, built on first use: the offline commands (flask flows simulate,
    endpoint selftest) ask for it only when no --public-key was given."""
    if "keyring" not in app.extensions:
        app.extensions["keyring"] = build_keyring(app.config)
    return app.extensions["keyring"]


def secret_key(cfg) -> str:
    """SECRET_KEY signs the dashboard's session cookie and, derived, the media links: never the
    Flow key, so rotating that key logs nobody out and breaks no link already sent."""
    if cfg["SECRET_KEY"]:
        return cfg["SECRET_KEY"]
    if not is_development(cfg):
        raise ConfigError("SECRET_KEY is not set (it signs dashboard sessions and media links: "
                          "heroku config:set SECRET_KEY=$(openssl rand -hex 32))")
    path = Path(cfg["INSTANCE_DIR"]) / "secret_key"
    if not path.exists():
        # Written under a temporary name and linked into place: processes starting together agree.
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".secret_key.{os.getpid()}")
        tmp.write_text(secrets.token_hex(32))
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


def init_app(app) -> None:
    cfg = app.config
    keyring(app)
    verifier = Verifier(cfg["WHATSAPP_APP_SECRET"], cfg["WHATSAPP_APP_SECRET_PREVIOUS"])
    if not verifier.enabled:
        if not is_development(cfg):
            raise ConfigError("WHATSAPP_APP_SECRET is not set: requests could not be verified "
                              "(copy the app secret from Meta's App settings > Basic)")
        log.warning("WHATSAPP_APP_SECRET not set: request signatures are NOT checked (development)")
    app.extensions["verifier"] = verifier
    cfg["SECRET_KEY"] = secret_key(cfg)
