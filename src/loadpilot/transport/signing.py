"""HMAC-SHA256 signatures over a batch: the body, the time it was signed and its id.

The signed message is `<timestamp>\n<batch id>\n<body>`, so neither the time nor the id can be changed without
the key (neither can hold a newline, so no other split of the same bytes exists); the server rejects a
timestamp too far from its own clock, which bounds replays, and remembers batch ids, which makes a replay inside
the window harmless.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

from loadpilot.errors import LoadpilotError, PermanentError

SIGNATURE_HEADER = "X-Loadpilot-Signature"
TIMESTAMP_HEADER = "X-Loadpilot-Timestamp"
BATCH_HEADER = "X-Loadpilot-Batch"
BATCH_ID_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,128}")  # whole values only (fullmatch)
TIMESTAMP_PATTERN = re.compile(r"[0-9]{1,12}(\.[0-9]{1,9})?")


class SignatureError(LoadpilotError):
    """A request's signature is missing, malformed, wrong or too old; the message says which."""


def sign(key: bytes, timestamp: str, batch_id: str, body: bytes) -> str:
    """The signature header value for a body signed at `timestamp` under `key`."""
    mac = hmac.new(key, f"{timestamp}\n{batch_id}\n".encode(), hashlib.sha256)
    mac.update(body)
    return "sha256=" + mac.hexdigest()


def signed_headers(key: bytes, batch_id: str, body: bytes, now: float) -> dict[str, str]:
    """The headers that authenticate a batch sent now."""
    timestamp = f"{now:.3f}"
    return {
        SIGNATURE_HEADER: sign(key, timestamp, batch_id, body),
        TIMESTAMP_HEADER: timestamp,
        BATCH_HEADER: batch_id,
        "Content-Type": "application/json",
    }


def verify(
    key: bytes,
    signature: str | None,
    timestamp: str | None,
    batch_id: str | None,
    body: bytes,
    now: float,
    max_skew: float,
) -> str:
    """Check a request's signature headers; return the batch id, or raise SignatureError saying why."""
    if not signature or not timestamp or not batch_id:
        missing = [
            h
            for h, v in (
                (SIGNATURE_HEADER, signature),
                (TIMESTAMP_HEADER, timestamp),
                (BATCH_HEADER, batch_id),
            )
            if not v
        ]
        raise SignatureError(f"missing header(s): {', '.join(missing)}")
    if not BATCH_ID_PATTERN.fullmatch(batch_id):
        raise SignatureError(f"{BATCH_HEADER}: 1 to 128 characters of A-Z a-z 0-9 _ . : -")
    if not TIMESTAMP_PATTERN.fullmatch(timestamp):
        raise SignatureError(f"{TIMESTAMP_HEADER}: not a UNIX time in seconds (digits, optionally a fraction)")
    signed_at = float(timestamp)
    if abs(now - signed_at) > max_skew:
        raise SignatureError(
            f"{TIMESTAMP_HEADER}: {signed_at:.0f} is {now - signed_at:+.0f} s from the server's clock "
            f"(allowed: +-{max_skew:.0f} s); check the clocks"
        )
    if not signature.isascii() or not hmac.compare_digest(sign(key, timestamp, batch_id, body), signature):
        raise SignatureError("signature does not match (a different signing key, or the body was changed)")
    return batch_id


def resolve_signing_key(explicit: str | None, key_file: Path, create: bool) -> bytes:
    """The shared signing key: given explicitly (config or environment), else read from `key_file`.

    With `create`, a missing key file is made with a new random key readable by its owner only, so a server
    and an agent on one machine share a key with nothing configured.
    """
    if explicit:
        return explicit.encode()
    if os.environ.get("LOADPILOT_SIGNING_KEY"):
        return os.environ["LOADPILOT_SIGNING_KEY"].encode()
    try:
        key = key_file.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        if not create:
            raise PermanentError(
                f"auth.signing_key: no key configured and {key_file} does not exist; start the server first "
                "on this machine, or set auth.signing_key / LOADPILOT_SIGNING_KEY"
            ) from None
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(32)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(key + "\n")
    if not key:
        raise PermanentError(f"auth.signing_key_file: {key_file} is empty")
    return key.encode()
