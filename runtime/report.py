"""The HTML report of ``edgeclf profile --html``: one self-contained file with plots.

Why a separate module: plotting needs matplotlib, which the slim runtime must
never require. It is the optional ``report`` extra, imported here lazily and
only when a report is asked for; :func:`require_matplotlib` turns its absence
into one clear instruction.

The page is built from the profile's JSON result alone (:func:`render_html`),
so a report can be re-rendered from a saved ``--json`` file. Plots are
matplotlib SVGs inlined into the HTML with text as paths: no scripts, no
fonts, no links to fetch, so the file opens anywhere, offline, and can be
attached to an issue or a pull request as it is.
"""

from __future__ import annotations

import html
import io
import os
import re
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

INSTALL_HINT = "pip install 'edgeclf[report]'"

#: tab10, so the variants keep one colour across every plot
_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
_PART_COLORS = {"tokenize": "#4c9be8", "onnx": "#f28e2b", "other": "#b0b0b0"}
_PART_LABELS = {
    "tokenize": "tokenization",
    "onnx": "ONNX session",
    "other": "rest (checks, padding, softmax)",
}


class MissingExtra(ImportError):
    """matplotlib is not installed (the ``report`` extra)."""


def require_matplotlib() -> None:
    """Fail fast, before minutes of profiling, when the report cannot be drawn."""
    _private_matplotlib_config()
    try:
        import matplotlib  # noqa: F401
        from matplotlib.figure import Figure  # noqa: F401
    except ImportError:
        raise MissingExtra(f"the HTML report needs matplotlib: {INSTALL_HINT}") from None


def _private_matplotlib_config() -> None:
    """Keep matplotlib's config and font cache out of the user's home.

    Imported with its defaults, matplotlib creates ``~/.config/matplotlib``
    and writes a font cache to ``~/.cache/matplotlib`` (seen with strace,
    tests/test_privacy_syscalls.py): files the user did not ask for. Unless
    the user chose a ``MPLCONFIGDIR`` or matplotlib is already loaded, point
    it at a temporary directory removed at exit (costs a font scan, ~1-2 s).
    """
    if "MPLCONFIGDIR" in os.environ or "matplotlib" in sys.modules:
        return
    import atexit
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="edgeclf-matplotlib-")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    os.environ["MPLCONFIGDIR"] = path


# ------------------------------------------------------------------ plots


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


def _variant_colors(variants: Sequence[str]) -> dict[str, str]:
    return {v: _COLORS[i % len(_COLORS)] for i, v in enumerate(variants)}


def plot_latency(result: dict[str, Any]) -> str:
    """Box plots of per-call latency: one panel per (sequence length, batch size), variants side by side."""
    s = result["settings"]
    configs = result["configs"]
    variants, providers = s["variants"], s["providers"]
    seqs = list(dict.fromkeys(c["seq_len"] for c in configs))
    batches = s["batch_sizes"]
    colors = _variant_colors(variants)
    groups = list(dict.fromkeys(_session_key(c, providers) for c in configs))
    ncols = len(batches)
    fig = _new_figure(max(3.2 * ncols, 6.0), 2.9 * len(seqs) + 0.4)
    axes = fig.subplots(len(seqs), ncols, squeeze=False)
    width = 0.8 / max(1, len(variants))
    for r, seq in enumerate(seqs):
        for col, bs in enumerate(batches):
            ax = axes[r][col]
            _style(ax)
            tails: list[tuple[float, float, float, str]] = []  # position, p95, p99, colour
            for vi, v in enumerate(variants):
                data, pos = [], []
                for gi, g in enumerate(groups):
                    match = [
                        c
                        for c in configs
                        if c["variant"] == v
                        and c["batch_size"] == bs
                        and c["seq_len"] == seq
                        and _session_key(c, providers) == g
                    ]
                    if match:
                        x = gi + (vi - (len(variants) - 1) / 2) * width
                        samples = match[0]["latency_ms_samples"]
                        data.append(samples)
                        pos.append(x)
                        tails.append(
                            (x, float(np.percentile(samples, 95)), match[0]["latency_ms"]["p99"], colors[v])
                        )
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
            if not tails:
                continue
            # p99 as a marker; a tail far above p95 (a busy machine) would squash the boxes,
            # so the axis stops at 1.6 x the highest p95 and off-scale p99s are written at the top
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
            ax.set_xticks(range(len(groups)), groups)
            ax.set_ylim(0, top)
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


def _patch(color: str) -> Any:
    from matplotlib.patches import Patch

    return Patch(facecolor=color, edgecolor=color, alpha=0.7)


def plot_throughput(result: dict[str, Any]) -> str:
    """Texts per second against batch size: one line per variant and thread count."""
    s = result["settings"]
    configs = result["configs"]
    variants, providers = s["variants"], s["providers"]
    colors = _variant_colors(variants)
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


def _config_label(c: dict[str, Any], result: dict[str, Any]) -> str:
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
    labels = [_config_label(c, result) for c in configs]
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
    colors = _variant_colors(s["variants"])
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
    colors = _variant_colors(s["variants"])
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


# ------------------------------------------------------------------ page


def _e(x: Any) -> str:
    return html.escape(str(x))


def _num(x: float | None, spec: str) -> str:
    return "–" if x is None else format(x, spec)


def _summary_rows(result: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    """Variants side by side: the few numbers that decide which one to ship."""
    s, b = result["settings"], result["bundle"]
    rows: list[tuple[str, dict[str, str]]] = []
    by_v: dict[str, list[dict[str, Any]]] = {
        v: [c for c in result["configs"] if c["variant"] == v] for v in s["variants"]
    }
    sess: dict[str, list[dict[str, Any]]] = {
        v: [x for x in result["sessions"] if x["variant"] == v] for v in s["variants"]
    }

    def best(cs: list[dict[str, Any]], key: Any, reverse: bool = False) -> dict[str, Any] | None:
        cs = [c for c in cs if key(c) is not None]
        return (max if reverse else min)(cs, key=key) if cs else None

    size = {v: f"{b['variants'][v]['size_bytes'] / 1024:,.0f} KiB" for v in s["variants"]}
    rows.append(("model file", size))
    smallest = min(s["batch_sizes"])
    lat, p99, thr = {}, {}, {}
    for v, cs in by_v.items():
        one = best([c for c in cs if c["batch_size"] == smallest], lambda c: c["latency_ms"]["p50"])
        lat[v] = f"{one['latency_ms']['p50']:.3f} ms ({one['threads']} thr)" if one else "–"
        p99[v] = f"{one['latency_ms']['p99']:.3f} ms" if one else "–"
        top = best(cs, lambda c: c["texts_per_s"], reverse=True)
        thr[v] = (
            f"{top['texts_per_s']:,.0f} ({_config_label(top, result).split(' · ', 1)[1]})" if top else "–"
        )
    rows.append((f"p50 latency, batch {smallest} (best threads)", lat))
    rows.append(("p99 latency, same configuration", p99))
    rows.append(("best throughput, texts/s", thr))
    create, cold, rss = {}, {}, {}
    for v, xs in sess.items():
        create[v] = f"{min(x['session_create_ms'] for x in xs):.1f} ms" if xs else "–"
        colds = [x["cold_start"]["wall_ms"] for x in xs if x["cold_start"].get("wall_ms") is not None]
        cold[v] = f"{min(colds):,.0f} ms" if colds else "not measured"
        rs = [x["cold_start"]["peak_rss_mib"] for x in xs if x["cold_start"].get("peak_rss_mib")]
        rss[v] = f"{max(rs):.0f} MiB" if rs else "not measured"
    rows.append(("session creation", create))
    rows.append(("cold start (fresh process)", cold))
    rows.append(("peak RSS (cold start)", rss))
    return rows


_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d1d1f;
       max-width: 1120px; margin: 0 auto; padding: 24px 28px 60px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; } h2 { font-size: 19px; margin: 34px 0 8px; border-bottom: 1px solid #e3e3e3; padding-bottom: 4px; }
.sub { color: #555; margin: 0 0 14px; }
.note { background: #fff6e0; border: 1px solid #f0c36d; border-radius: 6px; padding: 8px 12px; margin: 10px 0; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0 10px; }
th, td { padding: 4px 9px; border-bottom: 1px solid #ececec; text-align: right; white-space: nowrap; }
th { background: #f6f6f6; font-weight: 600; } td.l, th.l { text-align: left; }
table.summary td, table.summary th { font-size: 14px; padding: 6px 14px; }
.how { color: #444; font-size: 14px; margin: 4px 0 8px; }
figure { margin: 8px 0 18px; } svg { max-width: 100%; height: auto; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 5px; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; font-size: 13px; }
dl.kv dt { color: #666; } dl.kv dd { margin: 0; }
code { background: #f3f3f3; padding: 1px 4px; border-radius: 3px; font-size: 13px; }
footer { margin-top: 40px; color: #888; font-size: 12px; }
"""


def render_html(result: dict[str, Any]) -> str:
    """The whole report page for a profile result (the ``--json`` document)."""
    require_matplotlib()
    import matplotlib

    m, b, s = result["machine"], result["bundle"], result["settings"]
    colors = _variant_colors(s["variants"])
    with matplotlib.rc_context({"svg.fonttype": "path", "font.size": 9, "axes.titleweight": "bold"}):
        fig_latency = plot_latency(result)
        fig_thr = plot_throughput(result)
        fig_seq = plot_seq_len(result)
        fig_break = plot_breakdown(result)
        fig_cold = plot_cold_start(result)

    out: list[str] = []
    w = out.append
    w("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>")
    w("<meta name='viewport' content='width=device-width, initial-scale=1'>")
    w(f"<title>edgeclf profile: {_e(b['name'])}</title><style>{_CSS}</style></head><body>")
    w(f"<h1>Latency profile: {_e(b['name'])}</h1>")
    w(
        f"<p class='sub'>{_e(m['cpu_model'])}, {_e(m['usable_cores'])} usable cores, {_e(m['system'])} "
        f"{_e(m['machine'])}, onnxruntime {_e(m['onnxruntime'])} · {_e(result['created'])}</p>"
    )
    for n in result.get("notes", []):
        w(f"<div class='note'>⚠ {_e(n)}</div>")

    w("<h2>Variants side by side</h2>")
    w("<table class='summary'><tr><th class='l'></th>")
    for v in s["variants"]:
        w(f"<th><span class='swatch' style='background:{colors[v]}'></span>{_e(v)}</th>")
    w("</tr>")
    for label, vals in _summary_rows(result):
        w(f"<tr><td class='l'>{_e(label)}</td>" + "".join(f"<td>{_e(vals[v])}</td>" for v in s["variants"]))
        w("</tr>")
    w("</table>")
    w(
        f"<p class='how'>Texts: {_e(s['texts'])}. Each configuration ran {s['warmup']} warm-up calls, then "
        f"timed calls for {s['budget_s']:g} s (at least {s['min_runs']}). Padding: <code>{_e(b['padding'])}</code>, "
        f"max_length {b['max_length']}, tokenizer <code>{_e(b['tokenizer'])}</code>.</p>"
    )

    w("<h2>Latency per call</h2>")
    w(
        "<p class='how'>One <code>predict_proba</code> call on a batch, end to end (tokenization included). "
        "Box: p25–p75 with the median as a black line; whiskers: p5–p95; ▼ marks the p99 (▲ with its "
        "value when it is off the scale). Lower is better; a long upper whisker or a high p99 means jitter "
        "(other processes, frequency scaling), which is what a latency budget has to absorb.</p>"
    )
    w(f"<figure>{fig_latency}</figure>")
    w("<h2>Throughput against batch size</h2>")
    w(
        "<p class='how'>Texts per second at the median latency (batch size ÷ p50). Bigger batches amortise "
        "per-call overhead until the model's own compute dominates; where the curve flattens, a bigger batch "
        "only adds latency.</p>"
    )
    w(f"<figure>{fig_thr}</figure>")
    if fig_seq:
        w("<h2>Latency against sequence length</h2>")
        w(
            "<p class='how'>Milliseconds per text at the median, on texts of exactly that many tokens "
            "(windows of real texts), the fastest thread count for each point. Compute grows with the length "
            "(attention with its square); <code>padding: longest</code> bundles pay for the longest text of each batch.</p>"
        )
        w(f"<figure>{fig_seq}</figure>")
    w("<h2>Where the time goes</h2>")
    w(
        "<p class='how'>Medians of each part of a call: the tokenizer (pure Python), the ONNX session's "
        "<code>run</code>, and the rest (input checks, padding, feeds, sigmoid/softmax, Python overhead). "
        "A large tokenization share means a faster model variant will not help much.</p>"
    )
    w(f"<figure>{fig_break}</figure>")
    w("<h2>Cold start and memory</h2>")
    if fig_cold:
        w(
            "<p class='how'>A fresh <code>python -c</code> that imports edgeclf, loads the bundle (verifying "
            "checksums, building the tokenizer and the session) and classifies one text: what a CLI call or "
            "a serverless function pays. Peak RSS is that process's high-water mark.</p>"
        )
        w(f"<figure>{fig_cold}</figure>")
    else:
        w("<p class='how'>Not measured (<code>--cold-runs 0</code>).</p>")

    w("<h2>All configurations</h2>")
    w(
        "<table><tr><th class='l'>variant</th><th class='l'>provider</th><th>threads</th><th>batch</th>"
        "<th>seq</th><th>tokens (mean)</th><th>runs</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th>"
        "<th>texts/s</th><th>tokenize</th><th>ONNX</th><th>rest</th></tr>"
    )
    for c in result["configs"]:
        lat, sh = c["latency_ms"], c["breakdown_share"]
        seq = "real" if c["seq_len"] is None else c["seq_len"]
        w(
            f"<tr><td class='l'>{_e(c['variant'])}</td><td class='l'>{_e(c['provider'])}</td>"
            f"<td>{c['threads']}</td><td>{c['batch_size']}</td><td>{_e(seq)}</td>"
            f"<td>{c['tokens_mean']:.0f}</td><td>{c['runs']:,}</td><td>{lat['p50']:.3f}</td>"
            f"<td>{lat['p90']:.3f}</td><td>{lat['p99']:.3f}</td><td>{_num(c['texts_per_s'], ',.0f')}</td>"
            f"<td>{sh['tokenize']:.0%}</td><td>{sh['onnx']:.0%}</td><td>{sh['other']:.0%}</td></tr>"
        )
    w("</table>")
    w(
        "<table><tr><th class='l'>variant</th><th class='l'>provider</th><th>threads</th><th>file KiB</th>"
        "<th>session creation ms</th><th>cold start ms</th><th>import ms</th><th>load ms</th>"
        "<th>first prediction ms</th><th>peak RSS MiB</th></tr>"
    )
    for x in result["sessions"]:
        c = x["cold_start"]
        w(
            f"<tr><td class='l'>{_e(x['variant'])}</td><td class='l'>{_e(x['provider'])}</td>"
            f"<td>{x['threads']}</td><td>{x['model_bytes'] / 1024:,.0f}</td><td>{x['session_create_ms']:.1f}</td>"
            f"<td>{_num(c.get('wall_ms'), ',.0f')}</td><td>{_num(c.get('import_ms'), ',.0f')}</td>"
            f"<td>{_num(c.get('load_ms'), ',.0f')}</td><td>{_num(c.get('first_predict_ms'), '.1f')}</td>"
            f"<td>{_num(c.get('peak_rss_mib'), '.1f')}</td></tr>"
        )
    w("</table>")

    w("<h2>Machine and settings</h2><dl class='kv'>")
    mem = m.get("memory_bytes")
    facts = [
        ("CPU", m["cpu_model"]),
        ("cores", f"{m['usable_cores']} usable of {m['cpu_count']}"),
        ("memory", f"{mem / 2**30:.1f} GiB" if mem else "?"),
        ("platform", m["platform"]),
        ("load average at start", ", ".join(map(str, m["load_average"] or [])) or "?"),
        ("python / numpy / onnxruntime", f"{m['python']} / {m['numpy']} / {m['onnxruntime']}"),
        ("providers available", ", ".join(m["providers_available"])),
        ("edgeclf", m["edgeclf"]),
        ("bundle", b["location"]),
        ("command", result.get("command") or "edgeclf profile"),
    ]
    for k, v in facts:
        w(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>")
    w("</dl>")
    w(
        "<footer>Generated by <code>edgeclf profile --html</code>. Everything on this page is in the file: "
        "no scripts, fonts or links to load.</footer></body></html>"
    )
    return "\n".join(out)


def write_html(result: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Render and write atomically (a temporary file renamed), so a crash leaves no half page."""
    text = render_html(result)
    target = os.fspath(path)
    tmp = f"{target}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
