"""Addons load from `<config dir>/custom_addons/`; a broken one is disabled visibly, the rest keep working."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from appliance import loader
from appliance.config import check_config
from appliance.keys import APPLIANCE_KEY
from appliance.loader import AddonRegistry, setup_order
from tests.conftest import bearer, sign_in

GOOD = '''
"""A working third-party addon."""
import voluptuous as vol
from aiohttp import web

DOMAIN = "good"
CONFIG_SCHEMA = vol.Schema({vol.Optional("greeting", default="hello"): str})


async def async_setup(app, conf):
    async def hello(request):
        return web.json_response({"greeting": conf["greeting"]})

    app.api.get("/api/v1/good", hello, auth="read", summary="Say hello", tags=["good"])
    return True
'''

BOOM = '''
import voluptuous as vol
DOMAIN = "boom"
CONFIG_SCHEMA = vol.Schema({})


async def async_setup(app, conf):
    raise RuntimeError("kaboom")
'''

SLOW = '''
import asyncio
import voluptuous as vol
DOMAIN = "slow"
CONFIG_SCHEMA = vol.Schema({})


async def async_setup(app, conf):
    await asyncio.sleep(30)
    return True
'''

NOTBOOL = '''
import voluptuous as vol
DOMAIN = "notbool"
CONFIG_SCHEMA = vol.Schema({})


async def async_setup(app, conf):
    return "yes"
'''

BADCONF = '''
import voluptuous as vol
DOMAIN = "badconf"
CONFIG_SCHEMA = vol.Schema({vol.Required("level"): vol.All(int, vol.Range(min=1))})


async def async_setup(app, conf):
    return True
'''

BROKEN_IMPORT = '''
import voluptuous as vol
DOMAIN = "brokenimport"
CONFIG_SCHEMA = vol.Schema({})
raise ImportError("needs a library that is not installed")
'''

CONFIG = """\
good: {greeting: hi}
boom: {}
slow: {}
notbool: {}
badconf: {level: 0}
windows:
  nightly: {cron: "0 2 * * *", duration: 3h}
"""

EXPECTED_FAILURES = {
    "boom": "setup failed: RuntimeError: kaboom",
    "slow": "setup timed out after 0.2s",
    "notbool": "setup returned 'yes', not a bool",
    "badconf": "configuration is invalid: badconf.level: value must be at least 1 (config.yaml, line {line})",
}


def _expected_failures(config: Path) -> dict[str, str]:
    line = config.read_text().splitlines().index("badconf: {level: 0}") + 1
    return {domain: error.format(line=line) for domain, error in EXPECTED_FAILURES.items()}


@pytest.fixture
def broken_addons(custom_addon, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "ADDON_SETUP_TIMEOUT", 0.2)
    custom_addon("good", GOOD)
    custom_addon("boom", BOOM)
    custom_addon("slow", SLOW)
    custom_addon("notbool", NOTBOOL)
    custom_addon("badconf", BADCONF)


async def test_broken_addons_are_disabled_and_visible(make_client, broken_addons, tmp_path: Path) -> None:
    client = await make_client(CONFIG)
    expected = _expected_failures(tmp_path / "config.yaml")
    resp = await client.get("/api/v1/status", headers=bearer("read"))
    assert resp.status == 200
    status = await resp.json()
    assert status["addons"]["loaded"] == ["good", "windows"]
    failed = {item["domain"]: item["error"] for item in status["addons"]["failed"]}
    assert failed == expected
    assert [issue["path"] for issue in status["config_errors"]] == ["badconf.level"]

    # The rest keeps working: the good addon's route and the windows addon.
    resp = await client.get("/api/v1/good", headers=bearer("read"))
    assert (await resp.json()) == {"greeting": "hi"}
    resp = await client.get("/api/v1/windows", headers=bearer("read"))
    assert [w["name"] for w in (await resp.json())["windows"]] == ["nightly"]

    # Each failure is a banner in the UI.
    await sign_in(client)
    page = await (await client.get("/")).text()
    banners = re.findall(r'<div class="banner error" role="alert">(.*?)</div>', page, re.S)
    text = " ".join(re.sub(r"<[^>]+>", "", b) for b in banners)
    for domain, error in expected.items():
        assert f"Addon {domain} is disabled: {error}".replace("'", "&#39;") in text


async def test_addon_failed_events_are_recorded(make_client, broken_addons) -> None:
    client = await make_client(CONFIG)
    app = client.app[APPLIANCE_KEY]
    await app.store.flush()
    rows = await app.store.fetchall("SELECT data FROM events WHERE type = 'addon_failed' ORDER BY id")
    assert len(rows) == len(EXPECTED_FAILURES)


async def test_addon_that_cannot_be_imported(make_client, custom_addon) -> None:
    custom_addon("brokenimport", BROKEN_IMPORT)
    client = await make_client("brokenimport: {}\n")
    status = await (await client.get("/api/v1/status", headers=bearer("read"))).json()
    (failure,) = status["addons"]["failed"]
    assert failure["domain"] == "brokenimport"
    assert "cannot load addon: needs a library that is not installed" in failure["error"]
    assert (await client.get("/api/health")).status == 200


def test_manifest_must_match_the_folder(tmp_path: Path, custom_addon) -> None:
    custom_addon("mismatch", GOOD.replace('"good"', '"mismatch"'),
                 manifest={"domain": "other", "name": "x", "documentation": "docs/x.md"})
    (tmp_path / "config.yaml").write_text("mismatch: {}\n")
    result = check_config(tmp_path / "config.yaml")
    assert [str(i) for i in result.issues] == [
        "mismatch: cannot load addon: manifest domain 'other' does not match folder 'mismatch' (config.yaml, line 1)"
    ]


def test_addon_without_manifest(tmp_path: Path, custom_addon) -> None:
    folder = custom_addon("nomanifest", GOOD.replace('"good"', '"nomanifest"'))
    (folder / "manifest.json").unlink()
    (tmp_path / "config.yaml").write_text("nomanifest: {}\n")
    result = check_config(tmp_path / "config.yaml")
    assert [str(i) for i in result.issues] == ["nomanifest: addon has no manifest.json (config.yaml, line 1)"]


def test_setup_order_puts_dependencies_first(tmp_path: Path, custom_addon) -> None:
    base = 'import voluptuous as vol\nDOMAIN = "{d}"\nCONFIG_SCHEMA = vol.Schema({{}})\n' \
           'async def async_setup(app, conf):\n    return True\n'
    custom_addon("alpha", base.format(d="alpha"),
                 manifest={"domain": "alpha", "name": "a", "documentation": "x", "dependencies": ["zulu"]})
    custom_addon("zulu", base.format(d="zulu"))
    custom_addon("mike", base.format(d="mike"),
                 manifest={"domain": "mike", "name": "m", "documentation": "x", "after_dependencies": ["alpha"]})
    registry = AddonRegistry(tmp_path)
    assert setup_order(["mike", "alpha", "zulu"], registry) == ["zulu", "alpha", "mike"]
    assert setup_order(["mike", "zulu"], registry) == ["mike", "zulu"]


LEAKY = '''
import voluptuous as vol

DOMAIN = "leaky"
CONFIG_SCHEMA = vol.Schema({"url": str})


async def async_setup(app, conf):
    raise RuntimeError(f"cannot reach {conf['url']}")
'''


async def test_setup_error_never_shows_a_secret(make_client, custom_addon) -> None:
    custom_addon("leaky", LEAKY)
    secret = "https://hooks.example.lan/T0KEN-5b1f0c9e"
    client = await make_client("leaky:\n  url: !secret leaky_url\n", secrets={"leaky_url": secret})
    (failed,) = (await (await client.get("/api/v1/status", headers=bearer("read"))).json())["addons"]["failed"]
    assert failed["error"] == "setup failed: RuntimeError: cannot reach ***"
    await sign_in(client)
    assert secret not in await (await client.get("/")).text()
