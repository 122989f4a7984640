"""The agent: every interval, run the collectors, spool the readings as batches, and let the shipper send them.

Readings are taken at slot boundaries (timestamp // interval), so a slot holds one reading of each metric. The
spool sits between collecting and sending: collection never waits for the network, and nothing collected is lost
while the server is away. On SIGTERM or SIGINT the agent stops collecting, tries to send what is left for
`flush_timeout_s`, and keeps the rest in the spool for its next start.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from dataclasses import dataclass

from loadpilot.config import Config
from loadpilot.model import Batch, Resource, Sample
from loadpilot.sense.collectors import Collector, build_collectors
from loadpilot.transport.shipper import Backoff, Shipper
from loadpilot.transport.signing import resolve_signing_key
from loadpilot.transport.spool import Spool
from loadpilot.transport.wire import encode_batch

log = logging.getLogger(__name__)
RESOURCE_REFRESH_S = 60.0  # every resource is described again at least this often


@dataclass
class AgentStats:
    """What the agent has done since it started."""

    ticks: int = 0
    skipped_ticks: int = 0
    samples: int = 0
    collector_errors: int = 0
    collect_seconds: float = 0.0


class Agent:
    """Collects every interval and hands batches to the shipper through the spool."""

    def __init__(self, config: Config, collectors: list[Collector] | None = None) -> None:
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
        self.stop_event = threading.Event()
        self._self_resource = Resource(f"agent/{self.agent_id}", "agent", {"host": self.agent_id})
        self._described: dict[str, tuple[Resource, float]] = {}  # id -> (as last described, when)

    def collect_once(self, now: float) -> list[Sample]:
        """Run every collector once and spool what they found; returns the samples taken."""
        started = time.perf_counter()
        samples: list[Sample] = []
        resources: dict[str, Resource] = {}
        for collector in self.collectors:
            try:
                found = collector.collect(now)
            except Exception as exc:  # one broken collector must not stop the others
                self.stats.collector_errors += 1
                log.warning("collector %s failed: %s", type(collector).__name__, exc)
                continue
            samples.extend(s for s in found.samples if math.isfinite(s.value))
            resources.update((r.id, r) for r in found.resources)
        self.stats.collect_seconds += time.perf_counter() - started
        samples.extend(self._self_samples(now))
        resources[self._self_resource.id] = self._self_resource
        self._spool(samples, self._to_describe(resources, now))
        self.stats.ticks += 1
        self.stats.samples += len(samples)
        return samples

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
        shipper_thread = threading.Thread(target=self.shipper.run, args=(self.stop_event,), name="shipper")
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
        next_slot = math.floor(time.time() / self.interval) + 1
        try:
            while not self.stop_event.wait(max(0.0, next_slot * self.interval - time.time())):
                now = time.time()
                slot = math.floor(now / self.interval)
                if slot < next_slot:  # woke a hair early: wait for the boundary so the slot is not read twice
                    continue
                if slot > next_slot:
                    self.stats.skipped_ticks += slot - next_slot
                    log.warning("agent fell behind: skipped %d slot(s)", slot - next_slot)
                self.collect_once(now)
                next_slot = slot + 1
        finally:
            self.stop_event.set()
            shipper_thread.join()
            self.shutdown()

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
        for collector in self.collectors:
            collector.close()
        self.shipper.close()
        self.spool.close()

    def stop(self) -> None:
        """Ask the loop to end (safe from a signal handler: it only sets a flag)."""
        self.stop_event.set()
