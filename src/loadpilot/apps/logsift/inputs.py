"""Turning a request body into log lines, or into a 4xx with a reason the sender can act on.

Accepted: text/plain (one log line per line), JSON `{"text": "..."}`, and the HTML form's urlencoded `text`
field; always UTF-8. Kept apart from the web layer so each rule is tested without HTTP.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import parse_qs

MAX_LINE_CHARS = 16_384
"""Longer lines are cut to this many characters before mining (and counted as truncated)."""


class InputError(Exception):
    """The request cannot be analysed: `status` is the HTTP status to answer, the message says why and what to do."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Lines:
    """The log lines of one request (blank ones left out) and how many were cut to MAX_LINE_CHARS."""

    lines: list[str]
    truncated: int


def declared_size(content_length: str | None, max_bytes: int) -> None:
    """Refuse a body whose declared Content-Length is over `max_bytes` before reading any of it."""
    if content_length is None:
        return
    try:
        size = int(content_length)
    except ValueError:
        raise InputError(400, f"Content-Length {content_length!r} is not a number of bytes") from None
    if size > max_bytes:
        raise too_large(size, max_bytes)


def too_large(size: int, max_bytes: int) -> InputError:
    """The 413 for a body of `size` bytes (or more) when at most `max_bytes` are accepted."""
    return InputError(
        413, f"body too large: {size:,} bytes or more, at most {max_bytes:,} (--max-bytes); send fewer lines at once"
    )


def text_of(body: bytes, content_type: str | None) -> str:
    """The log text a body carries, by its Content-Type; InputError (400, 415 or 422) saying what is wrong."""
    media_type, _, params = (content_type or "text/plain").partition(";")
    media_type = media_type.strip().lower()
    charset = _charset(params)
    if charset not in ("", "utf-8", "utf8", "us-ascii", "ascii"):
        raise InputError(415, f"charset {charset!r} is not accepted: send UTF-8")
    if media_type == "application/x-www-form-urlencoded":
        return _form_text(body)
    text = _decode(body)
    if media_type in ("text/plain", ""):
        return text
    if media_type == "application/json" or media_type.endswith("+json"):
        return _json_text(text)
    raise InputError(
        415,
        f"Content-Type {media_type!r} is not accepted: send text/plain (one log line per line), "
        'application/json ({"text": "..."}) or application/x-www-form-urlencoded (text=...)',
    )


def lines_of(text: str, max_lines: int) -> Lines:
    """The non-blank lines of `text` ('\\n' or '\\r\\n' ends a line); InputError when there are none or too many."""
    count = text.count("\n") + (0 if text.endswith("\n") else 1)
    if count > max_lines:
        raise InputError(413, f"too many lines: {count:,}, at most {max_lines:,} (--max-lines); send fewer at once")
    lines = []
    truncated = 0
    for line in text.split("\n"):
        line = line.rstrip("\r")
        if not line or line.isspace():
            continue
        if len(line) > MAX_LINE_CHARS:
            line = line[:MAX_LINE_CHARS]
            truncated += 1
        lines.append(line)
    if not lines:
        raise InputError(400, "no log lines: the text is empty or holds only blank lines")
    return Lines(lines, truncated)


def _charset(params: str) -> str:
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return ""


def _decode(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            400, f"the body is not UTF-8: byte {body[exc.start]:#04x} at offset {exc.start}; re-encode it as UTF-8"
        ) from None


def _json_text(text: str) -> str:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("text"), str):
        raise InputError(422, 'the JSON body must be an object with a string field "text": {"text": "line 1\\n..."}')
    value: str = document["text"]
    return value


def _form_text(body: bytes) -> str:
    try:
        fields = parse_qs(body.decode("ascii"), keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise InputError(400, "the form is not UTF-8: send it with accept-charset=utf-8") from None
    values = fields.get("text")
    if not values:
        raise InputError(422, "the form has no 'text' field: post the log lines as text=...")
    return "\n".join(values)
