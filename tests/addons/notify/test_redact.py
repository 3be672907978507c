"""URL redaction: scheme and host only, never a token; the pieces the global redactor learns."""

from __future__ import annotations

import pytest

from addons.notify.redact import redact_url, secret_pieces
from appliance.runs import Redactor


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("ntfy://ntfy.example/alerts-topic", "ntfy://ntfy.example/***"),
        ("ntfys://user:pass@ntfy.example:8443/topic", "ntfys://ntfy.example:8443/***"),
        ("ntfy://secret-topic-name", "ntfy://***"),
        ("tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/987654321", "tgram://***"),
        ("discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js", "discord://***"),
        ("gotify://gotify.example/AbCdEfGhIjK", "gotify://gotify.example/***"),
        ("mailtos://user:app-password@smtp.example.com?to=me@example.com", "mailtos://smtp.example.com/***"),
        ("pover://uQiRzpo4DXghDmr9QzzfQu27cmVRsG@azGDORePK8gMaC0QOYAMyEEuzJnyUi", "pover://***"),
        ("json://127.0.0.1:8098/", "json://127.0.0.1:8098/***"),
        ("json://[::1]:8098/x", "json://[::1]:8098/***"),
        ("not a url", "?://***"),
    ],
)
def test_redact_url_keeps_scheme_and_host_only(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_secret_pieces_hide_tokens_wherever_they_sit() -> None:
    redactor = Redactor()
    urls = [
        "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/987654321",
        "ntfys://user:app-password@ntfy.example/alerts-7f3kq2?mode=private",
        "json://127.0.0.1:8098/hook/tok3n-value?token=query-secret",
    ]
    for url in urls:
        redactor.add(*secret_pieces(url))
    text = redactor(
        "bot 123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw; pw app-password; topic alerts-7f3kq2; "
        "POST /hook/tok3n-value HTTP/1.1; q query-secret; mode private; " + " ".join(urls)
    )
    for secret in ("AAHdqTcv", "app-password", "alerts-7f3kq2", "tok3n-value", "query-secret", "tgram://", "ntfys://"):
        assert secret not in text
    assert "mode private" in text  # ordinary words survive


@pytest.mark.parametrize(
    ("url", "hidden", "kept"),
    [
        ("json://127.0.0.1:8098/dockmaster", [], ["add a user (dockmaster hash-password)"]),
        ("ntfys://ntfy.lan/homelab?mode=private", [], ["homelab", "mode=private"]),
        ("ntfy://ntfy.example/alerts-topic", [], ["alerts-topic"]),
        ("ntfy://ntfy.example/homelab-alerts-7f3kq2x9", ["homelab-alerts-7f3kq2x9"], ["homelab"]),
        ("gotify://gotify.example/AbCdEfGhIjK", ["AbCdEfGhIjK"], ["gotify.example"]),
        ("json://user:s3cret-pw@127.0.0.1:8098/dockmaster", ["s3cret-pw"], ["dockmaster hash-password"]),
        ("matrix://hooks/abcdefghijklmnopqrstuvwxyzab", ["abcdefghijklmnopqrstuvwxyzab"], ["hooks"]),
        ("json://127.0.0.1/notify/hooks?apikey=plainwords", ["plainwords"], ["notify", "hooks"]),
    ],
)
def test_credentials_are_masked_plain_path_words_are_not(url: str, hidden: list[str], kept: list[str]) -> None:
    redactor = Redactor()
    redactor.add(*secret_pieces(url))
    text = redactor(" ".join(hidden + kept) + " " + url)
    for secret in hidden:
        assert secret not in text
    for word in kept:
        assert word in text
    assert url not in text
