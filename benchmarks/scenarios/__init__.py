"""The scenarios: each one is written once against the ``rtc`` module it is handed.

A scenario is an async function of a :class:`benchmarks.common.Context` that records
metrics into ``ctx.result``. It runs in a worker process of its own, once per SDK
per repeat; the orchestrator compares the two SDKs' figures.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.common import Context


@dataclass(frozen=True)
class Scenario:
    name: str
    group: str
    title: str
    doc: str
    """What it measures and how, for docs/benchmarks.md."""
    run: Callable[[Context], Awaitable[None]]
    budget_quick: float
    """Seconds a quick-mode worker may take (import, setup and cleanup included)."""
    budget_full: float
    needs_server: bool = True
    requires: Callable[[Any], str | None] | None = None
    """Given the SDK's rtc module: why the scenario cannot run on it, or None."""
    max_repeats: int | None = None
    """Cap on the repeats of a full run, for scenarios that are long and stable."""

    def budget(self, quick: bool) -> float:
        return self.budget_quick if quick else self.budget_full


def all_scenarios() -> list[Scenario]:
    from benchmarks.scenarios import (
        audio,
        connect,
        data,
        e2ee,
        loaded,
        local,
        lossy,
        reconnect,
        simulcast,
        video,
    )

    found: list[Scenario] = []
    modules = (connect, reconnect, audio, lossy, video, simulcast, e2ee, loaded, data, local)
    for module in modules:
        found.extend(module.SCENARIOS)
    return found


def by_name() -> dict[str, Scenario]:
    return {s.name: s for s in all_scenarios()}
