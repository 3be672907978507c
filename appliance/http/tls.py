"""HTTPS on the appliance itself: a certificate from files (picked up again when replaced) or self-signed."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import ipaddress
import logging
import os
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import voluptuous as vol
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .. import cv

_LOGGER = logging.getLogger(__name__)

SELF_SIGNED = "self-signed"
TLS_SCHEMA = vol.Any(
    vol.All(cv.string, vol.In([SELF_SIGNED], msg="tls must be 'self-signed' or {cert: FILE, key: FILE}")),
    vol.Schema({vol.Required("cert"): cv.path, vol.Required("key"): cv.path}),
)
# How often the certificate files are looked at for a replacement (a stat of two files).
WATCH_INTERVAL = 5.0
SELF_SIGNED_DAYS = 825


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """What the log, the status API and the dashboard show about the served certificate."""

    source: str
    subject: str
    fingerprint: str
    not_after: str
    loaded: float

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly form."""
        return {"source": self.source, "subject": self.subject, "fingerprint_sha256": self.fingerprint,
                "not_after": self.not_after, "loaded": self.loaded}


def fingerprint(der: bytes) -> str:
    """SHA-256 of a DER certificate as colon-separated upper-case hex (what browsers show)."""
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def _names(host: str, base_url: str | None) -> tuple[list[str], list[str]]:
    dns, ips = ["localhost", socket.gethostname()], ["127.0.0.1", "::1"]
    for name in (host, urlsplit(base_url).hostname if base_url else None):
        if not name or name in ("0.0.0.0", "::"):
            continue
        try:
            ips.append(str(ipaddress.ip_address(name)))
        except ValueError:
            dns.append(name)
    return list(dict.fromkeys(dns)), list(dict.fromkeys(ips))


def make_self_signed(cert: Path, key: Path, *, common_name: str, host: str, base_url: str | None) -> None:
    """Write a new EC P-256 key (0600) and a self-signed certificate for it (blocks: file I/O)."""
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64] or "dockmaster")])
    dns, ips = _names(host, base_url)
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(private, hashes.SHA256())
    )
    key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


class CertificateStore:
    """Serves the current certificate to every new TLS connection; a replaced file is loaded again."""

    def __init__(self, conf: str | dict[str, Any], data_dir: Path, *, name: str = "dockmaster",
                 host: str = "127.0.0.1", base_url: str | None = None) -> None:
        """Resolve the files; nothing is read until `load()`."""
        self.self_signed = conf == SELF_SIGNED
        if isinstance(conf, dict):
            self.cert, self.key = Path(conf["cert"]), Path(conf["key"])
        else:
            self.cert, self.key = data_dir / "tls" / "cert.pem", data_dir / "tls" / "key.pem"
        self._name, self._host, self._base_url = name, host, base_url
        self.interval = WATCH_INTERVAL
        self.info: CertificateInfo | None = None
        self._current: ssl.SSLContext | None = None
        self._signature: tuple[Any, ...] | None = None
        self.server_context = self._new_context()
        # Each handshake takes the newest context, so a reload never touches open connections.
        self.server_context.sni_callback = self._pick_context

    @staticmethod
    def _new_context() -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    def _pick_context(self, sock: ssl.SSLObject, server_name: str | None, _context: ssl.SSLContext) -> None:
        if self._current is not None:
            sock.context = self._current

    def _stat(self) -> tuple[Any, ...]:
        signature: list[Any] = []
        for path in (self.cert, self.key):
            try:
                st = path.stat()
            except OSError:
                signature.append(None)
                continue
            signature.append((st.st_ino, st.st_mtime_ns, st.st_size))
        return tuple(signature)

    def load(self) -> CertificateInfo:
        """Read the certificate and key (making the self-signed pair on first use); blocks: file I/O and crypto.

        Raises OSError or ssl.SSLError when the files are missing or do not match; the context in
        use stays as it was.
        """
        if self.self_signed and not (self.cert.exists() and self.key.exists()):
            make_self_signed(self.cert, self.key, common_name=self._name, host=self._host, base_url=self._base_url)
            _LOGGER.warning("Made a self-signed certificate for first use: %s", self.cert)
        signature = self._stat()
        context = self._new_context()
        context.load_cert_chain(str(self.cert), str(self.key))
        pem = self.cert.read_bytes()
        certificate = x509.load_pem_x509_certificate(pem)
        der = certificate.public_bytes(serialization.Encoding.DER)
        self._current = context
        self._signature = signature
        self.info = CertificateInfo(
            source=SELF_SIGNED if self.self_signed else str(self.cert),
            subject=certificate.subject.rfc4514_string(), fingerprint=fingerprint(der),
            not_after=certificate.not_valid_after_utc.isoformat(), loaded=time.time(),
        )
        _LOGGER.warning("HTTPS certificate %s (%s), SHA-256 fingerprint %s, valid until %s",
                        self.info.subject, self.info.source, self.info.fingerprint, self.info.not_after)
        return self.info

    def changed(self) -> bool:
        """True when either file differs from what was loaded (blocks: stat)."""
        return self._stat() != self._signature

    async def async_watch(self) -> None:
        """Load the files again whenever they change; a broken replacement keeps the old certificate."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.interval)
            if not await loop.run_in_executor(None, self.changed):
                continue
            try:
                await loop.run_in_executor(None, self.load)
            except (OSError, ssl.SSLError, ValueError) as err:
                # A half-written pair (cert copied, key not yet) is normal while files are replaced.
                self._signature = await loop.run_in_executor(None, self._stat)
                _LOGGER.error("Cannot load the new certificate %s (still serving the old one): %s", self.cert, err)

    @contextlib.asynccontextmanager
    async def async_watching(self) -> Any:
        """Run `async_watch` for the lifetime of the block."""
        task = asyncio.create_task(self.async_watch(), name="dockmaster-tls-watch")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
