"""Aggregation of repeated runs: median, spread, and the ours/official ratio."""

from __future__ import annotations

import math
import statistics
from typing import Any

from benchmarks import SDKS
from benchmarks.common import percentile


def summarize(values: list[float]) -> dict[str, Any] | None:
    """Median and spread of one metric's per-run values (None when there are none).

    The spread is the interquartile range when there are at least four runs, and the
    full range (max - min) below that; ``spread_rel`` is it divided by the median.
    """
    values = [v for v in values if isinstance(v, int | float) and math.isfinite(v)]
    if not values:
        return None
    med = float(statistics.median(values))
    lo, hi = float(min(values)), float(max(values))
    if len(values) >= 4:
        q1, q3 = percentile(values, 25), percentile(values, 75)
        spread, kind = q3 - q1, "iqr"
    else:
        q1, q3 = lo, hi
        spread, kind = hi - lo, "range"
    return {
        "n": len(values),
        "median": med,
        "min": lo,
        "max": hi,
        "q1": q1,
        "q3": q3,
        "spread": spread,
        "spread_kind": kind,
        "spread_rel": spread / abs(med) if med else None,
        "values": values,
    }


def aggregate(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """One scenario's worker outputs per SDK -> status per SDK, metrics with ratios, samples."""
    status: dict[str, dict[str, Any]] = {}
    for sdk in SDKS:
        outs = runs.get(sdk, [])
        ok = [o for o in outs if o.get("status") == "ok"]
        unavailable = [o for o in outs if o.get("status") == "unavailable"]
        failed = [o for o in outs if o.get("status") not in ("ok", "unavailable")]
        if ok:
            state = "ok"
        elif unavailable:
            state = "unavailable"
        elif outs:
            state = "error"
        else:
            state = "not run"
        status[sdk] = {
            "state": state,
            "runs": len(outs),
            "ok_runs": len(ok),
            "errors": sorted({str(o.get("error")) for o in failed}),
            "reason": unavailable[0].get("error") if unavailable and not ok else None,
            # the first run's notes stand for all (every run's are in its output)
            "notes": next((o["notes"] for o in outs if o.get("notes")), []),
        }

    names: list[str] = []
    info: dict[str, dict[str, Any]] = {}
    for sdk in SDKS:
        for out in runs.get(sdk, []):
            if out.get("status") != "ok":
                continue
            for name, m in out.get("metrics", {}).items():
                if name not in info:
                    names.append(name)
                    info[name] = {k: m[k] for k in ("unit", "better", "label")}
    metrics = []
    for name in names:
        per_sdk = {
            sdk: summarize(
                [
                    o["metrics"][name]["value"]
                    for o in runs.get(sdk, [])
                    if o.get("status") == "ok" and name in o.get("metrics", {})
                ]
            )
            for sdk in SDKS
        }
        ours, official = per_sdk.get("ours"), per_sdk.get("official")
        ratio = None
        if ours and official and official["median"]:
            ratio = ours["median"] / official["median"]
        metrics.append({"name": name, **info[name], **per_sdk, "ratio": ratio})

    samples: dict[str, dict[str, Any]] = {}
    for sdk in SDKS:
        for out in runs.get(sdk, []):
            if out.get("status") != "ok":
                continue
            for name, entry in out.get("samples", {}).items():
                slot = samples.setdefault(name, {"unit": entry["unit"]})
                slot.setdefault(sdk, []).append(entry["values"])
    return {"status": status, "metrics": metrics, "samples": samples}
