"""Local certificate authority and the server certificate for 127.0.0.1 / localhost.

The CA is created once per directory (ca.pem + ca-key.pem, key mode 0600) and reused, so a
client that trusts ca.pem keeps trusting restarted sandboxes. The server certificate is
re-issued when missing or close to expiry.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True, slots=True)
class TlsFiles:
    ca_file: Path
    cert_file: Path
    key_file: Path


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())  # fmt: skip


def ensure_certificates(directory: str | os.PathLike[str]) -> TlsFiles:
    """Create (or reuse) the CA and a server certificate in `directory`. Several sandboxes
    starting at once share one CA: creation happens under an exclusive file lock."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    with open(d / ".lock", "a+b") as lock_file:
        try:
            import fcntl

            fcntl.flock(lock_file, fcntl.LOCK_EX)
        except ImportError:  # Windows: no flock; concurrent first starts are unlikely there
            pass
        return _ensure(d)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _ensure(d: Path) -> TlsFiles:
    ca_file, ca_key_file = d / "ca.pem", d / "ca-key.pem"
    cert_file, key_file = d / "server.pem", d / "server-key.pem"
    now = dt.datetime.now(dt.UTC)
    if ca_file.exists() and ca_key_file.exists():
        ca_cert = x509.load_pem_x509_certificate(ca_file.read_bytes())
        ca_key = serialization.load_pem_private_key(ca_key_file.read_bytes(), None)
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "lc-console sandbox"),
            x509.NameAttribute(NameOID.COMMON_NAME, "lc-console sandbox local CA"),
        ])  # fmt: skip
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)  # fmt: skip
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        _write_private(ca_key_file, _key_pem(ca_key))
        _write_public(ca_file, ca_cert.public_bytes(serialization.Encoding.PEM))
    fresh = False
    if cert_file.exists() and key_file.exists():
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        fresh = (cert.not_valid_after_utc - now > dt.timedelta(days=7)
                 and cert.issuer == ca_cert.subject)  # fmt: skip
    if not fresh:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=397))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
            ]), critical=False)  # fmt: skip
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),  # type: ignore[arg-type]
                           critical=False)  # fmt: skip
            .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
        )
        _write_private(key_file, _key_pem(key))
        _write_public(cert_file, cert.public_bytes(serialization.Encoding.PEM))
    return TlsFiles(ca_file, cert_file, key_file)


def server_context(files: TlsFiles) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(files.cert_file), str(files.key_file))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx
