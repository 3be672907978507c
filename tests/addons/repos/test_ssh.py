"""ssh remotes: deploy key only, host keys checked against the configured known_hosts."""

from __future__ import annotations

from typing import Any

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
    assert app.data["repos"].get("infra").head is None
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
    assert app.data["repos"].get("infra").head == remote.head
    assert ssh_server.commands and ssh_server.commands[0].startswith("git-upload-pack")
    new = remote.commit({"x": "1\n"}, "Over ssh")
    result = await app.data["repos"].async_sync("infra", trigger="poll", reason="poll")
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
