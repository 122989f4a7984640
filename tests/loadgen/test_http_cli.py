"""`loadpilot loadgen http`: bad options exit 2 naming the option; a run prints a summary or one JSON document."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loadpilot.cli import app
from tests.loadgen.http_servers import running_server

runner = CliRunner()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with running_server() as url:
        yield url


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ([], "exactly one of --rate, --ramp or --trace (got none)"),
        (["--rate", "5", "--ramp", "1:2"], "got --rate and --ramp"),
        (["--rate", "abc"], "'--rate'"),
        (["--rate", "-5"], "--rate/--ramp"),
        (["--ramp", "5"], "--ramp '5': expected R1:R2"),
        (["--rate-to", "9"], "--rate-to"),
        (["--rate", "5", "--speedup", "2"], "--speedup"),
        (["--rate", "5", "--duration", "0"], "--duration"),
        (["--rate", "5", "--header", "no colon here"], "--header"),
        (["--rate", "5", "--header", "Content-Length: 5"], "--header"),
        (["--rate", "5", "--body", "/no/such/file"], "--body: cannot read"),
        (["--rate", "5", "--concurrency", "0"], "--concurrency"),
        (["--rate", "5", "--timeout", "0"], "--timeout"),
        (["--rate", "5", "--method", "NOT A METHOD"], "--method"),
    ],
)
def test_bad_options_exit_2_naming_the_option(args: list[str], named: str) -> None:
    result = runner.invoke(app, ["loadgen", "http", "http://127.0.0.1:9/", *args])
    assert result.exit_code == 2, result.output
    assert named in result.output


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("https://example.com/", "https is not supported"),
        ("ftp://example.com/", "must start with http://"),
        ("http://:80/", "has no host"),
        ("http://127.0.0.1:99999/", "URL"),
    ],
)
def test_bad_urls_exit_2_naming_the_url(url: str, named: str) -> None:
    result = runner.invoke(app, ["loadgen", "http", url, "--rate", "5", "--json"])
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert document["ok"] is False and named in document["error"]


def test_a_bad_trace_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    path.write_text("1,10\n1,ten\n")
    result = runner.invoke(app, ["loadgen", "http", "http://127.0.0.1:9/", "--trace", str(path)])
    assert result.exit_code == 2
    assert "trace.csv:2: count 'ten'" in result.output


def test_an_unknown_host_exits_1() -> None:
    result = runner.invoke(app, ["loadgen", "http", "http://no-such-host.invalid/", "--rate", "5", "-d", "0.2"])
    assert result.exit_code == 1
    assert "cannot resolve" in result.output


def test_json_is_one_document_with_the_whole_report(server: str, tmp_path: Path) -> None:
    body = tmp_path / "body.txt"
    body.write_text("a log line\n" * 10)
    result = runner.invoke(
        app,
        [
            "loadgen",
            "http",
            server + "/echo",
            "--rate",
            "40",
            "-d",
            "0.5",
            "--body",
            str(body),
            "-H",
            "X-Test: 1",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["method"] == "POST"  # --body without --method: POST
    assert report["succeeded"] == report["sent"] == 20 and report["failed_total"] == 0
    assert set(report["latency"]) >= {"p50", "p95", "p99", "max"}
    assert report["statuses"] == {"200": 20}


def test_the_summary_names_failures_and_a_progress_bar_can_be_forced(server: str) -> None:
    result = runner.invoke(app, ["loadgen", "http", server + "/status/503", "--rate", "40", "-d", "0.5", "--progress"])
    assert result.exit_code == 0, result.output
    assert "failed because" in result.output and "503" in result.output
    assert "no successful answer" in result.output
