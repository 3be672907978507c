"""The log never shows a `!secret` value: messages and tracebacks pass the redaction filter."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from appliance import logredact
from tests.appliance.test_loader import LEAKY

SECRET = "https://hooks.example.lan/T0KEN-5b1f0c9e"


@pytest.fixture
def root_log() -> Iterator[io.StringIO]:
    """A handler on the root logger, as `dockmaster run` sets up, with the redaction filter installed."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    logredact.install()
    yield stream
    root.removeHandler(handler)


async def test_messages_and_tracebacks_in_the_log_are_redacted(make_client, custom_addon, root_log) -> None:
    custom_addon("leaky", LEAKY)
    await make_client("leaky:\n  url: !secret leaky_url\n", secrets={"leaky_url": SECRET})
    logging.getLogger("addons.leaky").warning("posting to %s", SECRET)
    text = root_log.getvalue()
    assert "Error setting up addon leaky" in text and "RuntimeError: cannot reach ***" in text
    assert "posting to ***" in text
    assert SECRET not in text
