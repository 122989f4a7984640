"""The agent: every interval, run the collectors, spool the readings as batches, and let the shipper send them.

Readings are taken at slot boundaries (timestamp // interval), so a slot holds one reading of each metric. The
spool sits between collecting and sending: collection never waits for the network, and nothing collected is lost
while the server is away. On SIGTERM or SIGINT the agent stops collecting, tries to send what is left for
`flush_timeout_s`, and keeps the rest in the spool for its next start.

Shared resources (those any agent could poll: HTTP endpoints, ...) are split between the agents when
`[coordination]` is enabled: before each reading the agent asks its SharedWork which of them it polls this slot,
and once the reading is spooled it confirms, so that others hand over make-before-break (loadpilot.coord). On
SIGTERM such an agent first drains: it keeps reading until all it polled has been taken over, then leaves the
group. Local collectors (host, process, pool) are never split.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from loadpilot.config import Config
from loadpilot.errors import LoadpilotError
from loadpilot.metrics_http import MetricsListener, serve_metrics
from loadpilot.model import Batch, Resource, Sample
from loadpilot.sense.agent_metrics import AgentMetrics
from loadpilot.sense.collectors import Collector, build_collectors
from loadpilot.transport.shipper import Backoff, Shipper
from loadpilot.transport.signing import resolve_signing_key
from loadpilot.transport.spool import Spool
from loadpilot.transport.wire import encode_batch
from loadpilot.wakeup import WakeEvent

if TYPE_CHECKING:
    from loadpilot.coord import Plan, SharedWork

log = logging.getLogger(__name__)
RESOURCE_REFRESH_S = 60.0  # every resource is described again at least this often


@runtime_checkable
class SharedCollector(Protocol):
    """A collector of shared resources: it lists what any agent could poll, and polls what it is assigned."""

    def shared_resources(self) -> list[str]:
        """The ids of the resources any agent could poll (empty: this collector is not shared)."""
        ...

    def assign(self, resource_ids: frozenset[str] | None) -> None:
        """Poll only these from the next reading on (None: all)."""
        ...


def shared_work(config: Config) -> SharedWork | None:
    """This agent's SharedWork when `[coordination]` is enabled (not connected yet), else None."""
    if not config.coordination.enabled:
        return None
    from loadpilot.coord import CoordSettings, SharedWork

    settings = CoordSettings(**config.coordination_options())
    return SharedWork(settings, config.coordination_member_id, config.coordination.weight)


@dataclass
class AgentStats:
    """What the agent has done since it started."""

    ticks: int = 0
    skipped_ticks: int = 0
    samples: int = 0
    shared_owned: int = 0  # shared resources this agent's share holds (coordination)
    shared_polled: int = 0  # shared resources it polled at the last tick (its share, and what it hands over)
    collector_errors: int = 0
    collect_seconds: float = 0.0


class Agent:
    """Collects every interval and hands batches to the shipper through the spool."""

    def __init__(
        self, config: Config, collectors: list[Collector] | None = None, shared: SharedWork | None = None
    ) -> None:
        self.config = config
        self.agent_id = config.agent_id
        self.interval = config.agent.interval_s
        self.collectors = build_collectors(config) if collectors is None else collectors
        key = resolve_signing_key(config.signing_key_value(), config.signing_key_path, create=False)
        self.spool = Spool(config.spool_file, config.agent.spool_max_bytes)
        self.shipper = Shipper(
            self.spool,
            config.agent.server_url,
            key,
            timeout=config.agent.request_timeout_s,
            backoff=Backoff(config.agent.backoff_initial_s, config.agent.backoff_max_s),
        )
        self.stats = AgentStats()
        self.shared = shared if shared is not None else shared_work(config)
        self.stop_event = WakeEvent()  # stop collecting (a draining agent still reads until handed over)
        self._abort = WakeEvent()  # a second stop: do not wait for the handover
        self._ship_stop = threading.Event()
        self._self_resource = Resource(f"agent/{self.agent_id}", "agent", {"host": self.agent_id})
        self._described: dict[str, tuple[Resource, float]] = {}  # id -> (as last described, when)
        self.metrics = AgentMetrics(self)  # served on agent.metrics_listen while run() runs
        self.metrics_listener: MetricsListener | None = None

    def collect_once(self, now: float) -> list[Sample]:
        """Run every collector once and spool what they found; returns the samples taken."""
        plan = self._assign_shared(now)
        started = time.perf_counter()
        samples: list[Sample] = []
        resources: dict[str, Resource] = {}
        for collector in self.collectors:
            began = time.perf_counter()
            try:
                found = collector.collect(now)
            except Exception as exc:  # one broken collector must not stop the others
                self.stats.collector_errors += 1
                log.warning("collector %s failed: %s", type(collector).__name__, exc)
                continue
            finally:
                self.metrics.collected(collector, time.perf_counter() - began)
            samples.extend(s for s in found.samples if math.isfinite(s.value))
            resources.update((r.id, r) for r in found.resources)
        self.stats.collect_seconds += time.perf_counter() - started
        samples.extend(self._self_samples(now))
        resources[self._self_resource.id] = self._self_resource
        self._spool(samples, self._to_describe(resources, now))
        if plan is not None and self.shared is not None:
            self.shared.confirm(plan, now)  # polled and spooled: others may let go of what this agent took over
        self.stats.ticks += 1
        self.stats.samples += len(samples)
        return samples

    def _assign_shared(self, now: float) -> Plan | None:
        """Tell each shared collector what to poll in this slot: this agent's share, or everything when not
        coordinated (or not yet: a backend that cannot be reached yet means duplicates, never gaps)."""
        shared = [c for c in self.collectors if isinstance(c, SharedCollector) and c.shared_resources()]
        if not shared:
            return None
        keys = sorted({rid for c in shared for rid in c.shared_resources()})
        if self.shared is not None and not self.shared.started:
            try:
                self.shared.start(keys)
            except LoadpilotError as exc:
                log.warning("cannot join the agents' group yet (polling every shared resource meanwhile): %s", exc)
        if self.shared is None or not self.shared.started:
            for c in shared:
                c.assign(None)
            return None
        plan = self.shared.plan(keys, math.floor(now / self.interval))
        for c in shared:
            c.assign(plan.polling)
        self.stats.shared_owned, self.stats.shared_polled = len(plan.owned), len(plan.polling)
        return plan

    def _self_samples(self, now: float) -> list[Sample]:
        spool = self.spool.stats()
        rid = self._self_resource.id
        values = {
            "spool.batches": spool.batches,
            "spool.bytes": spool.bytes,
            "spool.dropped_batches": spool.dropped_batches,
            "spool.dropped_samples": spool.dropped_samples,
            "collect.seconds_total": self.stats.collect_seconds,
            "collector.errors_total": self.stats.collector_errors,
        }
        if self.shared is not None:
            values["shared.owned"] = self.stats.shared_owned
            values["shared.polled"] = self.stats.shared_polled
        return [Sample(rid, metric, float(v), now, "", "agent") for metric, v in values.items()]

    def _to_describe(self, resources: dict[str, Resource], now: float) -> dict[str, Resource]:
        """The resources a batch must describe: new ones, changed ones, and each again every RESOURCE_REFRESH_S.

        Describing every resource every tick would be most of what the agent encodes and sends; the refresh
        repairs what a description lost with a dropped batch.
        """
        due = {}
        for rid, res in resources.items():
            last = self._described.get(rid)
            if last is None or last[0] != res or now - last[1] >= RESOURCE_REFRESH_S:
                due[rid] = res
                self._described[rid] = (res, now)
        for rid in self._described.keys() - resources.keys():
            del self._described[rid]
        return due

    def _spool(self, samples: list[Sample], resources: dict[str, Resource]) -> None:
        size = self.config.agent.max_batch_samples
        for start in range(0, len(samples), size):
            chunk = tuple(samples[start : start + size])
            ids = {s.resource_id for s in chunk}
            described = tuple(r for rid, r in resources.items() if rid in ids)
            batch = Batch(uuid.uuid4().hex, self.agent_id, self.interval, chunk, described)
            self.spool.put(batch.batch_id, encode_batch(batch), len(chunk))
        self.shipper.notify()

    def run(self) -> None:
        """Collect at every slot boundary until stopped, then flush and close."""
        try:
            listener = serve_metrics(self.metrics.registry, self.config.agent.metrics_listen, f"agent {self.agent_id}")
        except Exception:
            self.shutdown()  # the port is taken, say: close the spool and the collectors
            raise
        self.metrics_listener = listener
        shipper_thread = threading.Thread(target=self.shipper.run, args=(self._ship_stop,), name="shipper")
        shipper_thread.start()
        pending = self.spool.stats().batches
        log.info(
            "agent %s: %d collector(s), every %g s, shipping to %s%s",
            self.agent_id,
            len(self.collectors),
            self.interval,
            self.config.agent.server_url,
            f" ({pending} batch(es) waiting from before)" if pending else "",
        )
        try:
            self._collect_until(self.stop_event, lambda: False)
            self._drain()
        finally:
            self.stop_event.set()
            self._ship_stop.set()
            shipper_thread.join()
            try:
                self.shutdown()
            finally:
                if listener is not None:
                    listener.stop()

    def _collect_until(self, stop: WakeEvent, done: Callable[[], bool]) -> None:
        """Collect at every slot boundary until `stop` is set or `done()` holds."""
        next_slot = math.floor(time.time() / self.interval) + 1
        while not done() and not stop.wait(max(0.0, next_slot * self.interval - time.time())):
            now = time.time()
            slot = math.floor(now / self.interval)
            if slot < next_slot:  # woke a hair early: wait for the boundary so the slot is not read twice
                continue
            if slot > next_slot:
                self.stats.skipped_ticks += slot - next_slot
                log.warning("agent fell behind: skipped %d slot(s)", slot - next_slot)
            self.collect_once(now)
            next_slot = slot + 1

    def _drain(self) -> None:
        """Leave the agents' group make-before-break: keep reading until all this agent polled is taken over."""
        shared = self.shared
        if shared is None or not shared.started or self._abort.is_set():
            return
        shared.drain()
        deadline = time.monotonic() + shared.settings.drain_timeout_s
        self._collect_until(self._abort, lambda: shared.handed_over or time.monotonic() > deadline)
        if not shared.handed_over:
            log.warning("leaving before everything was handed over (drain timeout or a second stop)")

    def shutdown(self) -> None:
        """Send what can be sent within the flush timeout, keep the rest, release everything."""
        flushed = self.shipper.flush(self.config.agent.flush_timeout_s)
        left = self.spool.stats()
        log.info(
            "agent stopped: ticks=%d samples=%d sent_batches=%d left_in_spool=%d dropped_batches=%d%s",
            self.stats.ticks,
            self.stats.samples,
            self.shipper.stats.sent_batches,
            left.batches,
            left.dropped_batches,
            "" if flushed else " (server unreachable: the rest is sent at next start)",
        )
        if self.shared is not None:
            self.shared.stop()
        for collector in self.collectors:
            collector.close()
        self.shipper.close()
        self.spool.close()

    def stop(self) -> None:
        """Ask the loop to end (safe from a signal handler: it only sets flags); a second stop skips the drain."""
        if self.stop_event.is_set():
            self._abort.set()
        self.stop_event.set()
