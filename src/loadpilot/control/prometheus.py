"""Prometheus as a metrics source for the controller (as Nomad's autoscaler's prometheus APM plug-in).

A scaling check with `metric = "query"` reads its value from a PromQL query, evaluated at every evaluation of
the pool through Prometheus' HTTP API (`GET /api/v1/query`). The answer must be one number: a scalar, or an
instant vector with exactly one sample. An empty vector (or NaN) is "no data": the policy abstains and the pool
keeps its size. Anything else (Prometheus away, a bad query, several series) is a QueryUnavailable, a temporary
error naming the query: the controller records a hold and asks again at its next tick.
"""

from __future__ import annotations

import math
from typing import Any

import httpx

from loadpilot.config import PoolConfig, ScalingCheck
from loadpilot.errors import TemporaryError

QUERY_PATH = "/api/v1/query"


class QueryUnavailable(TemporaryError):
    """A Prometheus query could not be answered with one number now."""


def pool_queries(pool: PoolConfig) -> list[str]:
    """The queries of a pool's checks with metric = "query", as configured (each once, in order)."""
    checks: list[ScalingCheck] = [pool.autoscale, *pool.autoscale.checks]
    return list(dict.fromkeys(c.query for c in checks if c.metric == "query"))


def expand(query: str, pool: str) -> str:
    """The query as sent: `{pool}` replaced by the pool's name (other braces, e.g. label matchers, are kept)."""
    return query.replace("{pool}", pool)


class PrometheusSource:
    """Evaluates instant queries against one Prometheus server."""

    def __init__(self, url: str, timeout_s: float = 2.0, client: httpx.Client | None = None) -> None:
        self.url = url.rstrip("/")
        self._client = client or httpx.Client(timeout=timeout_s)

    def query(self, promql: str, at: float | None = None) -> float | None:
        """The query's value (at `at`, default: Prometheus' now); None when it has no data; QueryUnavailable
        naming the query when it cannot be answered."""
        params: dict[str, str] = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        try:
            response = self._client.get(f"{self.url}{QUERY_PATH}", params=params)
        except httpx.HTTPError as exc:
            raise QueryUnavailable(f"query {promql!r}: cannot reach Prometheus at {self.url}: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):  # a proxy's page, say
            raise QueryUnavailable(
                f"query {promql!r}: {self.url} answered {response.status_code} without Prometheus' JSON"
            ) from None
        if response.status_code != 200 or body.get("status") != "success":
            why = body.get("error") or f"HTTP {response.status_code}"
            raise QueryUnavailable(f"query {promql!r}: Prometheus refused it: {body.get('errorType', '')} {why}")
        data = body.get("data")
        return _one_number(promql, data if isinstance(data, dict) else {})

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()


def _one_number(promql: str, data: dict[str, Any]) -> float | None:
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return _finite(promql, result)
    if kind == "vector" and isinstance(result, list):
        if not result:
            return None
        if len(result) > 1:
            series = ", ".join(_series(s.get("metric", {}) if isinstance(s, dict) else {}) for s in result[:3])
            raise QueryUnavailable(
                f"query {promql!r}: {len(result)} series ({series}{', ...' if len(result) > 3 else ''}); "
                "it must give one number: aggregate it (sum, avg, max)"
            )
        return _finite(promql, result[0].get("value") if isinstance(result[0], dict) else None)
    raise QueryUnavailable(f"query {promql!r}: a {kind} result; it must give a scalar or one sample")


def _finite(promql: str, pair: object) -> float | None:
    """A [time, "value"] pair as a float; None for NaN or infinity (no usable data)."""
    try:
        value = float(pair[1])  # type: ignore[index]
    except (TypeError, ValueError, IndexError):
        raise QueryUnavailable(f"query {promql!r}: unreadable value {pair!r}") from None
    return value if math.isfinite(value) else None


def _series(labels: dict[str, str]) -> str:
    name = labels.get("__name__", "")
    rest = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{rest}}}"
