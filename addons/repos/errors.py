"""Turn git's stderr into the cause of a failed sync, in words a user can act on."""

from __future__ import annotations

import re
from pathlib import Path

_CONNECT_RE = re.compile(
    r"connection refused|could not connect|failed to connect|unable to connect|"
    r"connection timed out|no route to host|network is unreachable",
    re.IGNORECASE,
)


def describe_failure(stderr: str, *, action: str, branch: str, url: str, timeout: float,
                     known_hosts: Path | None = None) -> str:
    """The cause of a failed git call; the last git line is kept for anything not recognised."""
    text = stderr.lower()
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    last = lines[-1] if lines else "git exited with an error"
    last = re.sub(r"^(fatal|error):\s*", "", last)
    if "did not complete in" in text:
        return f"{action} timed out after {timeout:g}s (remote {url} too slow or not answering)"
    if "no space left on device" in text or "disk quota exceeded" in text:
        return f"cannot {action}: the disk is full (no space left on device)"
    if "host key verification failed" in text or "remote host identification has changed" in text:
        where = f"in {known_hosts}" if known_hosts else "in known_hosts"
        return (f"host key verification failed for {url}: the server's key is not {where} or has changed "
                "(add it with ssh-keyscan after checking its fingerprint)")
    if "permission denied (publickey" in text or "permission denied, please try again" in text:
        return f"the ssh server refused the deploy key for {url} (is the key added to the repository?)"
    if ("bad permissions" in text or "unprotected private key" in text
            or ("load key" in text and "invalid format" in text)):
        return f"ssh cannot use the deploy key: {last}"
    if ("authentication failed" in text or "could not read username" in text
            or "could not read password" in text or "http basic: access denied" in text
            or "the requested url returned error: 401" in text or "returned error: 403" in text):
        return f"authentication failed for {url}: the token or credentials were rejected"
    if "couldn't find remote ref" in text or "could not find remote ref" in text:
        return f"branch '{branch}' does not exist on the remote {url} (deleted or renamed?)"
    if "could not resolve host" in text or "name or service not known" in text or "temporary failure in name" in text:
        return f"remote unreachable: cannot resolve the host of {url}"
    if ("does not appear to be a git repository" in text or "repository not found" in text
            or "returned error: 404" in text or re.search(r"repository '[^']*' not found", text)
            or ("no such file or directory" in text and "fatal" in text)):
        return f"no git repository at {url}"
    if _CONNECT_RE.search(text):
        detail = "connection refused" if "refused" in text else last
        return f"remote unreachable: {url} ({detail})"
    return f"cannot {action}: {last}"
