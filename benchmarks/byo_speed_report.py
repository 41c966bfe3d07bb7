"""docs/byo-speed.md's tables, rendered from benchmarks/results/byo_speed.json (``byo_speed.py --render``).

The generated part sits between ``<!-- byo-speed:begin -->`` and
``<!-- byo-speed:end -->``; the prose around it is the page's own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from common import markdown_table

BEGIN, END = "<!-- byo-speed:begin -->", "<!-- byo-speed:end -->"
CANDIDATES = [
    "optimum fp32", "optimum int8", "edgeclf fp32", "edgeclf int8", "edgeclf rowwise-int8", "edgeclf pruned-int8"
]  # fmt: skip
MB = 1024 * 1024


def _cell(key: str) -> str:
    b, s, t = key[1:].split("_")
    return f"{b} / {s[1:]} / {t[1:]}"


def speed_table(name: str, shape: dict[str, Any]) -> str:
    rows = []
    for key, res in shape.get("timing", {}).items():
        base = res["pytorch eager"]["median_s"]
        row: list[Any] = [_cell(key), f"{base * 1e3:.1f} ms"]
        row += [f"{base / res[c]['median_s']:.2f}x" for c in CANDIDATES]
        row.append(f"{res['optimum int8']['median_s'] / res['edgeclf int8']['median_s']:.2f}")
        rows.append(row)
    headers = [
        "batch / tokens / threads",
        "PyTorch eager",
        *CANDIDATES,
        "Optimum int8 time / edgeclf int8 time",
    ]
    return f"**{name}** (x = PyTorch eager's time / the candidate's)\n\n" + markdown_table(headers, rows)


def size_table(shapes: dict[str, Any]) -> str:
    cols = [
        ("PyTorch safetensors", "pytorch model.safetensors"), ("Optimum fp32", "optimum fp32"),
        ("Optimum int8", "optimum int8"), ("edgeclf fp32", "fp32"), ("edgeclf int8", "int8"),
        ("rowwise-int8", "rowwise-int8"),
        ("pruned-int8", "pruned-int8"), ("vocab-int8", "vocab-int8"),
    ]  # fmt: skip
    rows = [[name, *(f"{s['sizes_bytes'][k] / MB:.0f}" for _, k in cols)] for name, s in shapes.items()]
    return "File size, MiB\n\n" + markdown_table(["shape", *(c for c, _ in cols)], rows)


def rss_table(shapes: dict[str, Any]) -> str:
    kinds = ["pytorch", *CANDIDATES]
    rows = []
    for name, s in shapes.items():
        r = s.get("peak_rss_mib", {})
        rows.append([name, *(f"{r[k]:.0f}" if k in r else "" for k in kinds)])
    head = "Peak RSS of a process that loaded the model and classified one text, MiB"
    return head + "\n\n" + markdown_table(["shape", "PyTorch", *CANDIDATES], rows)


def pruning_table(shapes: dict[str, Any]) -> str:
    rows = []
    for name, s in shapes.items():
        to, b = s["pruning"], s["sizes_bytes"]
        vp = next(iter(s["vocab_pruning"]["variants"].values()))
        rows.append([
            name, f"{to['heads']} / {to['ffn']} / {to['layers']}", f"{vp['rows'][0]:,} -> {vp['rows'][1]:,}",
            f"{b['fp32'] / MB:.1f} -> {b['vocab'] / MB:.1f}" if "vocab" in b else "",
            f"{b['int8'] / MB:.1f} -> {b['vocab-int8'] / MB:.1f}",
        ])  # fmt: skip
    headers = ["shape", "pruned-int8: heads / FFN / layers", "embedding rows", "fp32 MiB", "int8 MiB"]
    return markdown_table(headers, rows)


def extras_tables(shapes: dict[str, Any]) -> str:
    tok, opt, prof = [], [], []
    for name, s in shapes.items():
        e = s.get("extras")
        if not e:
            continue
        t = e["tokenizers"]
        b1, b64 = t["batch1_ms_per_text"], t["batch64_ms_per_text"]
        tok.append([
            name, t["same_ids"], f"{b1['edgeclf']:.3f}", f"{b1['tokenizers']:.3f}",
            f"{b1['edgeclf'] / b1['tokenizers']:.1f}x", f"{b64['edgeclf']:.3f}", f"{b64['tokenizers']:.3f}",
            f"{b64['edgeclf'] / b64['tokenizers']:.1f}x",
        ])  # fmt: skip
        o = e["optimizer"]
        for t_key, res in o["timing"].items():
            ratio = res["int8"]["median_s"] / res["optimized int8"]["median_s"]
            opt.append([
                name, t_key[1:], f"{res['int8']['median_s'] * 1e3:.1f}", f"{res['optimized int8']['median_s'] * 1e3:.1f}",
                f"{ratio:.2f}", ", ".join(f"{k} {v}" for k, v in o["fused_ops"].items() if k in FUSED),
            ])  # fmt: skip
        p = e["profile"]
        shares = ", ".join(f"{k} {v:.0%}" for k, v in list(p["share_by_op"].items())[:6])
        prof.append([
            name, f"{p['model_ms']:.1f}", shares, f"{p['model_int8_gmacs_per_s']:.0f}",
            f"{p['bare_matmulinteger_gmacs_per_s']:.0f}",
        ])  # fmt: skip
    if not tok:
        return ""
    return "\n\n".join([
        "Tokenizers (ms per text; the `tokenizers` library's `encode_batch` uses its own thread pool)\n\n"
        + markdown_table(
            ["shape", "same ids", "edgeclf b1", "tokenizers b1", "ratio", "edgeclf b64", "tokenizers b64", "ratio"], tok
        ),
        "onnxruntime's offline optimizer before int8 (batch 1, 128 tokens; time of plain int8 / optimized int8)\n\n"
        + markdown_table(["shape", "threads", "int8 ms", "optimized int8 ms", "ratio", "fused ops"], opt),
        "Where int8 time goes (batch 1, 128 tokens, 1 thread; onnxruntime's profiler, share of kernel time)\n\n"
        + markdown_table(["shape", "int8 ms", "by operator type", "model GMAC/s", "bare MatMulInteger GMAC/s"], prof),
    ])  # fmt: skip


FUSED = (
    "Attention",
    "QAttention",
    "SkipLayerNormalization",
    "BiasGelu",
    "FastGelu",
    "EmbedLayerNormalization",
)


def render(results: list[Path], doc: Path) -> None:
    """The tables of one or more runs (each shape's figures from one run; a later file adds to a shape)."""
    shapes: dict[str, Any] = {}
    runs = []
    for path in results:
        data = json.loads(path.read_text(encoding="utf-8"))
        for name, shape in data["shapes"].items():
            shapes.setdefault(name, {}).update(shape)
        m = data["machine"]
        after = [v.get("load_average_after", float("nan")) for v in data["shapes"].values()]
        m.setdefault("load_average_end", after[-1] if after else float("nan"))  # a run stopped after a shape
        runs.append(
            f"`{path.relative_to(doc.parents[1])}` ({', '.join(data['shapes'])}): {m['cpu']} ({m['cores']} cores), "
            f"onnxruntime {m['onnxruntime']}, {data['rounds']} interleaved rounds, load average "
            f"{m['load_average']:.1f} at the start and {m.get('load_average_end', float('nan')):.1f} at the end."
        )
    parts = [
        "Random weights. " + " ".join(runs),
        *(speed_table(n, s) for n, s in shapes.items() if s.get("timing")),
        size_table(shapes),
        rss_table(shapes),
        "Pruning and vocabulary pruning (vocab-int8: the pieces 2,000 IMDB training reviews use)\n\n"
        + pruning_table(shapes),
        extras_tables(shapes),
    ]
    text = doc.read_text(encoding="utf-8")
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    doc.write_text(
        text[:start] + "\n" + "\n\n".join(p for p in parts if p) + "\n" + text[end:], encoding="utf-8"
    )
    print(f"rendered {doc}")
