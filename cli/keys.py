"""flask keys …: the RSA key pair's lifecycle."""
from __future__ import annotations

import shlex
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from cli import offline
from flows import keys
from messaging import business_key
from messaging.graph import GraphError, explain

keys_group = AppGroup("keys",
                      help="The Flow endpoint's RSA key pair: generate, upload to Meta, status, rotate.")


@keys_group.command("generate")
@click.option("--passphrase", default=None, help="Encrypt the private key with this passphrase.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Write private.pem and public.pem into this folder (mode 600 for the private key).")
@click.option("--app", "heroku_app", default=None, help="Heroku app name for the printed command.")
@offline
def generate(passphrase, out_dir, heroku_app):
    """A new RSA-2048 pair: upload the public key to Meta, keep the private one secret.

    Needs no configuration: run it anywhere (it reads and writes nothing but --out)."""
    private, public = keys.generate(passphrase)
    if out_dir:
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        priv_path = folder / "private.pem"
        priv_path.write_text(private)
        priv_path.chmod(0o600)
        (folder / "public.pem").write_text(public)
        click.echo(f"private key: {priv_path}")
        click.echo(f"public key:  {folder / 'public.pem'}")
    else:
        # One line with literal \n escapes (config.py turns them back into newlines), quoted so
        # it pastes whole: into a .env file or a shell (double quotes keep \n as it is)...
        click.echo("# The private key as one config var (keep it secret), for a .env file or `export`:")
        click.echo(f'FLOW_PRIVATE_KEY="{keys.one_line(private)}"')
        if passphrase:
            click.echo(f"FLOW_PRIVATE_KEY_PASSPHRASE={shlex.quote(passphrase)}")
        # ...or straight into Heroku (single quotes: nothing in it is expanded).
        settings = [f"FLOW_PRIVATE_KEY='{keys.one_line(private)}'"]
        if passphrase:
            settings.append(f"FLOW_PRIVATE_KEY_PASSPHRASE={shlex.quote(passphrase)}")
        click.echo("# or set it on Heroku:")
        click.echo(f"heroku config:set {' '.join(settings)}" + (f" --app {heroku_app}" if heroku_app else ""))
    click.echo("# Public key to upload (flask keys upload, or the Graph API whatsapp_business_encryption):")
    click.echo(public, nl=False)
    click.echo(f"# fingerprint sha256:{keys.fingerprint(public)}")


# --- the key registered with Meta: upload, status, rotate ----------------------------------------


def _graph_target():
    cfg = current_app.config
    missing = [n for n in ("WHATSAPP_ACCESS_TOKEN", "WHATSAPP_PHONE_NUMBER_ID") if not cfg[n]]
    if missing:
        raise click.ClickException(f"set {' and '.join(missing)} to reach the Graph API")
    return current_app.extensions["graph"], cfg["WHATSAPP_PHONE_NUMBER_ID"]


def _read_public(path: str | None) -> str:
    pem = Path(path).read_text() if path else current_app.extensions["keyring"].public_pem
    try:
        keys.load_public_key(pem)
    except (ValueError, keys.KeyConfigError):
        raise click.ClickException(f"{path} is not a PEM RSA public key") from None
    return pem


def _upload(pem: str) -> None:
    graph, phone = _graph_target()
    try:
        business_key.upload(graph, phone, pem)
    except GraphError as exc:
        raise click.ClickException(explain(exc)) from None
    click.echo(f"uploaded public key sha256:{keys.fingerprint(pem)} for phone number id {phone}")


@keys_group.command("upload")
@click.option("--public-key", "public_key_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="PEM public key to register (default: the public half of this app's FLOW_PRIVATE_KEY).")
def upload(public_key_path):
    """Register the public key with Meta for WHATSAPP_PHONE_NUMBER_ID (repeat for every number)."""
    _upload(_read_public(public_key_path))


@keys_group.command("status")
def status():
    """Compare the key Meta holds with this app's keys; exit 1 when Meta's key cannot be decrypted here."""
    graph, phone = _graph_target()
    try:
        reg = business_key.registered(graph, phone)
    except GraphError as exc:
        raise click.ClickException(explain(exc)) from None
    if reg.public_key is None:
        click.echo(f"no public key registered for phone number id {phone}: run flask keys upload")
        raise SystemExit(1)
    ring = current_app.extensions["keyring"]
    try:
        registered_fp = keys.fingerprint(reg.public_key)
        match = business_key.which_local(reg, ring)
    except (ValueError, keys.KeyConfigError):
        raise click.ClickException("Meta returned a business_public_key that is not a PEM RSA key") from None
    click.echo(f"registered at Meta:  sha256:{registered_fp}")
    click.echo(f"signature status:    {reg.signature_status or 'unknown'}")
    for name, key in ring.candidates():
        fp = keys.fingerprint(key)
        click.echo(f"local {name + ' key:':14} sha256:{fp}  {'MATCH' if name == match else 'differs'}")
    failed = False
    if match == "current":
        click.echo("Meta encrypts with this app's current key.")
    elif match == "previous":
        click.echo("Meta still holds the previous key: requests decrypt, but finish the rotation "
                   "with flask keys upload.")
    else:
        click.echo("MISMATCH: Meta encrypts with a key this app does not hold; every request will get 421. "
                   "Upload this app's key (flask keys upload) or configure the matching FLOW_PRIVATE_KEY.")
        failed = True
    if reg.signature_status and reg.signature_status != "VALID":
        click.echo(f"signature status {reg.signature_status}: re-upload the key (flask keys upload).")
        failed = True
    if failed:
        raise SystemExit(1)


@keys_group.command("rotate")
@click.option("--passphrase", default=None, help="Encrypt the new private key with this passphrase.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Also write the new private.pem (mode 600) and public.pem into this folder.")
@click.option("--app", "heroku_app", default=None, help="Heroku app name for the printed commands.")
@click.option("--upload", "do_upload", is_flag=True,
              help="Upload the new public key now (only once the new FLOW_PRIVATE_KEY is live).")
def rotate(passphrase, out_dir, heroku_app, do_upload):
    """A new pair; the current key becomes FLOW_PRIVATE_KEY_PREVIOUS. Prints the Heroku config changes."""
    private, public = keys.generate(passphrase)
    app_flag = f" --app {heroku_app}" if heroku_app else ""
    current = current_app.extensions["keyring"].current
    click.echo(f"# new key sha256:{keys.fingerprint(public)}; this app's current key "
               f"sha256:{keys.fingerprint(current)} becomes the previous one")
    if out_dir:
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "private.pem").write_text(private)
        (folder / "private.pem").chmod(0o600)
        (folder / "public.pem").write_text(public)
        click.echo(f"# written: {folder / 'private.pem'} (keep it secret), {folder / 'public.pem'}")
    # The old key is copied on Heroku's side, so it is never printed here.
    settings = [f'FLOW_PRIVATE_KEY_PREVIOUS="$(heroku config:get FLOW_PRIVATE_KEY{app_flag})"']
    if current_app.config["FLOW_PRIVATE_KEY_PASSPHRASE"]:
        settings.append('FLOW_PRIVATE_KEY_PREVIOUS_PASSPHRASE="$(heroku config:get '
                        f'FLOW_PRIVATE_KEY_PASSPHRASE{app_flag})"')
    settings.append(f"FLOW_PRIVATE_KEY='{keys.one_line(private)}'")
    if passphrase:
        settings.append(f"FLOW_PRIVATE_KEY_PASSPHRASE='{passphrase}'")
    click.echo("# 1. Install the new key, keeping the current one as the "
               "previous (one release, no downtime):")
    click.echo(f"heroku config:set {' '.join(settings)}{app_flag}")
    if current_app.config["FLOW_PRIVATE_KEY_PASSPHRASE"] and not passphrase:
        click.echo(f"heroku config:unset FLOW_PRIVATE_KEY_PASSPHRASE{app_flag}")
    click.echo("# 2. Then register the new public key with Meta (flask keys upload --public-key FILE):")
    click.echo(public, nl=False)
    click.echo("# 3. When flask keys status shows the new key and traffic is healthy, retire the old one:")
    click.echo("heroku config:unset FLOW_PRIVATE_KEY_PREVIOUS "
               f"FLOW_PRIVATE_KEY_PREVIOUS_PASSPHRASE{app_flag}")
    if do_upload:
        _upload(public)
