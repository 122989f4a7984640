"""Helpers shared by tests: free ports, a real server in a thread, waiting for a condition."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from loadpilot.config import Config, parse_config
from loadpilot.server.app import create_app
from loadpilot.store import Store

KEY = b"test-signing-key"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float = 10.0, interval: float = 0.05) -> bool:
    """Poll `condition` until it holds or `timeout` passes; returns whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def make_config(tmp_path: Path, port: int, **agent: object) -> Config:
    """A config for tests: everything under tmp_path, the given port, a fixed signing key."""
    return parse_config(
        {
            "state_dir": str(tmp_path / "state"),
            "server": {"port": port},
            "auth": {"signing_key": KEY.decode()},
            "agent": {"server_url": f"http://127.0.0.1:{port}", "id": "agent-test", **agent},
        }
    )


@contextmanager
def running_server(config: Config, store: Store) -> Iterator[str]:
    """A real uvicorn server for `store` on config.server.port, in a thread; yields its base URL."""
    app = create_app(config, store, KEY)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=config.server.port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert wait_for(lambda: server.started, timeout=10), "server did not start"
    try:
        yield f"http://127.0.0.1:{config.server.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
