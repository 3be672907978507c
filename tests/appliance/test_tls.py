"""HTTPS served by the appliance itself: self-signed on first use, certificate files replaced without a restart."""

from __future__ import annotations

import asyncio
import datetime
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from appliance.config import check_config
from appliance.http.app import create_app
from appliance.http.tls import fingerprint
from appliance.keys import TLS_KEY
from tests.conftest import ADMIN_PASSWORD, bearer

INSECURE = ssl.create_default_context()
INSECURE.check_hostname = False
INSECURE.verify_mode = ssl.CERT_NONE


def make_pair(folder: Path, name: str) -> tuple[Path, Path]:
    """A throwaway certificate and key for `name` (what a user's own CA or ACME client would drop there)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def presented(port: int) -> x509.Certificate:
    """The certificate 127.0.0.1:port shows a new connection (no SNI, as for an IP address; blocks)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, INSECURE.wrap_socket(raw) as conn:
        der = conn.getpeercert(binary_form=True)
    assert der
    return x509.load_der_x509_certificate(der)


Served = Callable[..., Any]


@pytest.fixture
async def serve_https(write_config: Any) -> AsyncIterator[Served]:
    """Serve the real app over HTTPS on 127.0.0.1 with the given `http.tls`; returns (port, webapp)."""
    runners: list[web.AppRunner] = []

    async def _serve(tls: Any, extra: dict[str, Any] | None = None) -> tuple[int, web.Application]:
        path = write_config(extra)
        text = path.read_text().replace("http:\n", f"http:\n  tls: {tls!r}\n" if isinstance(tls, str) else
                                        f"http:\n  tls: {{cert: {tls['cert']}, key: {tls['key']}}}\n", 1)
        path.write_text(text)
        webapp = await create_app(path)
        runner = web.AppRunner(webapp)
        await runner.setup()
        runners.append(runner)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        store = webapp[TLS_KEY]
        assert store is not None
        await web.TCPSite(runner, "127.0.0.1", port, ssl_context=store.server_context).start()
        return port, webapp

    yield _serve
    for runner in runners:
        await runner.cleanup()


async def test_self_signed_is_made_once_kept_and_shown(serve_https: Served, tmp_path: Path, caplog) -> None:
    port, _ = await serve_https("self-signed")
    key = tmp_path / "data" / "tls" / "key.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    cert = await asyncio.to_thread(presented, port)
    shown = fingerprint(cert.public_bytes(serialization.Encoding.DER))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert f"SHA-256 fingerprint {shown}" in caplog.text
    jar = aiohttp.CookieJar(unsafe=True)  # cookies for an IP address host
    async with aiohttp.ClientSession(base_url=f"https://127.0.0.1:{port}", cookie_jar=jar) as session:
        status = await (await session.get("/api/v1/status", headers=bearer("read"), ssl=INSECURE)).json()
        assert status["tls"]["fingerprint_sha256"] == shown and status["tls"]["source"] == "self-signed"
        # Over https the session cookie is the __Host- one, Secure; the dashboard shows the fingerprint.
        resp = await session.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD, "next": "/"},
                                  ssl=INSECURE, allow_redirects=False)
        assert resp.status == 303
        cookie = resp.headers["Set-Cookie"]
        assert cookie.startswith("__Host-dm_session=") and "Secure" in cookie and "Path=/" in cookie
        page = await (await session.get("/", ssl=INSECURE)).text()
        assert f'<code id="tls-fingerprint">{shown}</code>' in page
        # Plain http on the https port is refused, not answered.
        with pytest.raises(aiohttp.ClientError):
            await session.get(f"http://127.0.0.1:{port}/api/health")
    # A second start keeps the same certificate.
    port2, _ = await serve_https("self-signed")
    assert (await asyncio.to_thread(presented, port2)).fingerprint(hashes.SHA256()) == cert.fingerprint(hashes.SHA256())


async def test_replaced_certificate_is_served_without_a_restart(serve_https: Served, tmp_path: Path, caplog) -> None:
    live = tmp_path / "tls"
    first_cert, first_key = make_pair(tmp_path / "made", "first.lan")
    live.mkdir()
    (live / "cert.pem").write_bytes(first_cert.read_bytes())
    (live / "key.pem").write_bytes(first_key.read_bytes())
    port, webapp = await serve_https({"cert": live / "cert.pem", "key": live / "key.pem"})
    store = webapp[TLS_KEY]
    store.interval = 0.1
    assert (await asyncio.to_thread(presented, port)).subject.rfc4514_string() == "CN=first.lan"

    async with aiohttp.ClientSession() as session:
        # A connection opened before the swap keeps working; new ones get the new certificate.
        resp = await session.get(f"https://127.0.0.1:{port}/api/health", ssl=INSECURE)
        assert resp.status == 200
        second_cert, second_key = make_pair(tmp_path / "made", "second.lan")
        (live / "key.pem").write_bytes(second_key.read_bytes())
        (live / "cert.pem").write_bytes(second_cert.read_bytes())
        for _ in range(100):
            if (await asyncio.to_thread(presented, port)).subject.rfc4514_string() == "CN=second.lan":
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the replaced certificate was never served")
        resp = await session.get(f"https://127.0.0.1:{port}/api/health", ssl=INSECURE)
        assert resp.status == 200
    assert store.info is not None and store.info.subject == "CN=second.lan"

    # A key that does not match the certificate is refused; the working one stays in use.
    (live / "key.pem").write_bytes(first_key.read_bytes())
    for _ in range(100):
        if "still serving the old one" in caplog.text:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the broken pair was not reported")
    assert (await asyncio.to_thread(presented, port)).subject.rfc4514_string() == "CN=second.lan"


@pytest.mark.parametrize(("tls", "message"), [
    ("self-sign", "tls must be 'self-signed' or {cert: FILE, key: FILE}"),
    ({"cert": "/x.pem"}, "http.tls.key: required key 'key' is missing"),
])
def test_tls_config_errors(write_config: Any, tls: Any, message: str) -> None:
    path = write_config()
    value = tls if isinstance(tls, str) else "{cert: /x.pem}"
    path.write_text(path.read_text().replace("http:\n", f"http:\n  tls: {value}\n", 1))
    result = check_config(path)
    assert any(message in str(issue) for issue in result.issues), [str(i) for i in result.issues]


async def test_missing_certificate_files_stop_the_start(write_config: Any, tmp_path: Path) -> None:
    from appliance.errors import ConfigError

    path = write_config()
    path.write_text(path.read_text().replace(
        "http:\n", f"http:\n  tls: {{cert: {tmp_path}/none.pem, key: {tmp_path}/none.key}}\n", 1))
    with pytest.raises(ConfigError, match=r"http\.tls: cannot load the certificate"):
        await create_app(path)
