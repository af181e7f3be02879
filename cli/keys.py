"""flask keys …: the RSA key pair's lifecycle."""
from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from flows import keys

keys_group = AppGroup("keys", help="Generate and inspect the Flow endpoint's RSA key pair.")


@keys_group.command("generate")
@click.option("--passphrase", default=None, help="Encrypt the private key with this passphrase.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Write private.pem and public.pem into this folder (mode 600 for the private key).")
def generate(passphrase, out_dir):
    """A new RSA-2048 pair: upload the public key to Meta, keep the private one secret."""
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
        click.echo("# Heroku config var (one line):")
        click.echo(f"FLOW_PRIVATE_KEY={keys.one_line(private)}")
    click.echo("# Public key to upload (flask keys upload, or the Graph API whatsapp_business_encryption):")
    click.echo(public, nl=False)
    click.echo(f"# fingerprint sha256:{keys.fingerprint(public)}")
