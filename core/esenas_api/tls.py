"""Per-job TLS material for the aggregator's gRPC port: a private CA and one server certificate.

The operator makes it once per job and stores it in the job's Secret (``ca.crt``, ``tls.crt``,
``tls.key``); ``esenas run`` makes it per run for 127.0.0.1. The aggregator serves with the
certificate and key; workers trust only the job's CA and check the server's name, so a worker
of one job cannot be pointed at another job's (or anybody else's) server. The bearer token
stays: TLS authenticates the server and hides the token, the token authenticates the worker.

Uses ``cryptography`` (the operator and CLI extras), imported lazily: the aggregator and the
worker only read PEM files, which gRPC's own TLS stack consumes.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Final

#: Secret keys (the names kubernetes.io/tls uses, plus the CA).
CA_KEY: Final = "ca.crt"
CERT_KEY: Final = "tls.crt"
KEY_KEY: Final = "tls.key"
#: Validity of a job's certificates. A job that runs longer needs its Secret renewed
#: (docs/operations.md, "TLS"); ten years keeps that out of any real job's way.
VALID_DAYS: Final = 3650


@dataclass(frozen=True)
class TLSMaterial:
    """PEM bytes: the CA certificate workers trust, and the server's certificate and key."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    def as_files(self) -> dict[str, bytes]:
        return {CA_KEY: self.ca_pem, CERT_KEY: self.cert_pem, KEY_KEY: self.key_pem}

    def write(self, folder: Path) -> None:
        """Write the three files; the key readable by its owner only."""
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in self.as_files().items():
            path = folder / name
            path.write_bytes(data)
            path.chmod(0o600 if name == KEY_KEY else 0o644)


def server_names(job: str, namespace: str) -> list[str]:
    """The DNS names a job's aggregator and relay Services answer to (the workers dial a ``.svc`` one).
    Relays serve the workers with the same certificate, so it names both."""
    return [
        name
        for svc in (f"{job}-aggregator", f"{job}-relays")
        for name in (svc, f"{svc}.{namespace}", f"{svc}.{namespace}.svc", f"{svc}.{namespace}.svc.cluster.local")
    ]


def issue(common_name: str, names: list[str], now: dt.datetime | None = None) -> TLSMaterial:
    """A fresh CA (ECDSA P-256) and a server certificate for ``names`` (DNS names or IP
    addresses) signed by it. The CA's key is discarded: nothing else can ever be signed."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = now or dt.datetime.now(dt.UTC)
    not_before, not_after = now - dt.timedelta(minutes=5), now + dt.timedelta(days=VALID_DAYS)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _cn(f"esenas CA {common_name}"))])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = []
    for n in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            alt.append(x509.DNSName(n))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _cn(common_name))]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return TLSMaterial(
        ca_pem=ca.public_bytes(pem),
        cert_pem=cert.public_bytes(pem),
        key_pem=key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


def _cn(name: str) -> str:
    return name[:64]  # X.509 caps a common name at 64 characters


def read_pem(path: str | Path, what: str) -> bytes:
    """A PEM file named by a flag; a clear error instead of a traceback when it is unusable."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"{what} {path}: cannot read: {exc.strerror}") from exc
    if b"-----BEGIN " not in data:
        raise ValueError(f"{what} {path}: not a PEM file")
    return data
