"""Collectors, found by name through the `loadpilot.collectors` entry points."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from loadpilot import plugins
from loadpilot.config import Config, problems_from
from loadpilot.errors import ConfigError, LoadpilotError
from loadpilot.sense.collectors.base import Collection, Collector, CollectorOptions, Rates

__all__ = ["Collection", "Collector", "CollectorOptions", "Rates", "build_collectors", "check_collectors"]


def _entries(config: Config) -> list[tuple[int, Any, CollectorOptions | None, list[str]]]:
    out: list[tuple[int, Any, CollectorOptions | None, list[str]]] = []
    for i, entry in enumerate(config.agent.collectors):
        where = f"agent.collectors[{i}]"
        try:
            cls = plugins.load(plugins.COLLECTORS, entry.type)
        except LoadpilotError as exc:
            out.append((i, None, None, [f"{where}.type: {exc}"]))
            continue
        raw = entry.options()
        if "state_dir" in cls.Options.model_fields and not raw.get("state_dir"):
            raw["state_dir"] = str(config.state_path)  # collectors that read loadpilot's own files find them
        try:
            options = cls.Options.model_validate(raw)
        except ValidationError as exc:
            out.append((i, cls, None, problems_from(exc, prefix=where)))
            continue
        out.append((i, cls, options, []))
    return out


def check_collectors(config: Config) -> list[str]:
    """Problems with the configured collectors: unknown types and invalid options, each naming its field."""
    return [p for *_, problems in _entries(config) for p in problems]


def build_collectors(config: Config) -> list[Collector]:
    """Create the enabled collectors of a config; raise ConfigError naming every problem."""
    entries = _entries(config)
    problems = [p for *_, ps in entries for p in ps]
    if problems:
        raise ConfigError(problems)
    collectors = []
    for i, cls, options, _ in entries:
        if config.agent.collectors[i].enabled:
            collectors.append(cls(options, host=config.agent_id))
    return collectors
