"""The host state machine: every allowed transition goes through, every other is refused (nothing connects)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from addons.hosts.const import ENGINE_KEY as HOSTS_ENGINE
from addons.hosts.const import FAILED, STATES
from addons.hosts.state import TRANSITIONS, InvalidTransition, allowed
from appliance.keys import APPLIANCE_KEY

CONFIG = {"hosts": [{"name": "sm-1", "address": "127.0.0.1", "port": 1}]}

# DESIGN §5's path, then the side doors the engine uses (queued, deferred, waiting_reboot, failed).
MAIN_PATH = ["idle", "querying", "pending_updates", "updating", "waiting_reboot", "rebooting", "verifying", "idle"]
ALLOWED = sorted((old, new) for old, targets in TRANSITIONS.items() for new in targets)
FORBIDDEN = sorted((old, new) for old in STATES for new in STATES if new != FAILED and new not in TRANSITIONS[old])


def test_every_state_has_a_row_and_every_target_is_a_state() -> None:
    assert set(TRANSITIONS) == set(STATES)
    assert all(targets <= set(STATES) for targets in TRANSITIONS.values())
    assert all(FAILED in targets for targets in TRANSITIONS.values())  # any state may fail
    assert all(allowed(a, b) for a, b in itertools.pairwise(MAIN_PATH))
    assert {"querying", "updating", "rebooting", "idle"} <= TRANSITIONS["failed"]  # retry targets, acknowledge
    assert ("idle", "verifying") in FORBIDDEN and ("rebooting", "idle") in FORBIDDEN


async def _engine(make_client: Any) -> Any:
    client = await make_client(CONFIG)
    return client, client.app[APPLIANCE_KEY].data[HOSTS_ENGINE]


async def test_every_allowed_transition_goes_through_and_fires_an_event(make_client: Any) -> None:
    _, engine = await _engine(make_client)
    fired: list[tuple[str, str]] = []
    engine.app.bus.async_listen("host_state_changed", lambda e: fired.append((e.old_state, e.new_state)))
    status = engine.states.get("sm-1")
    for old, new in ALLOWED:
        status.state = old
        assert engine.states.transition("sm-1", new, reason=f"{old} to {new}", error="x" if new == FAILED else None)
        assert (status.state, status.reason) == (new, f"{old} to {new}")
        if old != new:
            assert status.previous == old
    assert fired == [(old, new) for old, new in ALLOWED if old != new or new == FAILED]
    status.state = "idle"
    for old, new in itertools.pairwise(MAIN_PATH):
        engine.states.transition("sm-1", new)
        assert status.state == new, old


async def test_every_other_transition_is_refused(make_client: Any) -> None:
    _, engine = await _engine(make_client)
    fired: list[Any] = []
    engine.app.bus.async_listen("host_state_changed", fired.append)
    status = engine.states.get("sm-1")
    for old, new in FORBIDDEN:
        status.state, status.reason = old, "before"
        with pytest.raises(InvalidTransition, match=f"^host 'sm-1' cannot go from {old} to {new} ") as caught:
            engine.states.transition("sm-1", new, reason="should not happen", pending=[{"name": "x"}])
        assert caught.value.details == {"host": "sm-1", "old_state": old, "new_state": new}
        assert (status.state, status.reason, status.pending) == (old, "before", [])  # nothing changed
    assert fired == []
    status.state = "verifying"
    with pytest.raises(InvalidTransition) as caught:
        engine.states.transition("sm-1", "pending_updates")
    assert caught.value.status == 409  # a conflict: the host is in the wrong state
    assert caught.value.message == ("host 'sm-1' cannot go from verifying to pending_updates "
                                    "(from verifying only to failed, idle)")
