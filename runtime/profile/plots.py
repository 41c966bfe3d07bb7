"""The plots of the ``edgeclf profile --html`` report (matplotlib, the ``report`` extra).

Each ``plot_*`` takes the profile's JSON result and returns an inline ``<svg>``;
the page around them is :mod:`.report`, which checks for matplotlib
(and keeps its config out of the user's home) before any plot is drawn.
matplotlib is imported inside the functions, never at import time.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

#: tab10, so the variants keep one colour across every plot
_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
_PART_COLORS = {"tokenize": "#4c9be8", "onnx": "#f28e2b", "other": "#b0b0b0"}
_PART_LABELS = {
    "tokenize": "tokenization",
    "onnx": "ONNX session",
    "other": "rest (checks, padding, softmax)",
}


def _svg(fig: Any) -> str:
    """Figure -> inline ``<svg>`` (no XML prolog, no metadata block)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"<metadata>.*?</metadata>", "", text, count=1, flags=re.S)
    return text


def _new_figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig


def _style(ax: Any) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(True, axis="y", color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)


def _seq_label(seq: int | None) -> str:
    return "real texts" if seq is None else f"{seq} tokens"


def _session_key(c: dict[str, Any], providers: Sequence[str]) -> str:
    thr = f"{c['threads']} thr"
    return f"{c['provider']} · {thr}" if len(providers) > 1 else thr


def variant_colors(variants: Sequence[str]) -> dict[str, str]:
    return {v: _COLORS[i % len(_COLORS)] for i, v in enumerate(variants)}


def plot_latency(result: dict[str, Any]) -> str:
    """Box plots of per-call latency: one panel per (sequence length, batch size), variants side by side."""
    s = result["settings"]
    configs = result["configs"]
    variants, providers = s["variants"], s["providers"]
    seqs = list(dict.fromkeys(c["seq_len"] for c in configs))
    batches = s["batch_sizes"]
    colors = variant_colors(variants)
    groups = list(dict.fromkeys(_session_key(c, providers) for c in configs))
    ncols = len(batches)
    fig = _new_figure(max(3.2 * ncols, 6.0), 2.9 * len(seqs) + 0.4)
    axes = fig.subplots(len(seqs), ncols, squeeze=False)
    for r, seq in enumerate(seqs):
        for col, bs in enumerate(batches):
            ax = axes[r][col]
            _style(ax)
            panel = [c for c in configs if c["batch_size"] == bs and c["seq_len"] == seq]
            tails = _latency_boxes(ax, panel, variants, groups, providers, colors)
            if not tails:
                continue
            ax.set_xticks(range(len(groups)), groups)
            ax.set_ylim(0, _mark_p99(ax, tails))
            title = f"batch {bs}"
            if len(seqs) > 1 or seq is None or result["bundle"]["padding"] != "max_length":
                title += f", {_seq_label(seq)}"
            ax.set_title(title, fontsize=10)
            if col == 0:
                ax.set_ylabel("ms per call")
    from matplotlib.lines import Line2D

    handles = [_patch(colors[v]) for v in variants]
    handles.append(Line2D([], [], marker="v", color="#555", linestyle="none", markersize=5))
    labels = [*variants, "p99"]
    fig.legend(handles, labels, loc="outside upper center", ncols=len(labels), frameon=False)
    return _svg(fig)


def _latency_boxes(
    ax: Any,
    panel: list[dict[str, Any]],
    variants: Sequence[str],
    groups: Sequence[str],
    providers: Sequence[str],
    colors: dict[str, str],
) -> list[tuple[float, float, float, str]]:
    """One panel's boxes, a box per (session group, variant); returns (position, p95, p99, colour) of each."""
    width = 0.8 / max(1, len(variants))
    tails: list[tuple[float, float, float, str]] = []
    for vi, v in enumerate(variants):
        data, pos = [], []
        for gi, g in enumerate(groups):
            match = [c for c in panel if c["variant"] == v and _session_key(c, providers) == g]
            if match:
                x = gi + (vi - (len(variants) - 1) / 2) * width
                samples = match[0]["latency_ms_samples"]
                data.append(samples)
                pos.append(x)
                tails.append((x, float(np.percentile(samples, 95)), match[0]["latency_ms"]["p99"], colors[v]))
        if not data:
            continue
        ax.boxplot(
            data,
            positions=pos,
            widths=width * 0.85,
            whis=(5, 95),
            showfliers=False,
            patch_artist=True,
            manage_ticks=False,
            boxprops={"facecolor": colors[v], "alpha": 0.55, "edgecolor": colors[v]},
            medianprops={"color": "black", "linewidth": 1.4},
            whiskerprops={"color": colors[v]},
            capprops={"color": colors[v]},
        )
    return tails


def _mark_p99(ax: Any, tails: list[tuple[float, float, float, str]]) -> float:
    """Mark each p99 and return the panel's y limit.

    A tail far above p95 (a busy machine) would squash the boxes, so the axis
    stops at 1.6 x the highest p95 and off-scale p99s are written at the top.
    """
    top95 = max(t[1] for t in tails)
    top99 = max(t[2] for t in tails)
    top = top99 * 1.08 if top99 <= 2.2 * top95 else 1.6 * top95
    for x, _p95, p99, color in tails:
        if p99 <= top:
            ax.plot([x], [p99], marker="v", color=color, markersize=5, linestyle="none")
        else:
            ax.plot([x], [top * 0.97], marker="^", color=color, markersize=6, linestyle="none")
            ax.annotate(
                f"p99 {p99:.3g}",
                (x, top * 0.97),
                textcoords="offset points",
                xytext=(0, -11),
                ha="center",
                fontsize=7,
                color="#333",
            )
    return top


def _patch(color: str) -> Any:
    from matplotlib.patches import Patch

    return Patch(facecolor=color, edgecolor=color, alpha=0.7)


def plot_throughput(result: dict[str, Any]) -> str:
    """Texts per second against batch size: one line per variant and thread count."""
    s = result["settings"]
    configs = result["configs"]
    variants, providers = s["variants"], s["providers"]
    colors = variant_colors(variants)
    seqs = list(dict.fromkeys(c["seq_len"] for c in configs))
    groups = list(dict.fromkeys(_session_key(c, providers) for c in configs))
    styles = ["-", "--", ":", "-."]
    markers = ["o", "s", "^", "D"]
    ncols = min(2, len(seqs))
    nrows = -(-len(seqs) // ncols)
    fig = _new_figure(11.0 if ncols > 1 else 6.5, 3.5 * nrows)
    grid = fig.subplots(nrows, ncols, squeeze=False)
    axes = [ax for row in grid for ax in row]
    for ax in axes[len(seqs) :]:
        ax.set_visible(False)
    for ax, seq in zip(axes, seqs, strict=False):
        _style(ax)
        for v in variants:
            for gi, g in enumerate(groups):
                pts = sorted(
                    (c["batch_size"], c["texts_per_s"] or 0.0)
                    for c in configs
                    if c["variant"] == v and c["seq_len"] == seq and _session_key(c, providers) == g
                )
                if not pts:
                    continue
                xs, ys = zip(*pts, strict=True)
                ax.plot(
                    xs,
                    ys,
                    linestyle=styles[gi % len(styles)],
                    marker=markers[gi % len(markers)],
                    color=colors[v],
                    label=f"{v} · {g}",
                )
        ax.set_xscale("log", base=2)
        ax.set_xticks(s["batch_sizes"], [str(b) for b in s["batch_sizes"]])
        ax.minorticks_off()
        ax.set_ylim(bottom=0)
        ax.set_xlabel("batch size (texts per call)")
        ax.set_ylabel("texts / s (at p50)")
        if len(seqs) > 1 or seq is None:
            ax.set_title(_seq_label(seq), fontsize=10)
        ax.yaxis.set_major_formatter(_thousands())
    axes[0].legend(frameon=False, fontsize=8)
    return _svg(fig)


def _thousands() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda x, _pos: f"{x:,.0f}")


def config_label(c: dict[str, Any], result: dict[str, Any]) -> str:
    s = result["settings"]
    parts = [c["variant"]]
    if len(s["providers"]) > 1:
        parts.append(c["provider"])
    parts.append(f"{c['threads']} thr")
    parts.append(f"batch {c['batch_size']}")
    if len(s["seq_lens"]) > 1 or c["seq_len"] is None:
        parts.append("real" if c["seq_len"] is None else f"L={c['seq_len']}")
    return " · ".join(parts)


def plot_breakdown(result: dict[str, Any]) -> str:
    """Per configuration: the share of a call spent tokenizing, in ONNX and in the rest."""
    configs = result["configs"]
    labels = [config_label(c, result) for c in configs]
    fig = _new_figure(9.0, 0.8 + 0.28 * len(configs))
    ax = fig.subplots()
    y = list(range(len(configs)))[::-1]
    left = [0.0] * len(configs)
    for part in ("tokenize", "onnx", "other"):
        vals = [100 * c["breakdown_share"][part] for c in configs]
        ax.barh(y, vals, left=left, color=_PART_COLORS[part], label=_PART_LABELS[part], height=0.72)
        for yi, lo, v in zip(y, left, vals, strict=True):
            if v >= 9:
                ax.text(lo + v / 2, yi, f"{v:.0f}%", ha="center", va="center", fontsize=7.5, color="#222")
        left = [a + b for a, b in zip(left, vals, strict=True)]
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlim(0, 100)
    ax.set_ylim(-0.6, len(configs) - 0.4)
    ax.set_xlabel("% of a predict_proba call (medians)")
    ax.spines[["top", "right"]].set_visible(False)
    fig.legend(loc="outside upper center", ncols=3, frameon=False, fontsize=8)
    return _svg(fig)


def plot_cold_start(result: dict[str, Any]) -> str | None:
    """Cold start split into its phases, and the process's peak memory, per session."""
    rows = [x for x in result["sessions"] if x["cold_start"].get("wall_ms") is not None]
    if not rows:
        return None
    s = result["settings"]
    labels = [
        " · ".join(
            [x["variant"], *([x["provider"]] if len(s["providers"]) > 1 else []), f"{x['threads']} thr"]
        )
        for x in rows
    ]
    fig = _new_figure(10.0, 1.2 + 0.36 * len(rows))
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[2.2, 1], sharey=True)
    y = list(range(len(rows)))[::-1]
    phases = [
        ("python start-up", lambda c: c["wall_ms"] - c["import_ms"] - c["load_ms"] - c["first_predict_ms"]),
        ("import", lambda c: c["import_ms"]),
        ("load (verify + session)", lambda c: c["load_ms"]),
        ("first prediction", lambda c: c["first_predict_ms"]),
    ]
    phase_colors = ["#c7c7c7", "#9edae5", "#1f77b4", "#d62728"]
    left = [0.0] * len(rows)
    for (name, fn), color in zip(phases, phase_colors, strict=True):
        vals = [max(0.0, fn(x["cold_start"])) for x in rows]
        ax1.barh(y, vals, left=left, color=color, label=name, height=0.66)
        left = [a + b for a, b in zip(left, vals, strict=True)]
    for yi, total in zip(y, left, strict=True):
        ax1.text(total, yi, f" {total:,.0f} ms", va="center", fontsize=8)
    ax1.set_xlim(0, max(left) * 1.2)
    ax1.set_yticks(y, labels, fontsize=8)
    ax1.set_xlabel("cold start, ms (median wall time of a fresh process)")
    fig.legend(loc="outside upper center", ncols=4, frameon=False, fontsize=8)
    rss = [x["cold_start"].get("peak_rss_mib") or 0.0 for x in rows]
    colors = variant_colors(s["variants"])
    ax2.barh(y, rss, color=[colors.get(x["variant"], "#777") for x in rows], height=0.66, alpha=0.8)
    for yi, v in zip(y, rss, strict=True):
        ax2.text(v, yi, f" {v:.0f}", va="center", fontsize=8)
    ax2.set_xlim(0, max([*rss, 1.0]) * 1.25)
    ax2.set_xlabel("peak RSS, MiB")
    for ax in (ax1, ax2):
        ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def plot_seq_len(result: dict[str, Any]) -> str | None:
    """p50 latency per text against sequence length (padding="longest" bundles with 2+ lengths)."""
    configs = [c for c in result["configs"] if c["seq_len"] is not None]
    seqs = sorted({c["seq_len"] for c in configs})
    if result["bundle"]["padding"] == "max_length" or len(seqs) < 2:
        return None
    s = result["settings"]
    colors = variant_colors(s["variants"])
    fig = _new_figure(7.5, 3.6)
    ax = fig.subplots()
    _style(ax)
    styles = ["-", "--", ":", "-."]
    for v in s["variants"]:
        for bi, bs in enumerate(s["batch_sizes"]):
            # the fastest thread count / provider for this variant, batch and length
            pts = []
            for L in seqs:
                match = [
                    c["latency_ms"]["p50"] / bs
                    for c in configs
                    if c["variant"] == v and c["batch_size"] == bs and c["seq_len"] == L
                ]
                if match:
                    pts.append((L, min(match)))
            if pts:
                xs, ys = zip(*pts, strict=True)
                ax.plot(
                    xs,
                    ys,
                    color=colors[v],
                    linestyle=styles[bi % len(styles)],
                    marker="o",
                    label=f"{v} · b={bs}",
                )
    ax.set_xticks(seqs, [str(x) for x in seqs])
    ax.set_ylim(bottom=0)
    ax.set_xlabel("sequence length (tokens)")
    ax.set_ylabel("ms per text (p50, best threads)")
    ax.legend(frameon=False, fontsize=8, ncols=2)
    return _svg(fig)
