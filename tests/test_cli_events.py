"""`loadpilot events`: against a real server (uvicorn on a free port, a real SQLite file), in-process and as a real
child process for --follow."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
from typer.testing import CliRunner

from loadpilot.cli import app
from loadpilot.cli_events import parse_since, plain, short_details
from loadpilot.config import parse_config
from loadpilot.model import Event
from loadpilot.store import Store, open_store
from tests.helpers import KEY, free_port, running_server

runner = CliRunner()
LOADPILOT = Path(sys.executable).parent / "loadpilot"
TOKEN = "s3cret-read-token"


@dataclass
class Served:
    """A running server, its store, and a config file for the CLI that points at it."""

    url: str
    store: Store
    config_file: Path

    def add(self, kind: str, subject: str, reason: str, result: str = "ok", **details: Any) -> int:
        """Record an event now, as the controller would."""
        return self.store.add_event(Event(time.time(), kind, subject, reason, result, details))


def write_client_config(path: Path, state_dir: Path, url: str, server: dict[str, str] | None = None) -> Path:
    """A loadpilot.toml for the CLI: the agent's server URL (what the commands read), and [server] if given."""
    lines = [f'state_dir = "{state_dir}"', "[agent]", f'server_url = "{url}"']
    if server:
        lines.append("[server]")
        lines += [f'{k} = "{v}"' for k, v in server.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@contextmanager
def serving(tmp_path: Path, port: int | None = None, **server: str) -> Iterator[Served]:
    """A real uvicorn server on 127.0.0.1 over a real SQLite file; `server` settings go to [server]."""
    port = port or free_port()
    config = parse_config(
        {
            "state_dir": str(tmp_path / "server-state"),
            "server": {"port": port, **server},
            "auth": {"signing_key": KEY.decode()},
        }
    )
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        with running_server(config, store) as url:
            config_file = write_client_config(tmp_path / "loadpilot.toml", tmp_path / "state", url, server or None)
            yield Served(url, store, config_file)
    finally:
        store.close()


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No token from the environment; a wide console so table cells are not cut."""
    monkeypatch.delenv("LOADPILOT_READ_TOKEN", raising=False)
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """A server with open reads (loopback, read_auth auto)."""
    with serving(tmp_path) as s:
        yield s


def run(*args: str) -> Any:
    """Run `loadpilot events ...` in this process."""
    return runner.invoke(app, ["events", *args])


def test_the_table_lists_events_oldest_first(served: Served) -> None:
    served.add("scale", "pool/web", "cpu 0.91 above 0.7 for 30 s", "ok", before=2, after=4)
    served.add("hold", "pool/web", "in cooldown for 12 s", "skipped")
    result = run("--config", str(served.config_file))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "cpu 0.91 above 0.7 for 30 s" in out and "in cooldown for 12 s" in out
    assert out.index("cpu 0.91") < out.index("in cooldown")
    assert "after=4 before=2" in out  # the store keeps details with sorted keys
    assert "pool/web" in out and "scale" in out and "skipped" in out


def test_json_lines_carry_the_api_fields(served: Served) -> None:
    first = served.add("scale", "pool/web", "up", n=1)
    second = served.add("error", "host-2", "libvirt unreachable", "failed")
    result = run("--config", str(served.config_file), "--json")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["id"] for e in lines] == [first, second]
    assert set(lines[0]) == {"id", "time", "kind", "subject", "reason", "result", "details"}
    assert lines[0]["details"] == {"n": 1}
    assert lines[1]["result"] == "failed"


def test_filters_kind_subject_since_and_limit(served: Served) -> None:
    old = Event(time.time() - 3600, "scale", "pool/web", "an hour ago", "ok")
    served.store.add_event(old)
    served.add("scale", "pool/web", "web up")
    served.add("scale", "pool/api", "api up")
    served.add("hold", "pool/web", "web holds")

    def reasons(*args: str) -> list[str]:
        result = run("--config", str(served.config_file), "--json", *args)
        assert result.exit_code == 0, result.output
        return [json.loads(line)["reason"] for line in result.stdout.splitlines()]

    assert reasons("--kind", "scale") == ["an hour ago", "web up", "api up"]
    assert reasons("--subject", "pool/web", "--since", "10m") == ["web up", "web holds"]
    assert reasons("--limit", "2") == ["api up", "web holds"]
    bad = run("--config", str(served.config_file), "--since", "soon")
    assert bad.exit_code == 2 and "--since" in bad.output


def test_markup_and_html_in_events_print_literally(served: Served) -> None:
    served.add("error", "<script>alert(1)</script>", "[red]x[/red] and [bold]y", "failed", note="[link=x]z[/link]")
    served.add("hold", "pool/a", "bell\x1b[2Jclear", "ok")
    result = run("--config", str(served.config_file))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "<script>alert(1)</script>" in out
    assert "[red]x[/red] and [bold]y" in out
    assert "note=[link=x]z[/link]" in out
    assert "\x1b[2J" not in out and "bell\\x1b[2Jclear" in out


def test_an_unreachable_server_is_a_message_and_exit_1(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    config = write_client_config(tmp_path / "loadpilot.toml", tmp_path / "state", url)
    result = run("--config", str(config))
    assert result.exit_code == 1
    assert "cannot reach the loadpilot server at " + url in result.stderr
    assert "Traceback" not in result.output


def test_server_option_overrides_the_config(served: Served, tmp_path: Path) -> None:
    served.add("scale", "pool/web", "found through --server")
    elsewhere = write_client_config(tmp_path / "other.toml", tmp_path / "state", f"http://127.0.0.1:{free_port()}")
    result = run("--config", str(elsewhere), "--server", served.url)
    assert result.exit_code == 0, result.output
    assert "found through --server" in result.stdout


def test_a_read_token_from_the_config_is_sent_and_a_refusal_exits_1(tmp_path: Path) -> None:
    with serving(tmp_path, read_auth="token", read_token=TOKEN) as served:
        served.add("scale", "pool/web", "secret scale")
        ok = run("--config", str(served.config_file), "--json")
        assert ok.exit_code == 0, ok.output
        assert json.loads(ok.stdout)["reason"] == "secret scale"
        tokenless = write_client_config(tmp_path / "tokenless.toml", tmp_path / "state", served.url)
        refused = run("--config", str(tokenless))
        assert refused.exit_code == 1
        assert "refused the read (401)" in refused.stderr and "read_token" in refused.stderr
        assert "Traceback" not in refused.output


def test_helpers_parse_durations_and_escape_control_characters() -> None:
    assert parse_since("90") == 90 and parse_since("10m") == 600 and parse_since("2h") == 7200
    assert parse_since("1d") == 86400 and parse_since("1.5s") == 1.5
    with pytest.raises(ValueError, match="not a duration"):
        parse_since("-5m")
    assert plain("a\nb\x1b") == "a\\nb\\x1b"
    assert short_details({"k": "v" * 100}, width=10) == "k=vvvvvvv…"


class Lines:
    """A child's output stream read on a thread, so the test can wait for a line without blocking forever."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[bytes]) -> None:
        for raw in stream:
            self._queue.put(raw.decode(errors="replace"))

    def wait_for(self, text: str, timeout: float = 20.0) -> bool:
        """Whether a line containing `text` arrives within `timeout` seconds (lines seen so far count)."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.seen):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                self.seen.append(self._queue.get(timeout=left))
            except queue.Empty:
                return False
        return True


@contextmanager
def follow(config: Path, *args: str) -> Iterator[tuple[subprocess.Popen[bytes], Lines, Lines]]:
    """`loadpilot events --follow` as a real child process; killed if the test leaves it running."""
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("LOADPILOT_READ_TOKEN", None)
    proc = subprocess.Popen(
        [str(LOADPILOT), "events", "--follow", "--config", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        yield proc, Lines(proc.stdout), Lines(proc.stderr)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _interrupt(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGINT)
    return proc.wait(timeout=15)


def test_follow_prints_new_events_and_ctrl_c_exits_0(served: Served) -> None:
    served.add("scale", "pool/web", "before the follow")
    with follow(served.config_file) as (proc, out, err):
        assert out.wait_for("before the follow"), (out.seen, err.seen)
        served.add("scale", "pool/web", "after the follow <b>[red]x[/red]</b>")
        assert out.wait_for("after the follow <b>[red]x[/red]</b>"), (out.seen, err.seen)
        assert _interrupt(proc) == 0
        err.wait_for("never", timeout=0.5)
        assert not any("Traceback" in line for line in err.seen), err.seen


def test_follow_json_waits_for_a_server_that_comes_later(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = write_client_config(tmp_path / "client.toml", tmp_path / "state", url)
    with follow(config, "--json", "--kind", "scale") as (proc, out, err):
        assert err.wait_for("cannot reach the loadpilot server"), err.seen
        with serving(tmp_path, port=port) as served:
            served.add("hold", "pool/web", "not a scale")
            served.add("scale", "pool/web", "scaled once it was up")
            assert out.wait_for("scaled once it was up"), (out.seen, err.seen)
            assert err.wait_for("answers again"), err.seen
        assert [json.loads(line)["reason"] for line in out.seen] == ["scaled once it was up"]
        assert _interrupt(proc) == 0
        assert not any("Traceback" in line for line in err.seen), err.seen


def test_follow_into_a_reader_that_goes_away_exits_quietly(served: Served) -> None:
    served.add("scale", "pool/web", "the first line")
    proc = subprocess.Popen(
        [str(LOADPILOT), "events", "--follow", "--json", "--config", str(served.config_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        assert "the first line" in proc.stdout.readline().decode()
        proc.stdout.close()  # as `| head -1` does once it has its line
        served.add("scale", "pool/web", "nobody reads this")
        assert proc.wait(timeout=20) == 0
        assert "Traceback" not in proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
