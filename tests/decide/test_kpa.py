"""The KPA baseline follows Knative's decider: stable and panic windows, panic at 200 %, no scale-down in panic."""

from __future__ import annotations

from loadpilot.decide.scaling import kpa, presets
from loadpilot.decide.scaling.kpa import KpaState
from tests.decide.views import settings, view


def run(readings: list[tuple[float, float, int]], target: float = 1.0) -> list[int]:
    """Sizes KPA asks for, given (time, total concurrency, ready pods) readings."""
    check = settings(policy="kpa", metric="in_flight", target=target)
    state: object | None = None
    sizes = []
    for t, concurrency, ready in readings:
        v = view(desired=ready, in_flight=concurrency, observed_at=t)
        rec, state = kpa.recommend(v, check, state, t)
        assert rec is not None
        sizes.append(rec.size)
    return sizes


def test_stable_mode_averages_a_minute() -> None:
    sizes = run([(float(t), 10.0, 10) for t in range(0, 60, 5)])
    assert sizes[-1] == 10
    # A short bump below the panic threshold moves the 60 s average only a little.
    sizes = run([*((float(t), 10.0, 10) for t in range(0, 55, 5)), (55.0, 19.0, 10)])
    assert sizes[-1] == 11  # mean (11 x 10 + 19) / 12 = 10.75


def test_panics_at_twice_the_ready_pods_and_takes_the_panic_window() -> None:
    sizes = run([*((float(t), 10.0, 10) for t in range(0, 55, 5)), (55.0, 27.0, 10)])
    assert sizes[-1] == 12  # the 6 s window holds 10 and 27: 19 pods, under 200 % of 10: stable (11.4 -> 12)
    sizes = run([*((float(t), 10.0, 10) for t in range(0, 55, 5)), (55.0, 30.0, 10)])
    assert sizes[-1] == 20  # (10 + 30) / 2 -> 20 pods, 200 % of 10: panic, the panic window's answer


def test_no_scale_down_while_panicking_then_back_to_stable_after_a_minute() -> None:
    readings = [*((float(t), 10.0, 10) for t in range(0, 55, 5)), (55.0, 40.0, 10)]
    readings += [(float(t), 5.0, 25) for t in range(60, 125, 5)]
    sizes = run(readings)
    assert sizes[11] == 25
    assert sizes[12:24] == [25] * 12  # 5 in flight would ask for fewer, but panic mode never goes down
    assert sizes[24] == 12  # over a minute since the last reason to panic: stable, at most halving


def test_scale_down_at_most_halves_per_decision() -> None:
    sizes = run([(0.0, 1.0, 10)])
    assert sizes == [5]  # floor(10 / 2), although 1 in flight asks for 1


def test_state_keeps_only_the_stable_window() -> None:
    check = settings(policy="kpa", metric="in_flight", target=1.0)
    state: object | None = None
    for t in range(0, 200, 5):
        _, state = kpa.recommend(view(in_flight=4.0, observed_at=float(t)), check, state, float(t))
    assert isinstance(state, KpaState) and len(state.readings) == 12


def test_preset_uses_knatives_defaults() -> None:
    config = presets.kpa(container_concurrency=10)
    assert config.target == 7.0 and config.interval_s == 2.0 and config.metric == "in_flight"
    assert kpa.STABLE_WINDOW_S == 60.0 and kpa.PANIC_WINDOW_S == 6.0 and kpa.PANIC_THRESHOLD == 2.0
