"""The shipper against a real server over loopback: acknowledged batches leave the spool, others stay."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from loadpilot.model import Batch, Sample
from loadpilot.store import open_store
from loadpilot.transport.shipper import Backoff, Shipper
from loadpilot.transport.spool import Spool
from loadpilot.transport.wire import encode_batch
from tests.helpers import KEY, free_port, make_config, running_server

T0 = float(int(time.time()) - 3600)  # an hour ago: inside the server's clock window and its retention


def spool_batch(spool: Spool, value: float, ts: float, batch_id: str | None = None) -> str:
    bid = batch_id or uuid.uuid4().hex
    batch = Batch(bid, "agent-test", 1.0, (Sample("h1", "cpu.util", value, ts),))
    spool.put(bid, encode_batch(batch), 1)
    return bid


def test_ships_oldest_first_and_empties_the_spool(tmp_path: Path) -> None:
    config = make_config(tmp_path, free_port())
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    spool = Spool(tmp_path / "spool.db", 1 << 20)
    for i in range(20):
        spool_batch(spool, i / 20, T0 + i)
    with running_server(config, store) as url:
        shipper = Shipper(spool, url, KEY)
        assert shipper.ship_pending() is True
        shipper.close()
    assert spool.stats().batches == 0
    assert shipper.stats.sent_batches == 20
    assert [s.value for s in store.series("h1", "cpu.util", T0, T0 + 100)] == [i / 20 for i in range(20)]


def test_server_down_keeps_everything_then_delivers_once(tmp_path: Path) -> None:
    config = make_config(tmp_path, free_port())
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    spool = Spool(tmp_path / "spool.db", 1 << 20)
    for i in range(3):
        spool_batch(spool, 0.5, T0 + i)
    shipper = Shipper(spool, config.agent.server_url, KEY, timeout=2)
    assert shipper.ship_pending() is False  # nobody listens
    assert spool.stats().batches == 3 and shipper.stats.failures == 1
    with running_server(config, store):
        assert shipper.ship_pending() is True
    assert store.counts()["samples"] == 3 and store.counts()["batches"] == 3


def test_a_resent_batch_is_acknowledged_as_duplicate_and_stored_once(tmp_path: Path) -> None:
    """The server stored a batch but the acknowledgement was lost: the resend must not store it twice."""
    config = make_config(tmp_path, free_port())
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    spool = Spool(tmp_path / "spool.db", 1 << 20)
    with running_server(config, store) as url:
        shipper = Shipper(spool, url, KEY)
        spool_batch(spool, 0.5, T0, batch_id="same")
        assert shipper.ship_pending()
        spool_batch(spool, 0.5, T0, batch_id="same")  # the agent did not see the ack and sends again
        assert shipper.ship_pending()
    assert shipper.stats.duplicates == 1
    assert store.counts()["samples"] == 1


def test_a_wrong_key_keeps_the_batch_and_a_malformed_one_is_dropped(tmp_path: Path) -> None:
    config = make_config(tmp_path, free_port())
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    spool = Spool(tmp_path / "spool.db", 1 << 20)
    spool_batch(spool, 0.5, T0)
    with running_server(config, store) as url:
        wrong = Shipper(spool, url, b"not-the-key")
        assert wrong.ship_pending() is False
        assert spool.stats().batches == 1  # kept: a key is fixed by fixing the config
        spool.put("malformed", b'{"agent":"a","interval":1,"samples":[{"value":"hot"}]}', 1)
        right = Shipper(spool, url, KEY)
        assert right.ship_pending() is True
    assert right.stats.rejected == 1 and right.stats.sent_batches == 1
    assert spool.stats().dropped_batches == 1
    assert store.counts()["samples"] == 1


def test_a_batch_too_large_for_the_server_is_sent_in_halves(tmp_path: Path) -> None:
    config = make_config(tmp_path, free_port())
    config.server.max_body_bytes = 2048
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    spool = Spool(tmp_path / "spool.db", 1 << 20)
    samples = tuple(Sample(f"h{i}", "cpu.util", i / 100, T0) for i in range(100))  # about 4,500 bytes
    spool.put("big", encode_batch(Batch("big", "agent-test", 1.0, samples)), len(samples))
    with running_server(config, store) as url:
        shipper = Shipper(spool, url, KEY)
        assert shipper.ship_pending() is True
        shipper.close()
    assert spool.stats().batches == 0 and spool.stats().dropped_batches == 0 and shipper.stats.rejected == 0
    assert store.counts()["samples"] == 100 and store.counts()["batches"] == 4  # halves, then quarters
    assert sorted(s.value for s in store.latest("cpu.util")) == [i / 100 for i in range(100)]


@contextmanager
def not_a_loadpilot_server(answer: bytes) -> Iterator[str]:
    """An HTTP server that answers every POST 200 with `answer` (a proxy's page, a wrong server_url)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "answer", [b"<html>Welcome</html>", b"[]", b'{"batch_id": "another", "duplicate": false}'], ids=str
)
def test_a_200_that_does_not_acknowledge_the_batch_keeps_it(tmp_path: Path, answer: bytes) -> None:
    spool = Spool(tmp_path / "spool.db", 1 << 20)
    spool_batch(spool, 0.5, T0)
    with not_a_loadpilot_server(answer) as url:
        shipper = Shipper(spool, url, KEY, backoff=Backoff(0.01, 0.02))
        assert shipper.ship_pending() is False
        stop = threading.Event()
        runner = threading.Thread(target=shipper.run, args=(stop,))
        runner.start()
        time.sleep(0.3)  # the shipping thread keeps retrying: it does not die on the answer
        assert runner.is_alive()
        stop.set()
        runner.join(5)
        shipper.close()
    assert spool.stats().batches == 1 and shipper.stats.sent_batches == 0 and shipper.stats.failures >= 2


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    backoff = Backoff(0.5, 8.0, random.Random(1))
    delays = [backoff.next_delay() for _ in range(8)]
    caps = [0.5, 1, 2, 4, 8, 8, 8, 8]
    assert all(cap / 2 <= d <= cap for d, cap in zip(delays, caps, strict=True))
    backoff.reset()
    assert backoff.next_delay() <= 0.5
