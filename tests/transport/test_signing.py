"""Signatures: what the server accepts and refuses, and where the shared key comes from."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from loadpilot.errors import PermanentError
from loadpilot.transport.signing import (
    BATCH_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    resolve_signing_key,
    signed_headers,
    verify,
)

KEY = b"k" * 32
NOW = 1_800_000_000.0


def check(headers: dict[str, str], body: bytes, key: bytes = KEY, now: float = NOW) -> str:
    return verify(
        key,
        headers.get(SIGNATURE_HEADER),
        headers.get(TIMESTAMP_HEADER),
        headers.get(BATCH_HEADER),
        body,
        now,
        300,
    )


def test_a_signed_body_verifies_and_yields_its_batch_id() -> None:
    headers = signed_headers(KEY, "b-1", b'{"x":1}', NOW)
    assert check(headers, b'{"x":1}') == "b-1"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda h, b: (h, b + b" "), "does not match"),
        (lambda h, b: ({**h, BATCH_HEADER: "b-2"}, b), "does not match"),
        (lambda h, b: ({**h, TIMESTAMP_HEADER: f"{NOW + 1:.3f}"}, b), "does not match"),
        (lambda h, b: ({k: v for k, v in h.items() if k != SIGNATURE_HEADER}, b), SIGNATURE_HEADER),
        (lambda h, b: ({**h, TIMESTAMP_HEADER: "yesterday"}, b), "UNIX time"),
        (lambda h, b: ({**h, BATCH_HEADER: "a b"}, b), BATCH_HEADER),
    ],
)
def test_any_change_is_refused_with_a_reason(change, reason: str) -> None:  # type: ignore[no-untyped-def]
    headers, body = change(signed_headers(KEY, "b-1", b"{}", NOW), b"{}")
    with pytest.raises(SignatureError, match=reason):
        check(headers, body)


def test_another_key_is_refused() -> None:
    with pytest.raises(SignatureError, match="does not match"):
        check(signed_headers(b"other", "b-1", b"{}", NOW), b"{}")


@pytest.mark.parametrize("offset", [-301, 301])
def test_a_timestamp_outside_the_window_is_refused(offset: float) -> None:
    headers = signed_headers(KEY, "b-1", b"{}", NOW + offset)
    with pytest.raises(SignatureError, match="clock"):
        check(headers, b"{}")
    assert check(signed_headers(KEY, "b-1", b"{}", NOW + offset * 0.99), b"{}") == "b-1"


def test_key_file_is_created_private_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOADPILOT_SIGNING_KEY", raising=False)
    path = tmp_path / "state" / "signing.key"
    with pytest.raises(PermanentError, match="signing_key"):
        resolve_signing_key(None, path, create=False)
    first = resolve_signing_key(None, path, create=True)
    assert len(first) == 64
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert resolve_signing_key(None, path, create=False) == first


def test_explicit_key_then_environment_then_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "signing.key"
    path.write_text("from-file\n")
    monkeypatch.delenv("LOADPILOT_SIGNING_KEY", raising=False)
    assert resolve_signing_key(None, path, create=False) == b"from-file"
    monkeypatch.setenv("LOADPILOT_SIGNING_KEY", "from-env")
    assert resolve_signing_key(None, path, create=False) == b"from-env"
    assert resolve_signing_key("from-config", path, create=False) == b"from-config"
