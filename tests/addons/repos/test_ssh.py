"""ssh remotes: deploy key only, host keys checked against the configured known_hosts."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from addons.repos.services import MANAGER_KEY as REPOS_MANAGER
from tests.conftest import bearer, sign_in

from .conftest import GitRemote, repo_entry, settled


async def test_unknown_host_key_is_refused(make_repos_app: Any, remote: GitRemote, ssh_server: Any) -> None:
    url = ssh_server.url_for(remote.bare)
    entry = repo_entry(url, ssh_key=str(ssh_server.deploy_key), known_hosts=str(ssh_server.known_hosts))
    _client, app = await make_repos_app([entry])
    runs = await settled(app)
    assert runs[-1]["status"] == "failed"
    assert runs[-1]["error"] == (
        f"host key verification failed for {url}: the server's key is not in {ssh_server.known_hosts} "
        "or has changed (add it with ssh-keyscan after checking its fingerprint)"
    )
    assert app.data[REPOS_MANAGER].get("infra").head is None
    assert ssh_server.commands == []  # nothing was run on a server we do not trust
    # Nothing was added to known_hosts behind the user's back.
    assert ssh_server.known_hosts.read_text() == ""


async def test_known_host_and_deploy_key_clone(make_repos_app: Any, remote: GitRemote, ssh_server: Any) -> None:
    ssh_server.trust()
    url = ssh_server.url_for(remote.bare)
    entry = repo_entry(url, ssh_key=str(ssh_server.deploy_key), known_hosts=str(ssh_server.known_hosts))
    _client, app = await make_repos_app([entry])
    runs = await settled(app)
    assert runs[-1]["status"] == "succeeded", runs
    assert app.data[REPOS_MANAGER].get("infra").head == remote.head
    assert ssh_server.commands and ssh_server.commands[0].startswith("git-upload-pack")
    new = remote.commit({"x": "1\n"}, "Over ssh")
    result = await app.data[REPOS_MANAGER].async_sync("infra", trigger="poll", reason="poll")
    assert result.error is None and result.revision == new


async def test_key_not_added_to_the_repo_is_refused(
    make_repos_app: Any, remote: GitRemote, ssh_server: Any, tmp_path: Any
) -> None:
    import asyncssh

    ssh_server.trust()
    other = tmp_path / "other_key"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(other))
    other.chmod(0o600)
    url = ssh_server.url_for(remote.bare)
    _client, app = await make_repos_app([repo_entry(url, ssh_key=str(other), known_hosts=str(ssh_server.known_hosts))])
    runs = await settled(app)
    assert runs[-1]["status"] == "failed"
    assert runs[-1]["error"] == (
        f"the ssh server refused the deploy key for {url} (is the key added to the repository?)"
    )


def _trust(config: Path, name: str, answer: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "appliance.cli", "repo", "trust", name, "-c", str(config)],
                          input=answer, capture_output=True, text=True, timeout=60, check=False)


async def test_generated_deploy_key_shown_trusted_then_cloned(
    make_repos_app: Any, remote: GitRemote, ssh_server: Any, tmp_path: Path
) -> None:
    url = ssh_server.url_for(remote.bare)
    client, app = await make_repos_app([repo_entry(url, ssh_key="generate")])
    key_file = tmp_path / "data" / "keys" / "repo-infra"
    known = tmp_path / "data" / "keys" / "known_hosts"
    assert key_file.stat().st_mode & 0o777 == 0o600 and known.read_text() == ""
    public = key_file.with_name("repo-infra.pub").read_text().strip()
    assert public.startswith("ssh-ed25519 ")
    runs = await settled(app)
    assert runs[-1]["status"] == "failed" and "host key verification failed" in runs[-1]["error"]

    # The API and the repo page show the public half (never the private one) and where to paste it.
    shown = await (await client.get("/api/v1/repos/infra", headers=bearer("read"))).json()
    key = shown["deploy_key"]
    assert key["public_key"] == public and key["fingerprint"].startswith("SHA256:")
    assert [w["forge"] for w in key["where"]] == ["Gitea / Forgejo", "GitLab", "GitHub"]
    assert shown["known_hosts"] == str(known)
    assert "PRIVATE" not in json.dumps(shown)
    assert (await client.get("/api/v1/repos/nope", headers=bearer("read"))).status == 404
    await sign_in(client)
    page = await (await client.get("/repos/infra")).text()
    assert f'<pre id="deploy-key-public">{public}</pre>' in page
    assert 'data-copy="#deploy-key-public"' in page and "dockmaster repo trust infra" in page

    # `repo trust` shows the server's fingerprint; "no" writes nothing, "y" adds the key.
    config = tmp_path / "config.yaml"
    expected = ssh_server.host_key.get_fingerprint("sha256")
    refused = await asyncio.to_thread(_trust, config, "infra", "n\n")
    assert refused.returncode == 1 and expected in refused.stdout and "nothing was written" in refused.stdout
    assert known.read_text() == ""
    done = await asyncio.to_thread(_trust, config, "infra", "y\n")
    assert done.returncode == 0, done.stdout + done.stderr
    public_host = ssh_server.host_key.export_public_key().decode().split()
    assert known.read_text() == f"[127.0.0.1]:{ssh_server.port} {public_host[0]} {public_host[1]}\n"
    again = await asyncio.to_thread(_trust, config, "infra", "")
    assert again.returncode == 0 and "already trusted" in again.stdout

    # The forge has the key now: the next sync clones over ssh with it.
    await ssh_server.async_authorize(public)
    result = await app.data[REPOS_MANAGER].async_sync("infra", trigger="manual", reason="after adding the key")
    assert result.error is None and result.revision == remote.head
    # A restart keeps the same key.
    await client.close()
    _client2, app2 = await make_repos_app([repo_entry(url, ssh_key="generate")])
    assert key_file.with_name("repo-infra.pub").read_text().strip() == public
    assert (await settled(app2))[-1]["status"] == "succeeded"
