"""The endpoint's secrets: the RSA key ring and the app-secret verifier, built once at start.

Production refuses to start without them; development generates a key pair under instance/ and
skips the signature check with a warning, so ``make run`` needs no configuration.
"""
from __future__ import annotations

import logging
from pathlib import Path

from config import is_development
from flows import keys
from flows.signing import Verifier

log = logging.getLogger("flowgate.security")


class ConfigurationError(RuntimeError):
    """The app cannot serve safely with this configuration."""


def _private_pem(cfg) -> str | None:
    if cfg["FLOW_PRIVATE_KEY"]:
        return cfg["FLOW_PRIVATE_KEY"]
    if cfg["FLOW_PRIVATE_KEY_PATH"]:
        return Path(cfg["FLOW_PRIVATE_KEY_PATH"]).read_text()
    return None


def build_keyring(cfg) -> keys.KeyRing:
    pem = _private_pem(cfg)
    if pem is None:
        if not is_development(cfg):
            raise ConfigurationError(
                "no private key: set FLOW_PRIVATE_KEY or FLOW_PRIVATE_KEY_PATH (flask keys generate)"
            )
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
        raise ConfigurationError(f"private key unusable: {exc}") from None
    return keys.KeyRing(current=current, previous=previous)


def init_app(app) -> None:
    cfg = app.config
    app.extensions["keyring"] = build_keyring(cfg)
    verifier = Verifier(cfg["WHATSAPP_APP_SECRET"], cfg["WHATSAPP_APP_SECRET_PREVIOUS"])
    if not verifier.enabled:
        if not is_development(cfg):
            raise ConfigurationError("WHATSAPP_APP_SECRET is not set: requests could not be verified")
        log.warning("WHATSAPP_APP_SECRET not set: request signatures are NOT checked (development)")
    app.extensions["verifier"] = verifier
