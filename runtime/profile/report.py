"""The HTML report of ``edgeclf profile --html``: one self-contained file with plots.

Why a separate module: plotting needs matplotlib, which the slim runtime must
never require. It is the optional ``report`` extra, imported here lazily and
only when a report is asked for; :func:`require_matplotlib` turns its absence
into one clear instruction.

The page is built from the profile's JSON result alone (:func:`render_html`),
so a report can be re-rendered from a saved ``--json`` file. Plots are
matplotlib SVGs inlined into the HTML with text as paths: no scripts, no
fonts, no links to fetch, so the file opens anywhere, offline, and can be
attached to an issue or a pull request as it is. The plots themselves are in
:mod:`.plots`; this module is the page around them.
"""

from __future__ import annotations

import html
import os
import sys
from typing import Any

from ..output import write_atomic
from .plots import (
    config_label,
    plot_breakdown,
    plot_cold_start,
    plot_latency,
    plot_seq_len,
    plot_throughput,
    variant_colors,
)

INSTALL_HINT = "pip install 'edgeclf[report]'"


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
        thr[v] = f"{top['texts_per_s']:,.0f} ({config_label(top, result).split(' · ', 1)[1]})" if top else "–"
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

    with matplotlib.rc_context({"svg.fonttype": "path", "font.size": 9, "axes.titleweight": "bold"}):
        figures = {
            "latency": plot_latency(result),
            "throughput": plot_throughput(result),
            "seq_len": plot_seq_len(result),
            "breakdown": plot_breakdown(result),
            "cold": plot_cold_start(result),
        }
    out = _page_head(result) + _summary(result) + _plot_sections(figures)
    out += _config_table(result) + _session_table(result) + _machine(result)
    out.append(
        "<footer>Generated by <code>edgeclf profile --html</code>. Everything on this page is in the file: "
        "no scripts, fonts or links to load.</footer></body></html>"
    )
    return "\n".join(out)


def _page_head(result: dict[str, Any]) -> list[str]:
    """Title, the machine in one line, and the notes."""
    m, b = result["machine"], result["bundle"]
    out = [
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>edgeclf profile: {_e(b['name'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>Latency profile: {_e(b['name'])}</h1>",
        f"<p class='sub'>{_e(m['cpu_model'])}, {_e(m['usable_cores'])} usable cores, {_e(m['system'])} "
        f"{_e(m['machine'])}, onnxruntime {_e(m['onnxruntime'])} · {_e(result['created'])}</p>",
    ]
    out += [f"<div class='note'>⚠ {_e(n)}</div>" for n in result.get("notes", [])]
    return out


def _summary(result: dict[str, Any]) -> list[str]:
    """The variants side by side, and how the texts were run."""
    b, s = result["bundle"], result["settings"]
    colors = variant_colors(s["variants"])
    out = ["<h2>Variants side by side</h2>", "<table class='summary'><tr><th class='l'></th>"]
    for v in s["variants"]:
        out.append(f"<th><span class='swatch' style='background:{colors[v]}'></span>{_e(v)}</th>")
    out.append("</tr>")
    for label, vals in _summary_rows(result):
        out.append(
            f"<tr><td class='l'>{_e(label)}</td>" + "".join(f"<td>{_e(vals[v])}</td>" for v in s["variants"])
        )
        out.append("</tr>")
    out.append("</table>")
    out.append(
        f"<p class='how'>Texts: {_e(s['texts'])}. Each configuration ran {s['warmup']} warm-up calls, then "
        f"timed calls for {s['budget_s']:g} s (at least {s['min_runs']}). Padding: <code>{_e(b['padding'])}</code>, "
        f"max_length {b['max_length']}, tokenizer <code>{_e(b['tokenizer'])}</code>.</p>"
    )
    return out


def _plot_sections(figures: dict[str, str | None]) -> list[str]:
    """Each plot under its heading, with a paragraph on how to read it."""
    out = ["<h2>Latency per call</h2>", f"<p class='how'>{_HOW_LATENCY}</p>"]
    out.append(f"<figure>{figures['latency']}</figure>")
    out += ["<h2>Throughput against batch size</h2>", f"<p class='how'>{_HOW_THROUGHPUT}</p>"]
    out.append(f"<figure>{figures['throughput']}</figure>")
    if figures["seq_len"]:
        out += ["<h2>Latency against sequence length</h2>", f"<p class='how'>{_HOW_SEQ_LEN}</p>"]
        out.append(f"<figure>{figures['seq_len']}</figure>")
    out += ["<h2>Where the time goes</h2>", f"<p class='how'>{_HOW_BREAKDOWN}</p>"]
    out.append(f"<figure>{figures['breakdown']}</figure>")
    out.append("<h2>Cold start and memory</h2>")
    if figures["cold"]:
        out += [f"<p class='how'>{_HOW_COLD}</p>", f"<figure>{figures['cold']}</figure>"]
    else:
        out.append("<p class='how'>Not measured (<code>--cold-runs 0</code>).</p>")
    return out


_HOW_LATENCY = (
    "One <code>predict_proba</code> call on a batch, end to end (tokenization included). "
    "Box: p25–p75 with the median as a black line; whiskers: p5–p95; ▼ marks the p99 (▲ with its "
    "value when it is off the scale). Lower is better; a long upper whisker or a high p99 means jitter "
    "(other processes, frequency scaling), which is what a latency budget has to absorb."
)
_HOW_THROUGHPUT = (
    "Texts per second at the median latency (batch size ÷ p50). Bigger batches amortise "
    "per-call overhead until the model's own compute dominates; where the curve flattens, a bigger batch "
    "only adds latency."
)
_HOW_SEQ_LEN = (
    "Milliseconds per text at the median, on texts of exactly that many tokens "
    "(windows of real texts), the fastest thread count for each point. Compute grows with the length "
    "(attention with its square); <code>padding: longest</code> bundles pay for the longest text of each batch."
)
_HOW_BREAKDOWN = (
    "Medians of each part of a call: the tokenizer (pure Python), the ONNX session's "
    "<code>run</code>, and the rest (input checks, padding, feeds, sigmoid/softmax, Python overhead). "
    "A large tokenization share means a faster model variant will not help much."
)
_HOW_COLD = (
    "A fresh <code>python -c</code> that imports edgeclf, loads the bundle (verifying "
    "checksums, building the tokenizer and the session) and classifies one text: what a CLI call or "
    "a serverless function pays. Peak RSS is that process's high-water mark."
)


def _config_table(result: dict[str, Any]) -> list[str]:
    """Every configuration, one row each."""
    out = [
        "<h2>All configurations</h2>",
        "<table><tr><th class='l'>variant</th><th class='l'>provider</th><th>threads</th><th>batch</th>"
        "<th>seq</th><th>tokens (mean)</th><th>runs</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th>"
        "<th>texts/s</th><th>tokenize</th><th>ONNX</th><th>rest</th></tr>",
    ]
    for c in result["configs"]:
        lat, sh = c["latency_ms"], c["breakdown_share"]
        seq = "real" if c["seq_len"] is None else c["seq_len"]
        out.append(
            f"<tr><td class='l'>{_e(c['variant'])}</td><td class='l'>{_e(c['provider'])}</td>"
            f"<td>{c['threads']}</td><td>{c['batch_size']}</td><td>{_e(seq)}</td>"
            f"<td>{c['tokens_mean']:.0f}</td><td>{c['runs']:,}</td><td>{lat['p50']:.3f}</td>"
            f"<td>{lat['p90']:.3f}</td><td>{lat['p99']:.3f}</td><td>{_num(c['texts_per_s'], ',.0f')}</td>"
            f"<td>{sh['tokenize']:.0%}</td><td>{sh['onnx']:.0%}</td><td>{sh['other']:.0%}</td></tr>"
        )
    out.append("</table>")
    return out


def _session_table(result: dict[str, Any]) -> list[str]:
    """Every session (variant, provider, threads): creation, cold start, memory."""
    out = [
        "<table><tr><th class='l'>variant</th><th class='l'>provider</th><th>threads</th><th>file KiB</th>"
        "<th>session creation ms</th><th>cold start ms</th><th>import ms</th><th>load ms</th>"
        "<th>first prediction ms</th><th>peak RSS MiB</th></tr>"
    ]
    for x in result["sessions"]:
        c = x["cold_start"]
        out.append(
            f"<tr><td class='l'>{_e(x['variant'])}</td><td class='l'>{_e(x['provider'])}</td>"
            f"<td>{x['threads']}</td><td>{x['model_bytes'] / 1024:,.0f}</td><td>{x['session_create_ms']:.1f}</td>"
            f"<td>{_num(c.get('wall_ms'), ',.0f')}</td><td>{_num(c.get('import_ms'), ',.0f')}</td>"
            f"<td>{_num(c.get('load_ms'), ',.0f')}</td><td>{_num(c.get('first_predict_ms'), '.1f')}</td>"
            f"<td>{_num(c.get('peak_rss_mib'), '.1f')}</td></tr>"
        )
    out.append("</table>")
    return out


def _machine(result: dict[str, Any]) -> list[str]:
    """The machine and the command, as facts to tell two reports apart."""
    m, b = result["machine"], result["bundle"]
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
    out = ["<h2>Machine and settings</h2><dl class='kv'>"]
    out += [f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts]
    out.append("</dl>")
    return out


def write_html(result: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Render and write atomically, so a crash leaves no half page."""
    write_atomic(path, render_html(result))
