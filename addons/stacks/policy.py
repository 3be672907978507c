"""Deploy policies: what a stack's resolved compose model may ask of the Docker host, checked before compose runs.

Two levels named after Kubernetes Pod Security: `baseline` (the default) refuses what takes the host
(privileged containers, host namespaces, risky capabilities, devices, unconfined profiles, binds of the
Docker socket, of system folders or of Dockmaster's own folders); `privileged` allows all of that. A
stack can lift single rules with `policy: {allow: [...]}`. Addon-wide extra rules: `registries`,
`require_digest` and `bind_roots`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import voluptuous as vol

from appliance import cv

LEVELS = ("baseline", "privileged")
# Rule name -> what it refuses (the words a person reads next to a violation).
BASELINE_RULES: dict[str, str] = {
    "privileged": "a privileged container (or a privileged build) controls the host",
    "host_pid": "the host's process namespace shows every process on the host",
    "host_ipc": "the host's IPC namespace",
    "host_uts": "the host's UTS namespace",
    "host_userns": "the host's user namespace turns off user namespace remapping",
    "host_cgroup": "the host's cgroup namespace",
    "host_network": "the host's network stack (and every port on 127.0.0.1)",
    "other_container": "joining a container outside the stack (its namespaces or volumes)",
    "cap_add": "a capability beyond the safe list",
    "devices": "host devices",
    "security_opt": "an unconfined AppArmor, seccomp, SELinux or systempaths profile",
    "docker_socket": "a bind of the Docker (or containerd) socket is root on the host",
    "system_bind": "a bind of a host system folder (/, /etc, /root, /var/lib/docker, /proc, /sys, /dev, /boot)",
    "dockmaster_bind": "a bind of Dockmaster's own config or data folder",
}
EXTRA_RULES: dict[str, str] = {
    "registries": "an image from a registry outside settings.policy.registries",
    "require_digest": "an image not pinned by @sha256: digest",
    "bind_roots": "a bind source outside settings.policy.bind_roots",
}
RULES: dict[str, str] = {**BASELINE_RULES, **EXTRA_RULES}
# Capabilities Kubernetes' baseline lets a pod add (all in Docker's default set, plus NET_RAW, also default).
SAFE_CAPS = frozenset({"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                       "NET_BIND_SERVICE", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})
SYSTEM_PATHS = ("/", "/etc", "/root", "/var/lib/docker", "/var/lib/containerd", "/proc", "/sys", "/dev", "/boot")
SOCKET_PATHS = ("/var/run/docker.sock", "/run/docker.sock", "/run/containerd", "/var/run/docker", "/run/docker",
                "/run/podman/podman.sock")
_SOCKET_NAMES = ("docker.sock", "containerd.sock", "podman.sock")
# Read-only binds of these files are common (the container's clock) and reveal nothing.
SAFE_FILES = frozenset({"/etc/localtime", "/etc/timezone"})
_UNCONFINED = frozenset({"apparmor=unconfined", "seccomp=unconfined", "label=disable", "systempaths=unconfined"})
_DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")

SETTINGS_POLICY_SCHEMA = vol.Schema({
    vol.Optional("level", default="baseline"): cv.one_of(*LEVELS),
    vol.Optional("registries", default=[]): cv.ensure_list_of(cv.string),
    vol.Optional("require_digest", default=False): cv.boolean,
    vol.Optional("bind_roots", default=[]): cv.ensure_list_of(lambda v: str(cv.path(v))),
})


def _rule(value: Any) -> str:
    text = cv.string(value)
    if text not in RULES:
        raise vol.Invalid(f"unknown policy rule '{text}' (known: {', '.join(RULES)})")
    return text


STACK_POLICY_SCHEMA = vol.Any(
    cv.one_of(*LEVELS),
    vol.Schema({vol.Optional("level"): cv.one_of(*LEVELS),
                vol.Optional("allow", default=[]): cv.ensure_list_of(_rule)}),
)


@dataclass(frozen=True)
class Violation:
    """One thing a stack asks for that its policy (or the working-folder rule) refuses."""

    service: str
    key: str
    value: str
    rule: str
    how: str

    def __str__(self) -> str:
        """The violation as a person reads it: where, what, which rule, how to allow it."""
        where = f"service {self.service}: " if self.service else ""
        what = RULES.get(self.rule, "")
        return f"{where}{self.key}: {self.value} — refused by rule {self.rule}" + (f" ({what})" if what else "") + \
            f"; {self.how}"


@dataclass(frozen=True)
class Policy:
    """A stack's effective policy: its level, the rules it lifts and the addon-wide extra rules."""

    level: str = "baseline"
    allow: frozenset[str] = frozenset()
    registries: tuple[str, ...] = ()
    require_digest: bool = False
    bind_roots: tuple[str, ...] = ()

    def enforces(self, rule: str) -> bool:
        """True when a violation of `rule` refuses the deploy."""
        if rule in self.allow:
            return False
        if rule == "registries":
            return bool(self.registries)
        if rule == "require_digest":
            return self.require_digest
        return self.level != "privileged"  # baseline rules and bind_roots

    def describe(self) -> str:
        """The policy in one line (check-config, the stack page)."""
        parts = [self.level]
        if self.allow:
            parts.append("allows " + ", ".join(sorted(self.allow)))
        if self.enforces("registries"):
            parts.append("registries " + ", ".join(self.registries))
        if self.enforces("require_digest"):
            parts.append("images pinned by digest")
        if self.bind_roots and self.enforces("bind_roots"):
            parts.append("binds under " + ", ".join(self.bind_roots))
        return "; ".join(parts)


def effective(settings: dict[str, Any] | None, stack: str | dict[str, Any] | None) -> Policy:
    """The policy of a stack from the addon's `settings.policy` and the stack's own `policy:`."""
    base = SETTINGS_POLICY_SCHEMA(dict(settings or {}))
    level, allow = base["level"], frozenset[str]()
    if isinstance(stack, str):
        level = stack
    elif isinstance(stack, dict):
        level = stack.get("level") or level
        allow = frozenset(stack.get("allow") or ())
    return Policy(level=level, allow=allow, registries=tuple(base["registries"]),
                  require_digest=base["require_digest"], bind_roots=tuple(base["bind_roots"]))


@dataclass(frozen=True)
class Places:
    """The folders a bind is judged by: the stack's own folder, Dockmaster's folders, the engine's sockets."""

    own: Path
    dockmaster: tuple[str, ...] = ()
    sockets: tuple[str, ...] = SOCKET_PATHS


def _how(rule: str, policy: Policy) -> str:
    if rule == "registries":
        return (f"use an image from {', '.join(policy.registries)}, add its registry to settings.policy.registries, "
                "or set `policy: {allow: [registries]}` on the stack")
    if rule == "require_digest":
        return "pin the image as name@sha256:<digest>, or set `policy: {allow: [require_digest]}` on the stack"
    if rule == "bind_roots":
        return (f"bind a folder under {', '.join(policy.bind_roots)} or inside the stack's working folder, "
                "or set `policy: {allow: [bind_roots]}` on the stack")
    return f"to allow it set `policy: {{allow: [{rule}]}}` (or `policy: privileged`) on the stack"


def _within(path: str, base: str) -> bool:
    return path == base or path.startswith(base.rstrip("/") + "/")


def _touches(path: str, protected: str) -> bool:
    """True when a bind of `path` exposes `protected`: the same folder, inside it, or a folder holding it."""
    return _within(path, protected) or _within(protected, path)


def image_repository(ref: str) -> str:
    """An image reference as `registry/path` without tag or digest (Docker Hub as docker.io/library/...)."""
    name = ref.split("@", 1)[0].strip().lower()
    slash, colon = name.rfind("/"), name.rfind(":")
    if colon > slash:
        name = name[:colon]
    first, _, rest = name.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost"):
        return f"docker.io/{name if rest else 'library/' + name}"
    return f"{'docker.io' if first in _DOCKER_HUB else first}/{rest}"


def _registry_entry(entry: str) -> str:
    text = entry.strip().lower().removeprefix("https://").removeprefix("http://").rstrip("/")
    first, _, rest = text.partition("/")
    return f"docker.io/{rest}".rstrip("/") if first in _DOCKER_HUB else text


def _allowed_image(ref: str, registries: tuple[str, ...]) -> bool:
    repository = image_repository(ref)
    return any(_within(repository, _registry_entry(entry)) for entry in registries)


class _Checker:
    """Collects the violations of one model (blocks: bind sources are resolved on disk)."""

    def __init__(self, policy: Policy, places: Places) -> None:
        self.policy = policy
        self.places = places
        self.own = os.path.realpath(places.own)
        self.found: list[Violation] = []

    def add(self, service: str, key: str, value: Any, rule: str) -> None:
        if self.policy.enforces(rule):
            self.found.append(Violation(service, key, str(value), rule, _how(rule, self.policy)))

    def service(self, name: str, svc: dict[str, Any], networks: dict[str, Any]) -> None:
        if svc.get("privileged") is True:
            self.add(name, "privileged", "true", "privileged")
        for key, rule in (("pid", "host_pid"), ("ipc", "host_ipc"), ("uts", "host_uts"),
                          ("userns_mode", "host_userns"), ("cgroup", "host_cgroup"), ("network_mode", "host_network")):
            value = str(svc.get(key) or "")
            if value == "host":
                self.add(name, key, value, rule)
            elif value.startswith("container:"):
                self.add(name, key, value, "other_container")
        for source in svc.get("volumes_from") or []:
            if str(source).startswith("container:"):
                self.add(name, "volumes_from", source, "other_container")
        for net in svc.get("networks") or {}:
            top = networks.get(net) or {}
            if top.get("name") == "host" or top.get("driver") == "host" or (net == "host" and not top):
                self.add(name, f"networks.{net}", top.get("name") or net, "host_network")
        for cap in svc.get("cap_add") or []:
            normal = str(cap).upper().removeprefix("CAP_")
            if normal not in SAFE_CAPS:
                self.add(name, "cap_add", cap, "cap_add")
        for key in ("devices", "device_cgroup_rules"):
            for device in svc.get(key) or []:
                shown = device.get("source", device) if isinstance(device, dict) else device
                self.add(name, key, shown, "devices")
        for opt in svc.get("security_opt") or []:
            normal = str(opt).lower().replace(":", "=", 1).replace(" ", "")
            if normal in _UNCONFINED or normal == "label=disabled":
                self.add(name, "security_opt", opt, "security_opt")
        build = svc.get("build")
        if isinstance(build, dict):
            if build.get("privileged") is True:
                self.add(name, "build.privileged", "true", "privileged")
            for entitlement in build.get("entitlements") or []:
                self.add(name, "build.entitlements", entitlement, "privileged")
            if build.get("network") == "host":
                self.add(name, "build.network", "host", "host_network")
        self.image(name, svc)
        for volume in svc.get("volumes") or []:
            if isinstance(volume, dict) and volume.get("type") == "bind" and volume.get("source"):
                self.bind(name, f"volumes {volume.get('target')}", str(volume["source"]),
                          read_only=bool(volume.get("read_only")))

    def image(self, name: str, svc: dict[str, Any]) -> None:
        image = svc.get("image")
        if not image:
            return
        if self.policy.registries and not _allowed_image(str(image), self.policy.registries):
            self.add(name, "image", image, "registries")
        # A built image has no digest to pin; require_digest is about what is pulled.
        if self.policy.require_digest and not svc.get("build") and "@sha256:" not in str(image):
            self.add(name, "image", image, "require_digest")

    def bind(self, name: str, key: str, source: str, *, read_only: bool) -> None:
        real = os.path.realpath(source)
        if _within(real, self.own):
            return  # the stack's own working folder (./data): always allowed
        written = os.path.normpath(source)
        # Docker follows the link: what counts is where it leads (and the written path, unless it is our own).
        candidates = {real} if _within(written, self.own) else {written, real}
        sockets = self.places.sockets
        if any(os.path.basename(c) in _SOCKET_NAMES or any(_touches(c, s) for s in sockets) for c in candidates):
            self.add(name, key, source, "docker_socket")
        if any(_touches(c, d) for c in candidates for d in self.places.dockmaster):
            self.add(name, key, source, "dockmaster_bind")
        safe = read_only and written in SAFE_FILES
        # "/" itself is caught as the folder holding /etc; every path lies "inside" it, so it is skipped here.
        if not safe and any(_touches(c, p) for c in candidates for p in SYSTEM_PATHS if p != "/"):
            self.add(name, key, source, "system_bind")
        roots = self.policy.bind_roots
        if roots and not safe and not all(any(_within(c, os.path.normpath(r)) for r in roots) for c in candidates):
            self.add(name, key, source, "bind_roots")


def check(model: dict[str, Any], policy: Policy, places: Places) -> list[Violation]:
    """Every violation of `policy` in a resolved compose model (blocks: resolves bind sources on disk)."""
    checker = _Checker(policy, places)
    services = model.get("services") or {}
    networks = model.get("networks") or {}
    for name, svc in sorted(services.items()):
        checker.service(name, svc or {}, networks)
    for vname, volume in sorted((model.get("volumes") or {}).items()):
        opts = (volume or {}).get("driver_opts") or {}
        device = opts.get("device")
        if device and "bind" in str(opts.get("o", "")).split(","):
            users = [n for n, s in services.items() for v in (s or {}).get("volumes") or []
                     if isinstance(v, dict) and v.get("type") == "volume" and v.get("source") == vname]
            checker.bind(", ".join(sorted(users)), f"volumes.{vname}.driver_opts.device", str(device),
                         read_only=False)
    return checker.found


def config_summary(conf: dict[str, Any]) -> list[str]:
    """The effective policy of every configured stack and discover entry (`dockmaster check-config`)."""
    settings = (conf.get("settings") or {}).get("policy")
    lines = [f"stacks: default deploy policy {effective(settings, None).describe()}"]
    for stack in conf.get("stacks") or []:
        lines.append(f"  stack {stack['name']}: policy {effective(settings, stack.get('policy')).describe()}")
    for entry in conf.get("discover") or []:
        lines.append(f"  discover {entry['repo']}:{entry['path']}: policy "
                     f"{effective(settings, entry.get('policy')).describe()}")
    return lines
