"""RSA key handling: load once, generate, fingerprint.

Parsing a PEM costs tens of milliseconds (pywa measured ~56 ms against ~3 ms for the decryption
itself), so a KeyRing is built once per process and never per request.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


class KeyConfigError(Exception):
    """A configured key cannot be used; the message says why, never what the key is."""


@dataclass(frozen=True)
class KeyRing:
    """The private key in use and, during a rotation, the one being retired."""

    current: rsa.RSAPrivateKey
    previous: rsa.RSAPrivateKey | None = None

    def candidates(self):
        yield "current", self.current
        if self.previous is not None:
            yield "previous", self.previous

    @property
    def public_pem(self) -> str:
        return public_pem(self.current)


def load_private_key(pem: str | bytes, passphrase: str | None = None) -> rsa.RSAPrivateKey:
    """PKCS#1 or PKCS#8, encrypted or not (traditional DES-EDE3 included)."""
    data = pem.encode() if isinstance(pem, str) else pem
    password = passphrase.encode() if passphrase else None
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except TypeError as exc:  # encrypted key without passphrase, or passphrase on a plain key
        raise KeyConfigError(f"passphrase mismatch: {exc}") from None
    except ValueError:
        raise KeyConfigError("not a PEM private key, or the passphrase is wrong") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyConfigError("the key is not an RSA key")
    if key.key_size != 2048:
        raise KeyConfigError(f"WhatsApp Flows needs RSA-2048, this key is {key.key_size} bits")
    return key


def load_public_key(pem: str | bytes) -> rsa.RSAPublicKey:
    data = pem.encode() if isinstance(pem, str) else pem
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyConfigError("the key is not an RSA public key")
    return key


def generate(passphrase: str | None = None) -> tuple[str, str]:
    """A new RSA-2048 pair as (private PEM, public PEM); the private one is PKCS#8."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    encryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    ).decode()
    return private, public_pem(key)


def public_pem(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> str:
    pub = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def fingerprint(key_or_pem) -> str:
    """SHA-256 over the DER public key: the same whichever PEM form the key was written in."""
    if isinstance(key_or_pem, (str, bytes)):
        key_or_pem = load_public_key(key_or_pem)
    pub = key_or_pem.public_key() if isinstance(key_or_pem, rsa.RSAPrivateKey) else key_or_pem
    der = pub.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def one_line(pem: str) -> str:
    """The form a Heroku config var takes: newlines written as \\n."""
    return pem.strip().replace("\n", "\\n")


def ensure_dev_pair(instance_dir: str | os.PathLike) -> tuple[Path, Path, bool]:
    """Create instance/dev_private.pem and dev_public.pem once; returns (private, public, created).

    Written to a temporary name and linked into place, so two processes starting together never
    read a half-written key or end up with different pairs.
    """
    folder = Path(instance_dir)
    folder.mkdir(parents=True, exist_ok=True)
    private_path, public_path = folder / "dev_private.pem", folder / "dev_public.pem"
    if private_path.exists() and public_path.exists():
        return private_path, public_path, False
    private, public = generate()
    tmp = folder / f".dev_private.{os.getpid()}.pem"
    tmp.write_text(private)
    os.chmod(tmp, 0o600)
    try:
        os.link(tmp, private_path)  # atomic: fails if another process won the race
        created = True
    except FileExistsError:
        created = False
    finally:
        tmp.unlink()
    if created or not public_path.exists():
        key = load_private_key(private_path.read_text())
        tmp_pub = folder / f".dev_public.{os.getpid()}.pem"
        tmp_pub.write_text(public_pem(key))
        os.replace(tmp_pub, public_path)
    return private_path, public_path, created
