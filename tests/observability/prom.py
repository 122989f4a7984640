"""A throwaway, real Prometheus (Debian's prometheus package) scraping given targets every second, and
`promtool check metrics` on an exposition text."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import free_port, terminate_all, wait_for

SCRAPE_INTERVAL_S = 1


def promtool_check(text: str) -> tuple[int, str]:
    """Run `promtool check metrics` on an exposition text; (exit code, what it printed)."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is needed: scripts/system-deps.sh test installs Debian's prometheus package"
    done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    return done.returncode, done.stdout + done.stderr


def scrape(url: str) -> str:
    """The exposition text at `url`, after checking it is served as Prometheus text."""
    response = httpx.get(url, timeout=5)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain"), response.headers
    return response.text


def value_of(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample `name{labels}` in an exposition text (labels not given may be anything), or
    None when there is no such sample; several matching samples are summed."""
    found = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    ]
    return sum(found) if found else None


class Prometheus:
    """A running Prometheus and its HTTP API."""

    def __init__(self, url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.url = url
        self.proc = proc
        self.log = log

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector a query answers (fails the test on an error answer)."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5)
        body = response.json()
        assert body["status"] == "success", body
        assert body["data"]["resultType"] == "vector", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def values(self, promql: str) -> dict[str, float]:
        """A query's samples as {job: value}."""
        return {s["metric"].get("job", ""): float(s["value"][1]) for s in self.query(promql)}

    def wait_value(self, promql: str, expected: dict[str, float], timeout: float = 30.0) -> dict[str, float]:
        """Poll until the query answers exactly `expected` ({job: value}); returns what it answered last."""
        seen: dict[str, float] = {}

        def matches() -> bool:
            nonlocal seen
            seen = self.values(promql)
            return seen == expected

        assert wait_for(matches, timeout=timeout, interval=0.25), (
            f"{promql}: {seen}, expected {expected}; {self.log_tail()}"
        )
        return seen

    def log_tail(self) -> str:
        """The end of Prometheus' log, for failure messages."""
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""


@contextmanager
def running_prometheus(tmp_path: Path, targets: dict[str, list[str]]) -> Iterator[Prometheus]:
    """Prometheus on a free 127.0.0.1 port scraping each job's `host:port` targets (path /metrics) every second,
    its data in tmp_path; stopped at the end."""
    binary = shutil.which("prometheus")
    assert binary, "prometheus is needed: scripts/system-deps.sh test installs Debian's prometheus package"
    folder = tmp_path / "prometheus"
    folder.mkdir()
    config = {
        "global": {"scrape_interval": f"{SCRAPE_INTERVAL_S}s", "evaluation_interval": f"{SCRAPE_INTERVAL_S}s"},
        "scrape_configs": [
            {"job_name": job, "scrape_timeout": f"{SCRAPE_INTERVAL_S}s", "static_configs": [{"targets": hosts}]}
            for job, hosts in targets.items()
        ],
    }
    config_file = folder / "prometheus.yml"
    config_file.write_text(json.dumps(config))  # JSON is YAML
    port = free_port()
    log = folder / "prometheus.log"
    command = [
        binary,
        f"--config.file={config_file}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: _ready(url, proc), timeout=30, interval=0.2), (
            f"prometheus did not become ready: {log.read_text(errors='replace')[-2000:]}"
        )
        yield Prometheus(url, proc, log)
    finally:
        terminate_all([proc], timeout=20)


def _ready(url: str, proc: subprocess.Popen[bytes]) -> bool:
    if proc.poll() is not None:
        raise AssertionError(f"prometheus exited with code {proc.returncode}")
    try:
        return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
