"""Request bodies to log lines, and the 4xx reasons when that cannot be done."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from loadpilot.apps.logsift.inputs import MAX_LINE_CHARS, InputError, declared_size, lines_of, text_of


def _error(call: Callable[..., object], *args: object) -> InputError:
    with pytest.raises(InputError) as caught:
        call(*args)
    return caught.value


def test_plain_json_and_form_bodies_give_the_same_text() -> None:
    text = "a 1\nb <c> & d"
    assert text_of(text.encode(), "text/plain; charset=utf-8") == text
    assert text_of(text.encode(), None) == text
    assert text_of(json.dumps({"text": text}).encode(), "application/json") == text
    assert text_of(b"text=a+1%0Ab+%3Cc%3E+%26+d", "application/x-www-form-urlencoded") == text


@pytest.mark.parametrize(
    ("body", "content_type", "status", "reason"),
    [
        (b"\xff\xfeabc", "text/plain", 400, "not UTF-8"),
        (b"abc", "text/plain; charset=latin-1", 415, "send UTF-8"),
        (b"abc", "application/xml", 415, "text/plain"),
        (b"{not json", "application/json", 400, "not valid JSON"),
        (b'{"lines": []}', "application/json", 422, '"text"'),
        (b'["a"]', "application/json", 422, '"text"'),
        (b"other=1", "application/x-www-form-urlencoded", 422, "'text' field"),
        (b"text=%FF", "application/x-www-form-urlencoded", 400, "not UTF-8"),
    ],
)
def test_malformed_bodies_are_refused_with_a_reason(body: bytes, content_type: str, status: int, reason: str) -> None:
    error = _error(text_of, body, content_type)
    assert (error.status, reason in error.reason) == (status, True), error.reason


def test_blank_lines_are_left_out_and_crlf_is_a_line_end() -> None:
    lines = lines_of("a 1\r\n\r\n  \nb 2\n", 10)
    assert (lines.lines, lines.truncated) == (["a 1", "b 2"], 0)


def test_empty_text_is_a_400() -> None:
    assert _error(lines_of, " \n\n", 10).status == 400


def test_line_limit() -> None:
    assert len(lines_of("x\n" * 3, 3).lines) == 3
    error = _error(lines_of, "x\n" * 4, 3)
    assert error.status == 413 and "--max-lines" in error.reason


def test_long_lines_are_cut() -> None:
    lines = lines_of("y" * (MAX_LINE_CHARS + 5) + "\nz", 10)
    assert [len(line) for line in lines.lines] == [MAX_LINE_CHARS, 1] and lines.truncated == 1


def test_declared_size() -> None:
    declared_size(None, 10)
    declared_size("10", 10)
    assert _error(declared_size, "11", 10).status == 413
    assert _error(declared_size, "ten", 10).status == 400
