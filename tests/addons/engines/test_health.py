"""Engine health: reachability and figures of real engines, one event per outage, host keys enforced."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from addons.engines import monitor as monitor_module
from addons.engines.api import DIRECTORY_KEY
from addons.engines.contract import EngineRecovered, EngineUnreachable
from appliance.keys import APPLIANCE_KEY
from tests.conftest import bearer
from tests.support.dockerd import ExtraEngine, free_port
from tests.support.engines import SshEngine

pytestmark = pytest.mark.docker


def _tls(engine: ExtraEngine, name: str, url: str | None = None) -> dict[str, Any]:
    assert engine.tls is not None
    return {"name": name, "url": url or engine.tcp_url,
            "tls": {"ca": str(engine.tls.ca), "cert": str(engine.tls.cert), "key": str(engine.tls.key)}}


async def test_engines_page_and_api_show_each_engine_and_one_event_per_outage(
    make_client: Any, tls_engine: ExtraEngine,
) -> None:
    closed = f"tcp://127.0.0.1:{free_port()}"
    client = await make_client({"engines": [_tls(tls_engine, "tls1"), _tls(tls_engine, "gone", closed)]})
    app = client.server.app[APPLIANCE_KEY]
    seen: list[Any] = []
    app.bus.async_listen(EngineUnreachable, seen.append)
    app.bus.async_listen(EngineRecovered, seen.append)
    monitor = app.data[DIRECTORY_KEY].monitor
    for _ in range(3):  # three checks of a port nothing listens on: one outage, told once
        await monitor.async_check_all(force=True)
    await app.bus.async_drain()
    assert [(type(e).__name__, e.engine) for e in seen] == [("EngineUnreachable", "gone")]

    body = await (await client.get("/api/v1/engines", headers=bearer("read"))).json()
    engines = {e["name"]: e for e in body["engines"]}
    assert list(engines) == ["local", "gone", "tls1"]
    assert engines["gone"]["reachable"] is False and engines["gone"]["failures"] >= 3
    assert "127.0.0.1" in engines["gone"]["error"] and engines["gone"]["down_since"]
    assert engines["tls1"]["reachable"] is True and engines["tls1"]["kind"] == "tls"
    assert engines["tls1"]["version"] == tls_engine.client().version()["Version"]
    assert engines["tls1"]["disk"]["images"] > 0  # the busybox test image
    page = await (await client.get("/engines", headers=bearer("read"))).text()
    assert 'data-engine="gone"' in page and "unreachable" in page and 'data-engine="tls1"' in page
    metrics = await (await client.get("/metrics", headers=bearer("read"))).text()
    assert 'dockmaster_engine_up{engine="gone"} 0.0' in metrics
    assert 'dockmaster_engine_up{engine="tls1"} 1.0' in metrics
    # A read token may look, not make Dockmaster connect on its behalf.
    assert (await client.post("/api/v1/engines/tls1/check", headers=bearer("read"))).status == 403


async def test_an_engine_that_never_answers_does_not_hold_up_the_others(
    make_client: Any, tls_engine: ExtraEngine, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(monitor_module, "CHECK_TIMEOUT", 2.0)  # 10 s in use; the test needs no such wait
    # A listener that accepts and never speaks: its check ends at the timeout, the others answer.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        client = await make_client({"engines": [_tls(tls_engine, "a"), _tls(tls_engine, "b"),
                                                _tls(tls_engine, "slow", f"tcp://127.0.0.1:{port}")]})
        monitor = client.server.app[APPLIANCE_KEY].data[DIRECTORY_KEY].monitor
        statuses = {s.name: s for s in await monitor.async_check_all(force=True)}
    assert statuses["slow"].reachable is False and statuses["slow"].error == "no answer within 2s"
    assert statuses["a"].reachable and statuses["b"].reachable and statuses["local"].reachable


async def test_an_ssh_engine_with_an_unknown_host_key_is_refused(
    make_client: Any, ssh_engine: SshEngine, tmp_path: Path,
) -> None:
    other = tmp_path / "known_hosts"
    other.write_text(f"[127.0.0.1]:{ssh_engine.port} ssh-ed25519 "
                     "AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ\n")
    engine = {"name": "ssh1", "url": f"ssh://{ssh_engine.user}@127.0.0.1:{ssh_engine.port}",
              "ssh_key": str(ssh_engine.key), "known_hosts": str(other), "socket": ssh_engine.socket}
    client = await make_client({"engines": [engine]})
    result = await client.post("/api/v1/engines/ssh1/check", headers=bearer("deploy"))
    body = await result.json()
    assert body["reachable"] is False
    assert "host key" in body["error"] and "not verified" in body["error"], body["error"]
    # With the right key the same engine answers over the forwarded socket.
    engine["known_hosts"] = str(ssh_engine.known_hosts)
    good = await make_client({"engines": [engine]})
    body = await (await good.post("/api/v1/engines/ssh1/check", headers=bearer("deploy"))).json()
    assert body["reachable"] is True and body["kind"] == "ssh", body


async def test_a_host_from_hosts_is_an_engine_with_its_address_user_and_keys(
    make_client: Any, ssh_engine: SshEngine,
) -> None:
    host = {"name": "vm", "address": "127.0.0.1", "port": ssh_engine.port, "user": ssh_engine.user,
            "ssh_key": str(ssh_engine.key), "known_hosts": str(ssh_engine.known_hosts)}
    client = await make_client({"hosts": [host], "engines": [{"name": "vm-docker", "host": "vm",
                                                              "socket": ssh_engine.socket}]})
    body = await (await client.post("/api/v1/engines/vm-docker/check", headers=bearer("deploy"))).json()
    assert body["reachable"] is True and body["host"] == "vm", body
    assert body["url"] == f"ssh://{ssh_engine.user}@127.0.0.1:{ssh_engine.port}"
