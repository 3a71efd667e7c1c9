"""The benchmark harness keeps working: one quick local scenario end to end, no timings checked."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_quick_run_of_one_scenario_has_both_sdks_figures(tmp_path: Path) -> None:
    pytest.importorskip("livekit.rtc", reason="the official SDK (livekit) is not installed")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")) if p
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--quick",
            "--scenario",
            "local_audio_resampler",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads((tmp_path / "latest.json").read_text())
    assert results["meta"]["quick"] is True
    assert results["meta"]["machine"]["nproc"]
    [scenario] = results["scenarios"]
    assert scenario["name"] == "local_audio_resampler"
    for sdk in ("ours", "official"):
        assert scenario["status"][sdk]["state"] == "ok", scenario["status"][sdk]
        assert len(scenario["runs"][sdk]) == 1
    assert scenario["metrics"]
    for metric in scenario["metrics"]:
        for sdk in ("ours", "official"):
            assert metric[sdk]["n"] == 1
            assert math.isfinite(metric[sdk]["median"])
        assert metric["ratio"] is not None
    table = (tmp_path / "latest.md").read_text()
    assert "| scenario | ours | official | ratio | target | unit | repeats | spread |" in table
    assert "AudioResampler" in table


def test_video_time_stamp_survives_a_round_trip_and_rejects_noise() -> None:
    sys.path.insert(0, str(ROOT))
    from benchmarks.scenarios.video import HEIGHT, WIDTH, paint_stamp, read_stamp

    buf = np.full(WIDTH * HEIGHT * 3 // 2, 90, dtype=np.uint8)
    paint_stamp(buf, 0xDEADBEEF)
    frame = SimpleNamespace(width=WIDTH, height=HEIGHT, data=buf.tobytes())
    assert read_stamp(frame) == 0xDEADBEEF
    noise = np.random.default_rng(0).integers(0, 256, buf.size, dtype=np.uint8)
    assert read_stamp(SimpleNamespace(width=WIDTH, height=HEIGHT, data=noise.tobytes())) is None


def test_summaries_use_the_range_for_few_runs_and_the_iqr_for_more() -> None:
    sys.path.insert(0, str(ROOT))
    from benchmarks.stats import aggregate, summarize

    few = summarize([3.0, 1.0, 2.0])
    assert few is not None
    assert (few["median"], few["spread"], few["spread_kind"]) == (2.0, 2.0, "range")
    many = summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    assert many is not None
    assert (many["median"], many["spread_kind"], many["spread"]) == (3.0, "iqr", 2.0)

    def run(value: float) -> dict[str, object]:
        metric = {"value": value, "unit": "ms", "better": "lower", "label": "x"}
        return {"status": "ok", "metrics": {"x": metric}, "samples": {}, "notes": []}

    agg = aggregate(
        {"ours": [run(2.0), run(4.0)], "official": [{"status": "error", "error": "boom"}]}
    )
    [metric] = agg["metrics"]
    assert metric["ours"]["median"] == 3.0 and metric["official"] is None
    assert metric["ratio"] is None
    assert agg["status"]["official"] == {
        "state": "error",
        "runs": 1,
        "ok_runs": 0,
        "errors": ["boom"],
        "reason": None,
        "notes": [],
    }


def test_rows_with_a_target_say_whether_they_met_it_and_why_not() -> None:
    from benchmarks.report import markdown
    from benchmarks.targets import TARGETS, Target, meets

    lower = {"name": "us_per_10ms", "better": "lower", "ratio": 2.5}
    higher = {"name": "received_pps", "better": "higher", "ratio": 1.2}
    assert meets(Target("local_apm", "us_per_10ms", 2.0), lower) is False
    assert meets(Target("local_apm", "us_per_10ms", 2.0), {**lower, "ratio": 2.0004}) is True
    assert meets(Target("data_lossy", "received_pps", 1.0), higher) is True
    assert meets(Target("data_lossy", "received_pps", 1.0), {**higher, "ratio": 0.5}) is False
    assert meets(Target("x", "y", 1.0), {**higher, "ratio": None}) is None
    assert len({(t.scenario, t.metric) for t in TARGETS}) == len(TARGETS)

    def metric(name: str, label: str, better: str, ours: float, official: float) -> dict:
        return {
            "name": name,
            "label": label,
            "better": better,
            "unit": "u",
            "ratio": ours / official,
            "ours": {"median": ours, "n": 1, "spread_rel": None},
            "official": {"median": official, "n": 1, "spread_rel": None},
        }

    ok = {"state": "ok", "errors": [], "notes": [], "runs": 1}
    results = {
        "meta": {
            "date": "d",
            "quick": True,
            "repeats": 1,
            "duration_s": 60,
            "command": "c",
            "machine": {
                "nproc": 2,
                "cpu_model": "cpu",
                "memory_gib": 1,
                "kernel": "k",
                "python": "3",
            },
            "load_before": "0",
            "load_after": "0",
            "versions": {"ours": "0", "official": "1"},
            "server_version": "v",
        },
        "scenarios": [
            {
                "name": "local_apm",
                "title": "APM",
                "status": {"ours": ok, "official": ok},
                "metrics": [metric("us_per_10ms", "10 ms", "lower", 500.0, 100.0)],
            },
            {
                "name": "data_lossy",
                "title": "Lossy",
                "status": {"ours": ok, "official": ok},
                "metrics": [
                    metric("received_pps", "pps", "higher", 2000.0, 1000.0),
                    metric("other", "untracked", "lower", 1.0, 1.0),
                ],
            },
        ],
    }
    table = markdown(results)
    assert "| APM: 10 ms | 500 | 100 | 5x | ≤ 2.0x ✗ |" in table
    assert "| Lossy: pps | 2,000 | 1,000 | 2x | ≥ 1.0x ✓ |" in table
    assert "| Lossy: untracked | 1 | 1 | 1x |  |" in table
    assert "Behind their targets:" in table
    assert "- APM: 10 ms: " in table
