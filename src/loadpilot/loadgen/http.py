"""The open-loop HTTP load generator: requests leave on a schedule, whatever the server does.

A sender hands each request's intended send time to a worker when that time comes; up to `concurrency` workers,
each owning one keep-alive connection, send them in order. While every worker is busy, requests wait in line;
the worker idle the shortest time goes first, so a light load keeps few connections open. Latency is measured
from the intended time, not from when a worker became free, so a server that slows down cannot hide it by
slowing the generator down (no coordinated omission): time spent waiting for a free connection counts. A request
that waited longer than the timeout for a connection fails as "timeout (queued)" without being sent. How far
behind its schedule the sender itself fell is reported too, so a generator that cannot keep up says so instead
of quietly sending less.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from loadpilot.errors import PermanentError
from loadpilot.loadgen.http_report import LATE_S, HttpReport, Progress, Tally
from loadpilot.loadgen.httpclient import (
    ClosedBeforeAnswer,
    Connection,
    ProtocolError,
    Target,
    asks_to_close,
    build_request,
    parse_url,
    resolve,
)
from loadpilot.loadgen.schedule import Schedule

__all__ = ["HttpLoad", "HttpLoadSpec", "HttpReport", "Progress", "run_load"]

EARLY_S = 0.001  # a request due within this leaves at once (timers are no more precise than that)
PROGRESS_INTERVAL_S = 0.25
MAX_CONCURRENCY = 10_000


@dataclass(frozen=True)
class HttpLoadSpec:
    """What to send and how: the URL, method, headers and body, the cap on requests in flight, the timeout."""

    url: str
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    concurrency: int = 64
    timeout: float = 10.0

    def checked(self) -> tuple[Target, bytes]:
        """The parsed URL and the request bytes; PermanentError naming the option when something is wrong."""
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise PermanentError(f"--concurrency: {self.concurrency} must be in 1..{MAX_CONCURRENCY}")
        if not self.timeout > 0:
            raise PermanentError(f"--timeout: {self.timeout!r} must be a number of seconds > 0")
        target = parse_url(self.url)
        return target, build_request(target, self.method, list(self.headers), self.body)


class HttpLoad:
    """One run of `schedule` against `spec`; run() once, stop() from a signal handler to end it early."""

    def __init__(
        self,
        spec: HttpLoadSpec,
        schedule: Schedule,
        progress: Callable[[Progress], None] | None = None,
        progress_interval: float = PROGRESS_INTERVAL_S,
    ) -> None:
        """Check the spec (PermanentError naming the option); nothing is sent until run()."""
        self.spec = spec
        self.schedule = schedule
        self._target, self._request = spec.checked()
        self._expect_body = spec.method != "HEAD"
        self._close_each = asks_to_close(list(spec.headers))
        self._progress = progress
        self._progress_interval = progress_interval
        self._tally = Tally()
        self._addresses: list[tuple[str, int]] = []
        self._line = _Line()
        self._sender: asyncio.Task[None] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._stops = 0
        self._start = 0.0

    def stop(self) -> None:
        """End the run early: the first call stops sending and lets requests in flight end; a second abandons them."""
        self._stops += 1
        if self._sender is not None:
            self._sender.cancel()
        if self._stops > 1:
            for worker in self._workers:
                worker.cancel()

    async def run(self) -> HttpReport:
        """Send the whole schedule, wait for the last answer (or its timeout), and report."""
        self._addresses = await resolve(self._target)
        tally = self._tally
        cpu0 = time.process_time()
        self._start = time.perf_counter()
        self._workers = [asyncio.create_task(self._work()) for _ in range(self.spec.concurrency)]
        self._sender = asyncio.create_task(self._send())
        ticker = asyncio.create_task(self._tick()) if self._progress else None
        try:
            await self._sender
            if self._stops:
                self._tally.scheduled -= self._line.drop()  # due but never sent: as if never scheduled
            self._line.close()
            await asyncio.gather(*self._workers, return_exceptions=True)
        finally:
            if ticker is not None:
                ticker.cancel()
            for worker in self._workers:
                worker.cancel()
        end = time.perf_counter()
        duration = self.schedule.duration
        return HttpReport(
            url=self._target.url,
            method=self.spec.method,
            schedule=self.schedule.label,
            concurrency=self.spec.concurrency,
            timeout_s=self.spec.timeout,
            scheduled=tally.scheduled,
            sent=tally.sent,
            completed=tally.completed,
            succeeded=tally.succeeded,
            failed=dict(tally.failed.most_common()),
            statuses={str(code): n for code, n in sorted(tally.statuses.items())},
            duration_s=duration,
            elapsed_s=end - self._start,
            send_rate=tally.sent / max(duration, tally.last_sent - self._start),
            achieved_rate=tally.succeeded / max(duration, tally.last_succeeded - self._start),
            latency=tally.latency.summary(),
            start_delay=tally.start_delay.summary(),
            late_starts=tally.late_starts,
            sender_lag_max_s=tally.sender_lag_max,
            connections=tally.connections,
            reconnects=tally.reconnects,
            cpu_s=time.process_time() - cpu0,
            interrupted=self._stops > 0,
        )

    async def _send(self) -> None:
        """Hand every intended send time to the workers when it comes; never wait for answers.

        Event-loop timers are only as precise as a millisecond, so a request due within EARLY_S leaves at once,
        up to that much early, with its latency counted from when it really left: the load keeps its shape and
        the timers' imprecision does not pose as latency.
        """
        start, tally, put = self._start, self._tally, self._line.put
        clock, sleep = time.perf_counter, asyncio.sleep
        try:
            if self._stops:
                return
            for offset in self.schedule.send_times():
                due = start + offset
                now = clock()
                if due - now > EARLY_S:
                    await sleep(due - now - EARLY_S / 2)
                    now = clock()
                lag = now - due
                if lag > tally.sender_lag_max:
                    tally.sender_lag_max = lag
                tally.scheduled += 1
                put(due if lag >= 0 else now)
        except asyncio.CancelledError:
            pass  # stop(): send no more

    async def _work(self) -> None:
        """Take intended send times off the line and send each on this worker's one connection."""
        tally, line, clock = self._tally, self._line, time.perf_counter
        timeout = self.spec.timeout
        connection: Connection | None = None
        try:
            while True:
                due = await line.get()
                if due is None:
                    return
                waited = clock() - due
                if waited > timeout:
                    tally.failed["timeout (queued)"] += 1
                    continue
                tally.start_delay.record(waited)
                if waited > LATE_S:
                    tally.late_starts += 1
                tally.in_flight += 1
                try:
                    connection = await self._one(connection, due)
                except asyncio.CancelledError:
                    tally.failed["cancelled"] += 1
                    raise
                finally:
                    tally.in_flight -= 1
        finally:
            if connection is not None:
                connection.close()

    async def _one(self, connection: Connection | None, due: float) -> Connection | None:
        """Send one request and count its outcome; returns the connection to use next (None: open a new one)."""
        tally = self._tally
        phase = "connect"
        try:
            async with asyncio.timeout(self.spec.timeout):
                if connection is None or not connection.reusable or connection.stale:
                    if connection is not None:
                        connection.close()
                    connection = None
                    connection = await self._connect()
                phase = "answer"
                tally.sent += 1
                tally.last_sent = time.perf_counter()
                try:
                    status = await connection.exchange(self._request, self._expect_body)
                except ClosedBeforeAnswer:
                    if not connection.used:
                        raise
                    # An idle keep-alive connection the server closed just as we sent: once more, on a new one.
                    connection.close()
                    connection = None
                    tally.reconnects += 1
                    phase = "connect"
                    connection = await self._connect()
                    phase = "answer"
                    status = await connection.exchange(self._request, self._expect_body)
        except Exception as exc:
            if connection is not None:
                connection.close()
            tally.failed[_reason(exc, phase)] += 1
            return None
        done = time.perf_counter()
        tally.completed += 1
        tally.statuses[status] += 1
        if status < 400:
            tally.succeeded += 1
            tally.latency.record(done - due)
            tally.last_succeeded = done
        else:
            tally.failed[str(status)] += 1
        if self._close_each or not connection.reusable:
            connection.close()
            return None
        return connection

    async def _connect(self) -> Connection:
        """A new connection to the first address that accepts; that address is tried first from then on."""
        error: OSError | None = None
        for i, (host, port) in enumerate(self._addresses):
            try:
                connection = await Connection.open(host, port)
            except OSError as exc:
                error = exc
                continue
            if i:
                self._addresses.insert(0, self._addresses.pop(i))
            self._tally.connections += 1
            return connection
        assert error is not None
        raise error

    async def _tick(self) -> None:
        """Call the progress callback every interval with a fresh snapshot."""
        assert self._progress is not None
        tally = self._tally
        last_time, last_ended = self._start, 0
        while True:
            await asyncio.sleep(self._progress_interval)
            now = time.perf_counter()
            failed = sum(tally.failed.values())
            ended = tally.succeeded + failed
            rate = (ended - last_ended) / (now - last_time)
            last_time, last_ended = now, ended
            elapsed = now - self._start
            self._progress(
                Progress(
                    elapsed=elapsed,
                    duration=self.schedule.duration,
                    scheduled=tally.scheduled,
                    sent=tally.sent,
                    succeeded=tally.succeeded,
                    failed=failed,
                    in_flight=tally.in_flight,
                    rate=rate,
                    intended_rate=self.schedule.rate_at(elapsed),
                )
            )


class _Line:
    """Requests waiting for a worker, and workers waiting for a request (the last one to go idle is woken first)."""

    def __init__(self) -> None:
        self._waiting: deque[float] = deque()  # intended send times no worker has taken yet
        self._idle: list[asyncio.Future[float | None]] = []  # idle workers, the most recent last
        self._closed = False

    def put(self, due: float) -> None:
        """A request is due: give it to the most recently idle worker, or line it up."""
        while self._idle:
            worker = self._idle.pop()
            if not worker.done():  # a worker cancelled while idle leaves a done future behind
                worker.set_result(due)
                return
        self._waiting.append(due)

    async def get(self) -> float | None:
        """The next request's intended send time; None once the line is closed and empty."""
        if self._waiting:
            return self._waiting.popleft()
        if self._closed:
            return None
        worker: asyncio.Future[float | None] = asyncio.get_running_loop().create_future()
        self._idle.append(worker)
        return await worker

    def drop(self) -> int:
        """Forget the requests still waiting; returns how many."""
        count = len(self._waiting)
        self._waiting.clear()
        return count

    def close(self) -> None:
        """No more requests will come: idle workers get None now, busy ones once the line is empty."""
        self._closed = True
        while self._idle:
            worker = self._idle.pop()
            if not worker.done():
                worker.set_result(None)


def _reason(exc: BaseException, phase: str) -> str:
    """The failure reason reported for an exception raised while connecting ("connect") or awaiting the answer."""
    if isinstance(exc, TimeoutError):
        return "timeout (connect)" if phase == "connect" else "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connect refused"
    if isinstance(exc, ConnectionError | ClosedBeforeAnswer | asyncio.IncompleteReadError):
        return "connection reset"
    if isinstance(exc, ProtocolError | asyncio.LimitOverrunError):
        return "protocol error"
    if isinstance(exc, OSError):
        return f"socket error ({exc.strerror or type(exc).__name__})"
    return f"error ({type(exc).__name__})"


def run_load(
    spec: HttpLoadSpec,
    schedule: Schedule,
    progress: Callable[[Progress], None] | None = None,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> HttpReport:
    """Run the load to the end in a new event loop; Ctrl-C or SIGTERM stops it early (twice: at once).

    `loop_factory` picks the event loop (e.g. uvloop's, which sends more requests per CPU second).
    """
    load = HttpLoad(spec, schedule, progress)

    async def main() -> HttpReport:
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM) if threading.current_thread() is threading.main_thread() else ()
        for sig in signals:
            loop.add_signal_handler(sig, load.stop)
        try:
            return await load.run()
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(main())
