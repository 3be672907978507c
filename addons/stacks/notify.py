"""Notification messages of the stacks addon's events."""

from __future__ import annotations

from typing import Any

from appliance.messages import MAX_LISTED, short


def _deploy_failed(e: Any) -> tuple[str, str, str]:
    return (f"Deploy of {e.stack} failed", f"Revision `{short(e.revision)}` did not deploy: {e.error}",
            f"deploy of {e.stack} failed {{n}} more times")


def _deploy_succeeded(e: Any) -> tuple[str, str, str]:
    body = f"Revision `{short(e.revision)}` is running and healthy."
    if e.reason:
        body += f" Why: {e.reason}"
    return f"{e.stack} deployed", body, f"{e.stack} was deployed {{n}} more times"


def _policy_violation(e: Any) -> tuple[str, str, str]:
    lines = "\n".join(f"- {v}" for v in e.violations[:MAX_LISTED])
    more = len(e.violations) - MAX_LISTED
    if more > 0:
        lines += f"\n- … and {more} more"
    return (f"Deploy of {e.stack} refused by its policy",
            f"Revision `{short(e.revision)}` was refused before any container was touched (policy {e.policy}); "
            f"the running stack is unchanged.\n\n{lines}",
            f"{e.stack} was refused {{n}} more times")


def _rollback_succeeded(e: Any) -> tuple[str, str, str]:
    if e.bad_revision:
        body = (f"Revision `{short(e.bad_revision)}` failed, so {e.stack} runs the last good revision "
                f"`{short(e.revision)}` again. The bad revision will not be retried automatically.")
    else:
        body = f"{e.stack} runs revision `{short(e.revision)}` again."
    return (f"{e.stack} rolled back to {short(e.revision)}", body,
            f"{e.stack} was rolled back {{n}} more times")


def _rollback_failed(e: Any) -> tuple[str, str, str]:
    return (f"Rollback of {e.stack} failed",
            f"Could not return to revision `{short(e.revision)}`: {e.error}. The stack needs attention.",
            f"rollback of {e.stack} failed {{n}} more times")


def _drift(e: Any) -> tuple[str, str, str]:
    action = "Dockmaster is redeploying it." if e.healing else "Auto-deploy is off: deploy it to heal the drift."
    return f"Drift on {e.stack}", f"{e.details} {action}", f"drift on {e.stack} was seen {{n}} more times"


MESSAGES = {
    "deploy_failed": _deploy_failed,
    "deploy_succeeded": _deploy_succeeded,
    "policy_violation": _policy_violation,
    "rollback_succeeded": _rollback_succeeded,
    "rollback_failed": _rollback_failed,
    "drift_detected": _drift,
}
SUCCESS = frozenset({"deploy_succeeded"})
