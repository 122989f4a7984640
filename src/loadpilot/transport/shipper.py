"""The shipping client: sends spooled batches to the server, oldest first, with backoff when it cannot.

A batch leaves the spool only when the server answered 200 (stored, or already stored). A refused signature
(401) is kept and retried: it is fixed by fixing the key or the clock, not by losing data. A batch the server
says is malformed (4xx) can never succeed and is dropped, counted and logged.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass

import httpx

from loadpilot.clock import Clock, RealClock
from loadpilot.transport.signing import signed_headers
from loadpilot.transport.spool import Spool
from loadpilot.transport.wire import split_body

log = logging.getLogger(__name__)

INGEST_PATH = "/api/v1/samples"


@dataclass
class ShipperStats:
    """What the shipper has done since it started."""

    sent_batches: int = 0
    sent_samples: int = 0
    duplicates: int = 0
    failures: int = 0
    rejected: int = 0


class Backoff:
    """Exponential backoff with jitter: waits grow from `initial` to `maximum`, each drawn from [d/2, d]."""

    def __init__(self, initial: float, maximum: float, rng: random.Random | None = None) -> None:
        self.initial, self.maximum = initial, maximum
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """Record a failure and return how long to wait before the next try."""
        delay = min(self.maximum, self.initial * (2 ** min(self.failures, 30)))
        self.failures += 1
        return self._rng.uniform(delay / 2, delay)

    def reset(self) -> None:
        """A success: the next failure starts from `initial` again."""
        self.failures = 0


class Shipper:
    """Moves batches from the spool to the server."""

    def __init__(
        self,
        spool: Spool,
        server_url: str,
        key: bytes,
        timeout: float = 10.0,
        backoff: Backoff | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.spool = spool
        self.url = server_url.rstrip("/") + INGEST_PATH
        self.key = key
        self.backoff = backoff or Backoff(0.5, 30.0)
        self.clock = clock or RealClock()
        self.stats = ShipperStats()
        self._client = httpx.Client(timeout=timeout)
        self._wake = threading.Event()

    def ship_pending(self) -> bool:
        """Send waiting batches, oldest first, until the spool is empty (True) or a send fails (False)."""
        while True:
            pending = self.spool.oldest()
            if not pending:
                return True
            for item in pending:
                if not self._send(item.seq, item.batch_id, item.body, item.samples):
                    return False

    def _send(self, seq: int, batch_id: str, body: bytes, samples: int) -> bool:
        headers = signed_headers(self.key, batch_id, body, self.clock.now())
        try:
            response = self._client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            self._failed(f"cannot reach {self.url}: {exc.__class__.__name__}: {exc}")
            return False
        if response.status_code == 200:
            answer = _acknowledgement(response, batch_id)
            if answer is None:  # not our server's answer (a proxy's page, a wrong server_url): keep the batch
                self._failed(f"{self.url} answered 200 without acknowledging batch {batch_id}: {_reason(response)}")
                return False
            self.spool.ack(seq)
            self.backoff.reset()
            self.stats.sent_batches += 1
            self.stats.sent_samples += samples
            if answer.get("duplicate") is True:
                self.stats.duplicates += 1
            return True
        reason = _reason(response)
        if response.status_code == 413 and self._split(seq, batch_id, body):
            return True
        if response.status_code in (400, 413, 422):
            self.spool.reject(seq, samples)
            self.stats.rejected += 1
            log.error(
                "server rejected batch %s for good (%d: %s); dropped it",
                batch_id,
                response.status_code,
                reason,
            )
            return True
        if response.status_code == 401:
            self._failed(f"server refused the signature: {reason}")
        else:
            self._failed(f"server answered {response.status_code}: {reason}")
        return False

    def _split(self, seq: int, batch_id: str, body: bytes) -> bool:
        """Cut a batch the server found too large in two, in the spool, to be sent next; False for one sample.
        The halves get ids derived from the batch's, so a crash in between resends the same ids."""
        halves = split_body(body)
        if halves is None or len(batch_id) > 126:
            return False
        (first, n_first), (second, n_second) = halves
        self.spool.split(seq, [(f"{batch_id}.a", first, n_first), (f"{batch_id}.b", second, n_second)])
        log.warning(
            "server refused batch %s as too large (%d bytes); sending it in two halves of %d and %d samples "
            "(lower agent.max_batch_samples to avoid this)",
            batch_id,
            len(body),
            n_first,
            n_second,
        )
        return True

    def _failed(self, why: str) -> None:
        self.stats.failures += 1
        if self.backoff.failures in (0, 3) or self.backoff.failures % 20 == 0:
            log.warning("%s (batches wait in the spool; retrying with backoff)", why)

    def run(self, stop: threading.Event) -> None:
        """Ship until `stop` is set: right after each new batch, and with backoff while the server is away.
        An unexpected error is logged and retried with backoff: the batches stay in the spool."""
        while not stop.is_set():
            try:
                shipped = self.ship_pending()
            except Exception:
                log.exception("shipping failed unexpectedly; the batches stay in the spool and are retried")
                self.stats.failures += 1
                shipped = False
            if shipped:
                self._wake.wait(timeout=1.0)
                self._wake.clear()
            else:
                stop.wait(self.backoff.next_delay())

    def notify(self) -> None:
        """A new batch is in the spool: send it now rather than at the next poll."""
        self._wake.set()

    def flush(self, timeout: float) -> bool:
        """Try to empty the spool within `timeout` seconds (at shutdown); True when nothing is left."""
        deadline = self.clock.now() + timeout
        while self.clock.now() < deadline:
            if self.ship_pending():
                return True
            self.clock.sleep(min(0.2, max(0.0, deadline - self.clock.now())))
        return not self.spool.oldest(1)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()


def _acknowledgement(response: httpx.Response, batch_id: str) -> dict[str, object] | None:
    """The server's answer to a batch when it acknowledges that very batch, else None."""
    try:
        answer = response.json()
    except ValueError:
        return None
    if not isinstance(answer, dict) or answer.get("batch_id") != batch_id:
        return None
    return answer


def _reason(response: httpx.Response) -> str:
    try:
        answer = response.json()
    except ValueError:
        answer = None
    detail = answer.get("detail") if isinstance(answer, dict) else None
    return str(detail if detail is not None else response.text[:200])
