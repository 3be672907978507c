"""The Webhooks page and API: URL to paste, provider, secret presence (never the secret), deliveries."""

from __future__ import annotations

from typing import Any

from appliance.keys import APPLIANCE_KEY
from tests.conftest import bearer, sign_in

from .conftest import SECRET, SIGNING_SECRET, Remote, delivery, push_body, settled, wait_for


def _config(remote: Remote) -> dict[str, Any]:
    return {
        "repos": [{"name": "infra", "url": str(remote.bare), "branch": "main"},
                  {"name": "lab", "url": str(remote.bare), "branch": "main"}],
        "webhooks": [{"repo": "infra", "provider": "gitlab", "secret": SECRET},
                     {"repo": "lab", "provider": "gitlab", "secret": SECRET, "signing_secret": SIGNING_SECRET}],
    }


async def test_api_lists_hooks_and_last_deliveries(make_client: Any, remote: Remote) -> None:
    client = await make_client(_config(remote))
    app = client.server.app[APPLIANCE_KEY]
    await wait_for(lambda: settled(app))
    for i in range(22):
        raw, headers = delivery("gitlab", push_body("gitlab", f"topic-{i}", "ab" * 20))
        assert (await client.post("/hooks/infra", data=raw, headers=headers)).status == 200
    assert (await client.post("/hooks/infra", data=b"{}", headers={"Content-Type": "application/json"})).status == 401
    await app.store.flush()
    assert (await client.get("/api/v1/webhooks")).status == 401
    resp = await client.get("/api/v1/webhooks", headers=bearer("read"))
    assert resp.status == 200
    text = await resp.text()
    assert SECRET not in text and SIGNING_SECRET not in text
    infra, lab = (await resp.json())["webhooks"]
    assert (infra["repo"], infra["url"], infra["provider"], infra["secret_set"]) == \
        ("infra", "http://127.0.0.1:8099/hooks/infra", "gitlab", True)
    assert infra["token_only"] and infra["verification"] == "token only, replayable"
    assert not lab["token_only"] and lab["signing_secret_set"]
    assert len(infra["deliveries"]) == 20
    newest = infra["deliveries"][0]
    assert (newest["outcome"], newest["status"]) == ("bad_signature", 401)
    assert infra["deliveries"][1]["branch"] == "topic-21" and infra["deliveries"][1]["outcome"] == "ignored"


async def test_page_shows_url_provider_and_replayable_warning(make_client: Any, remote: Remote) -> None:
    client = await make_client(_config(remote))
    await sign_in(client)
    page = await (await client.get("/webhooks")).text()
    assert 'href="/webhooks"' in page  # the navigation entry
    assert "http://127.0.0.1:8099/hooks/infra" in page and "http://127.0.0.1:8099/hooks/lab" in page
    assert page.count("token only, replayable") == 1
    assert "token + Standard Webhooks signature" in page
    assert SECRET not in page and SIGNING_SECRET not in page
