"""The outputs of a run: the markdown table, PNG plots, and the results section of the docs."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from benchmarks import SDKS
from benchmarks.targets import meets, target_for

DOCS_BEGIN = "<!-- benchmark-results:begin -->"
DOCS_END = "<!-- benchmark-results:end -->"
SCENARIOS_BEGIN = "<!-- benchmark-scenarios:begin -->"
SCENARIOS_END = "<!-- benchmark-scenarios:end -->"

LATENCY_PLOTS = [  # (scenario, samples, title)
    ("connect_latency", "connect_ms", "Connect: Room() to connected"),
    ("audio_latency", "latency_ms", "Audio mouth to ear"),
    ("video_vp8", "latency_ms", "Video frame latency, VP8"),
    ("video_h264", "latency_ms", "Video frame latency, H.264"),
    ("rpc", "rtt_ms", "RPC round trip"),
]


def fmt(value: float | None) -> str:
    """Three significant digits, without scientific notation for everyday magnitudes."""
    if value is None or not math.isfinite(value):
        return "-"
    if float(value).is_integer():
        return f"{value:,.0f}"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    digits = max(0, 2 - math.floor(math.log10(magnitude)))
    return f"{value:.{digits}f}"


def _cell(scenario: dict[str, Any], metric: dict[str, Any], sdk: str) -> str:
    summary = metric.get(sdk)
    if summary:
        return fmt(summary["median"])
    state = scenario["status"][sdk]["state"]
    return {"unavailable": "n/a", "error": "failed", "not run": "-"}.get(state, "-")


def _spread(metric: dict[str, Any]) -> str:
    parts = []
    for sdk in SDKS:
        s = metric.get(sdk)
        if not s or s["n"] < 2 or s["spread_rel"] is None:
            parts.append("-")
        else:
            parts.append(f"{100 * s['spread_rel']:.0f}%")
    return " / ".join(parts)


def _ratio(metric: dict[str, Any]) -> str:
    ratio = metric.get("ratio")
    if ratio is None:
        return "-"
    return f"{fmt(ratio)}x"


def _target(scenario: dict[str, Any], metric: dict[str, Any]) -> tuple[str, str | None]:
    """The target cell of a row, and the note for a row behind its target (else None)."""
    target = target_for(scenario["name"], metric["name"])
    if target is None:
        return "", None
    factor = target.limit if metric["better"] == "lower" else 1 / target.limit
    shown = f"{factor:.1f}" if round(factor, 1) == factor else f"{factor:.2f}"
    cell = f"{'≤' if metric['better'] == 'lower' else '≥'} {shown}x"
    met = meets(target, metric)
    if met is None:
        return cell, None
    if met:
        return f"{cell} ✓", None
    why = target.behind or "not explained for this run"
    return f"{cell} ✗", f"{scenario['title']}: {metric['label']}: {why}"


def machine_line(meta: dict[str, Any]) -> str:
    m = meta["machine"]
    return (
        f"{m['nproc']} cores, {m['cpu_model']}, {m['memory_gib']:.0f} GiB RAM, "
        f"Linux {m['kernel']}, Python {m['python']}"
    )


def markdown(results: dict[str, Any]) -> str:
    """The results table and what produced it."""
    meta = results["meta"]
    lines = [
        f"Run of {meta['date']} ({'quick' if meta['quick'] else 'full'} mode, "
        f"{meta['repeats']} repeat(s) per SDK, {meta['duration_s'] / 60:.1f} min), "
        f"`{meta['command']}`",
        "",
        f"Machine: {machine_line(meta)}; load average {meta['load_before']} before, "
        f"{meta['load_after']} after.",
        "",
        f"SDKs: ours = livekit-py {meta['versions']['ours']}, official = livekit "
        f"{meta['versions']['official']}; livekit-server {meta['server_version']}.",
        "",
        "| scenario | ours | official | ratio | target | unit | repeats | spread |",
        "| --- | ---: | ---: | ---: | :---: | --- | :---: | :---: |",
    ]
    footnotes: list[str] = []
    behind: list[str] = []
    for scenario in results["scenarios"]:
        status = scenario["status"]
        title = scenario["title"]
        if not scenario["metrics"]:
            cells = []
            for sdk in SDKS:
                st = status[sdk]
                cells.append({"unavailable": "n/a", "error": "failed"}.get(st["state"], "-"))
            lines.append(f"| {title} | {cells[0]} | {cells[1]} | - | | | 0 / 0 | |")
        for metric in scenario["metrics"]:
            arrow = "↓" if metric["better"] == "lower" else "↑"
            repeats = " / ".join(str(metric[sdk]["n"] if metric.get(sdk) else 0) for sdk in SDKS)
            target, note = _target(scenario, metric)
            if note is not None:
                behind.append(note)
            lines.append(
                f"| {title}: {metric['label']} | {_cell(scenario, metric, 'ours')} "
                f"| {_cell(scenario, metric, 'official')} | {_ratio(metric)} | {target} "
                f"| {metric['unit']} {arrow} | {repeats} | {_spread(metric)} |"
            )
        for sdk in SDKS:
            st = status[sdk]
            if st["state"] == "unavailable":
                footnotes.append(f"{title}, {sdk}: {st['reason']}")
            for error in st["errors"]:
                footnotes.append(f"{title}, {sdk}: failed run: {error}")
            which = f" (run 1 of {st['runs']})" if st["runs"] > 1 else ""
            for note in st["notes"]:
                footnotes.append(f"{title}, {sdk}{which}: {note}")
    lines += [
        "",
        "ratio = ours / official (medians). ↓ lower is better, ↑ higher is better. "
        "repeats = successful runs (ours / official). spread = interquartile range "
        "(4 runs or more) or full range (fewer), relative to the median (ours / official). "
        "target = the ratio the row should reach (benchmarks/targets.py), ✓ met, ✗ missed.",
    ]
    if behind:
        lines += ["", "Behind their targets:", ""] + [f"- {b}" for b in behind]
    if footnotes:
        lines += ["", "Notes:", ""] + [f"- {f}" for f in footnotes]
    return "\n".join(lines) + "\n"


def write_markdown(results: dict[str, Any], path: Path) -> None:
    path.write_text("# Benchmark results: livekit-py vs the official SDK\n\n" + markdown(results))


# -- plots ------------------------------------------------------------------------------------


def _flat(runs: list[list[float]]) -> list[float]:
    return [v for run in runs for v in run]


def write_plots(results: dict[str, Any], out: Path) -> list[str]:
    """PNG plots next to the JSON; returns their file names (none without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    colors = {"ours": "#1f77b4", "official": "#ff7f0e"}
    by_name = {s["name"]: s for s in results["scenarios"]}
    written = []

    panels = []
    for scenario, key, title in LATENCY_PLOTS:
        samples = by_name.get(scenario, {}).get("samples", {}).get(key)
        if samples and any(samples.get(sdk) for sdk in SDKS):
            panels.append((title, samples))
    if panels:
        cols = min(3, len(panels))
        rows = math.ceil(len(panels) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.6 * rows), squeeze=False)
        for ax, (title, samples) in zip(axes.flat, panels, strict=False):
            data = [_flat(samples.get(sdk, [])) for sdk in SDKS]
            present = [(sdk, d) for sdk, d in zip(SDKS, data, strict=True) if d]
            box = ax.boxplot(
                [d for _, d in present],
                tick_labels=[f"{sdk}\n(n={len(d)})" for sdk, d in present],
                patch_artist=True,
                showfliers=True,
                widths=0.5,
            )
            for patch, (sdk, _) in zip(box["boxes"], present, strict=True):
                patch.set_facecolor(colors[sdk])
                patch.set_alpha(0.5)
            ax.set_title(title, fontsize=10)
            ax.set_ylabel(samples["unit"])
            ax.grid(axis="y", alpha=0.3)
            low = min(min(d) for _, d in present)
            high = max(max(d) for _, d in present)
            if low > 0 and high / low > 20:
                ax.set_yscale("log")
        for ax in list(axes.flat)[len(panels) :]:
            ax.axis("off")
        fig.suptitle("Latency distributions (all runs pooled)", fontsize=11)
        fig.tight_layout()
        fig.savefig(out / "latency.png", dpi=110)
        plt.close(fig)
        written.append("latency.png")

    bars = []
    for scenario in results["scenarios"]:
        for metric in scenario["metrics"]:
            ratio = metric.get("ratio")
            if ratio and ratio > 0 and math.isfinite(ratio):
                better = ratio < 1 if metric["better"] == "lower" else ratio > 1
                label = f"{scenario['title']}: {metric['label']}"
                if len(label) > 58:
                    label = label[:55] + "..."
                bars.append((label, ratio, better))
    if bars:
        fig, ax = plt.subplots(figsize=(11, 0.32 * len(bars) + 1.4))
        ys = list(range(len(bars)))[::-1]
        ax.barh(
            ys,
            [math.log10(r) for _, r, _ in bars],
            color=["#2ca02c" if good else "#d62728" for _, _, good in bars],
            alpha=0.75,
        )
        ax.set_yticks(ys, [label for label, _, _ in bars], fontsize=7)
        ax.axvline(0, color="black", linewidth=0.8)
        ticks = [t for t in (-3, -2, -1, 0, 1, 2, 3)]
        ax.set_xticks(ticks, [f"{10.0**t:g}x" for t in ticks])
        span = max(1.0, max(abs(math.log10(r)) for _, r, _ in bars) * 1.15)
        ax.set_xlim(-span, span)
        for y, (_, r, _) in zip(ys, bars, strict=True):
            # at the 1x line, on the side away from the bar
            ax.text(0, y, f" {fmt(r)}x ", va="center", ha="right" if r >= 1 else "left", fontsize=7)
        ax.set_xlabel("ours / official (log scale); green: ours better, red: official better")
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "ratios.png", dpi=110)
        plt.close(fig)
        written.append("ratios.png")

    resource_panels = []
    churn = by_name.get("connect_churn", {}).get("samples", {}).get("rss_mb")
    if churn and any(churn.get(sdk) for sdk in SDKS):
        resource_panels.append(("churn", churn))
    ramp = by_name.get("audio_capacity", {}).get("samples", {})
    if ramp.get("ramp_tracks"):
        resource_panels.append(("ramp", ramp))
    if resource_panels:
        fig, axes = plt.subplots(1, len(resource_panels), figsize=(5.2 * len(resource_panels), 3.6))
        axes_list = [axes] if len(resource_panels) == 1 else list(axes)
        for ax, (kind, data) in zip(axes_list, resource_panels, strict=True):
            if kind == "churn":
                for sdk in SDKS:
                    for i, run in enumerate(data.get(sdk, [])):
                        ax.plot(
                            range(1, len(run) + 1),
                            run,
                            color=colors[sdk],
                            label=sdk if i == 0 else None,
                        )
                ax.set_title("RSS during connect/disconnect cycles", fontsize=10)
                ax.set_xlabel("cycles")
                ax.set_ylabel("MiB")
            else:
                for sdk in SDKS:
                    runs = zip(
                        data["ramp_tracks"].get(sdk, []),
                        data.get("ramp_worst_gap_ms", {}).get(sdk, []),
                        strict=False,
                    )
                    for i, (tracks, gaps) in enumerate(runs):
                        ax.plot(
                            tracks,
                            gaps,
                            marker="o",
                            color=colors[sdk],
                            label=sdk if i == 0 else None,
                        )
                ax.axhline(300, color="grey", linestyle="--", linewidth=0.8)
                ax.set_title("Subscribed audio tracks: longest gap of the worst", fontsize=9)
                ax.set_xlabel("subscribed tracks")
                ax.set_ylabel("ms (limit 300)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "resources.png", dpi=110)
        plt.close(fig)
        written.append("resources.png")
    return written


# -- docs -------------------------------------------------------------------------------------


def scenario_docs() -> str:
    """One paragraph per scenario, from the scenarios' own descriptions."""
    from benchmarks.scenarios import all_scenarios

    parts = []
    for scenario in all_scenarios():
        where = "no server" if not scenario.needs_server else "through the server"
        parts.append(f"### {scenario.title} (`{scenario.name}`, {where})\n\n{scenario.doc}\n")
    return "\n".join(parts)


def _replace(text: str, begin: str, end: str, body: str) -> str:
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    return pattern.sub(lambda _: f"{begin}\n{body}{end}", text, count=1)


def update_docs(results: dict[str, Any], docs: Path, out: Path, plots: list[str]) -> bool:
    """Rewrite the scenario and results sections of ``docs`` (between their markers)."""
    if not docs.exists():
        return False
    text = docs.read_text()
    if DOCS_BEGIN not in text or DOCS_END not in text:
        return False
    try:
        rel = Path("..") / out.resolve().relative_to(docs.resolve().parent.parent)
    except ValueError:
        rel = out.resolve()
    images = "".join(f"\n![{Path(p).stem}]({(rel / p).as_posix()})\n" for p in plots)
    text = _replace(text, DOCS_BEGIN, DOCS_END, markdown(results) + images)
    if SCENARIOS_BEGIN in text and SCENARIOS_END in text:
        text = _replace(text, SCENARIOS_BEGIN, SCENARIOS_END, scenario_docs())
    docs.write_text(text)
    return True
