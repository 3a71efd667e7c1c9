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
    assert "| scenario | ours | official | ratio | unit | repeats | spread |" in table
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
