"""Fill the generated parts of README.md and docs/*.md from their sources.

    python benchmarks/render_docs.py           # re-render every generated page and part in place
    python benchmarks/render_docs.py --check   # change nothing; exit 1 naming each stale part

With no FILES it first re-renders the pages benchmark scripts write whole from their stored results
(PAGE_RENDERERS: docs/benchmarks.md, the measured table of docs/serve.md). Sources of the marked parts:
the embedded bundles' manifests (runtime/models/*/manifest.json), the benchmark results
(benchmarks/results/*.json) and the command line's own argparse parser (runtime/cli.py). Two kinds
of marked parts, both invisible once the Markdown is rendered:

    <!-- figures:NAME [ARG] -->            a block, rebuilt whole by BLOCKS[NAME](ARG)
    ...
    <!-- /figures -->

    <!-- fig:KEY -->0.8999<!-- /fig -->     one figure in prose, KEY as in figure() below

(a mark quoted in `backticks` is left alone), so a manifest or a result that changes is
re-published by one command, and tests/test_docs.py fails while any part disagrees with its source. Imports only the standard library and the runtime.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "runtime" / "models"
RESULTS = ROOT / "benchmarks" / "results"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

BLOCK = re.compile(r"(?<!`)(<!-- figures:([\w-]+)(?: ([^>]*?))? -->\n)(.*?)(<!-- /figures -->)", re.S)
INLINE = re.compile(r"(?<!`)(<!-- fig:(.+?) -->)(.*?)(<!-- /fig -->)", re.S)


# ----------------------------------------------------------------------------- sources


@functools.cache
def manifests() -> dict[str, dict]:
    """Every embedded bundle's manifest by name, the CLI's default model first."""
    found = {p.parent.name: json.loads(p.read_text(encoding="utf-8")) for p in MODELS.glob("*/manifest.json")}
    first = default_model()
    return dict(sorted(found.items(), key=lambda kv: (kv[0] != first, kv[0])))


def default_model() -> str:
    predict = _subcommands(_parser())["predict"]
    return next(a.default for a in predict._actions if "--model" in a.option_strings)


def variants(manifest: dict) -> dict[str, dict]:
    """Variant name -> {"file", "metrics", "shipped", ...}: shipped ones, then those measured at export
    and left out of the bundle (``extra.measured_not_shipped``)."""
    out = {name: {**v, "shipped": True} for name, v in manifest["variants"].items()}
    for name, v in manifest.get("extra", {}).get("measured_not_shipped", {}).items():
        out.setdefault(name, {**v, "file": {"size": v.get("size")}, "shipped": False})
    return out


def result(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))


def human_size(n: int) -> str:
    return f"{n / 1024:.0f} KiB" if n < 1024**2 else f"{n / 1024**2:.1f} MiB"


def metric_digits(metrics: dict) -> int:
    """Decimals a metric is quoted with: 4 on the 25,000-review sets, 3 on a few hundred posts."""
    return 4 if metrics.get("n", 0) >= 5000 else 3


# ----------------------------------------------------------------------------- inline figures


def figure(key: str) -> str:
    """The text of one inline figure.

    ``m/MODEL/VARIANT/METRIC[/DIGITS]``: a metric of a variant (``size`` is the ONNX file's size,
    ``temperature`` the variant's stored temperature);
    ``r/RESULT/KEY/KEY/...[|FORMAT]``: a value in benchmarks/results/RESULT.json;
    ``x/RESULT/PATH~PATH[|FORMAT]``: the ratio of two values of one result (speed-ups).
    FORMAT is Python's format spec, ``ms`` first to print seconds as milliseconds: ``|ms.2f``.
    """
    kind, _, rest = key.partition("/")
    if kind == "m":
        model, variant, metric, *digits = rest.split("/")
        v = variants(manifests()[model])[variant]
        if metric == "size":
            return human_size(v["file"]["size"])
        metrics = {**v["metrics"], "temperature": v.get("temperature")}
        if isinstance(metrics[metric], str):  # e.g. dataset, measured_by
            return metrics[metric]
        return f"{metrics[metric]:.{int(digits[0]) if digits else metric_digits(metrics)}f}"
    if kind in ("r", "x"):
        rest, _, spec = rest.partition("|")
        name, _, path = rest.partition("/")
        if kind == "x":
            num, den = path.split("~")
            value = _lookup(result(name), num) / _lookup(result(name), den)
        else:
            value = _lookup(result(name), path)
        if spec.startswith("ms"):
            value, spec = value * 1000, spec[2:]
        return format(value, spec) if spec else str(value)
    raise KeyError(f"unknown figure kind in {key!r} (m/..., r/... or x/...)")


def _lookup(data: object, path: str) -> object:
    for k in path.split("/"):
        data = data[int(k)] if isinstance(data, list) else data[k]  # type: ignore[index]
    return data


# ----------------------------------------------------------------------------- blocks


def _variant_cell(name: str, v: dict, default: str, runs_on: str, n: int | None) -> str:
    metrics = v.get("metrics") or {}
    d = metric_digits(metrics)
    text = (f"**{name}**" if name == default else name) + runs_on
    text += f" {human_size(v['file']['size'])}" if v["shipped"] else " (reference, not shipped)"
    if "accuracy" in metrics:
        text += f": {metrics['accuracy']:.{d}f}"
    if "fake_f1" in metrics:
        text += f", fake F1 {metrics['fake_f1']:.{d}f}"
    if metrics.get("n", n) != n:  # measured on another set than the default variant
        text += f" on {metrics['dataset']}"
    return text


def models_table(_: str = "") -> str:
    """The embedded models: task, labels, each variant's file size and accuracy, and the test set.
    Shipped variants, the default first, then the fp32 reference when it was measured and left out."""
    rows = [
        "| model | task (labels) | variant: file size, accuracy | measured on |",
        "|---|---|---|---|",
    ]
    for name, m in manifests().items():
        where = {
            v: {"cpu": " (CPU)", "cuda": " (GPU)"}.get(p, "")
            for p, v in m.get("provider_variants", {}).items()
        }
        vs = variants(m)
        order = [
            m["default_variant"],
            *(n for n, v in vs.items() if v["shipped"] and n != m["default_variant"]),
        ]
        order += ["fp32"] if "fp32" in vs and not vs["fp32"]["shipped"] else []
        reference = vs[m["default_variant"]].get("metrics") or {}
        dataset = reference.get("dataset", "")
        cells = [
            _variant_cell(v, vs[v], m["default_variant"], where.get(v, ""), reference.get("n")) for v in order
        ]
        title = f"`{name}`" + (" (default)" if name == default_model() else "")
        rows.append(
            f"| {title} | {m['task']} ({', '.join(m['labels'])}) | {'<br>'.join(cells)} | {dataset} |"
        )
    return "\n".join(rows) + "\n"


def variants_table(_: str = "") -> str:
    """Per model: the ``--variant`` choices, the default, and what ``--provider auto`` runs where."""
    rows = ["| model | `--variant` choices | default | `auto` on a CPU / on CUDA |", "|---|---|---|---|"]
    for name, m in manifests().items():
        pv = m.get("provider_variants", {})
        cpu = pv.get("cpu", m["default_variant"])
        auto = f"{cpu} / {pv['cuda']}" if "cuda" in pv else f"{cpu} / {cpu} on the CPU"
        choices = ", ".join(f"`{v}`" for v in m["variants"])
        rows.append(f"| `{name}` | {choices} | `{m['default_variant']}` | {auto} |")
    return "\n".join(rows) + "\n"


@functools.cache
def _parser() -> argparse.ArgumentParser:
    from edgeclf.cli import build_parser

    return build_parser()


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _option(a: argparse.Action) -> str:
    flags = ", ".join(f"`{s}`" for s in a.option_strings) or f"`{(a.metavar or a.dest).upper()}`"
    if a.choices is not None:
        value = "\\|".join(str(c) for c in a.choices)
    elif a.nargs != 0 and a.option_strings:
        value = str(a.metavar or a.dest.upper()).replace("|", "\\|")
    else:
        return flags
    value = {"?": f"[{value}]", "*": f"[{value} ...]", "+": f"{value} [{value} ...]"}.get(a.nargs, value)
    return f"{flags} {value}"


def _synopsis(name: str, p: argparse.ArgumentParser) -> str:
    """The usage line, wrapped at 100 characters between bracketed groups, whatever the terminal."""
    usage = " ".join(p.format_usage().split(":", 1)[1].split())
    groups = re.findall(r"\[(?:[^\[\]]|\[[^\]]*\])*\]|\S+", usage)
    lines, indent = [""], " " * (len(p.prog) + 1)
    for g in groups:
        if lines[-1] and len(lines[-1]) + 1 + len(g) > 100:
            lines.append(indent)
        lines[-1] += (" " if lines[-1].strip() else "") + g
    return "\n".join(lines)


def cli_reference(_: str = "") -> str:
    """Every command's synopsis and options, from the parser `edgeclf --help` prints."""
    parser = _parser()
    helps = {
        a.dest: a.help
        for a in next(
            x for x in parser._actions if isinstance(x, argparse._SubParsersAction)
        )._choices_actions
    }
    out = []
    for name, p in _subcommands(parser).items():
        out += [f"### `edgeclf {name}`", "", helps.get(name) or "", ""]
        opts = [a for a in p._actions if not isinstance(a, argparse._HelpAction)]
        if not p.add_help:  # handed to its own tool, which has its own --help
            out += [f"`edgeclf {name} --help` lists its options.", ""]
            continue
        out += ["```text", _synopsis(name, p), "```", "", "| option | meaning |", "|---|---|"]
        for a in opts:
            text = (a.help or "").replace("|", "\\|")
            out.append(f"| {_option(a)} | {text} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def predict_example(arg: str = "") -> str:
    """What ``edgeclf predict examples/reviews.csv`` prints, run for real (the default model, on the CPU)."""
    import subprocess

    argv = [sys.executable, "-m", "edgeclf", "predict", "examples/reviews.csv", "-q", *arg.split()]
    out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=True, timeout=120).stdout
    return "```console\n$ edgeclf predict examples/reviews.csv\n" + out + "```\n"


def prune_probe(_: str = "") -> str:
    """benchmarks/prune_probe.py: shapes cut from a checkpoint with no recovery, scored and timed."""
    r = result("prune_probe")
    shipped: dict[str, list[str]] = {}
    for name, c in _shipped_shapes("albert-imdb").items():
        shipped.setdefault(f"{c['heads']}/{c['ffn']}/{c['layers']}", []).append(f"`{name}`")
    rows = [
        f"| heads/FFN/passes | validation accuracy, no recovery ({r['val_reviews']:,} reviews) | int8 MB "
        "| batch 1, 128 tokens, 1 thread | x first row |",
        "|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        shape = row["shape"] + (
            f" (shipped: {', '.join(shipped[row['shape']])})" if row["shape"] in shipped else ""
        )
        rows.append(
            f"| {shape} | {row['val_accuracy_no_recovery']:.3f} | {row['int8_bytes'] / 1e6:.2f} "
            f"| {row['latency_b1_128_ms']:.2f} ms | {row['latency_vs_first']:.2f}x |"
        )
    m = r["machine"]
    rows.append(
        f"\n({m['cpu']}, {m['cores']} cores, onnxruntime {m['onnxruntime']}; `benchmarks/results/prune_probe.json`.)"
    )
    return "\n".join(rows) + "\n"


def _shipped_shapes(model: str) -> dict[str, dict]:
    """Variant -> {heads, ffn, layers} of an embedded ALBERT, from its config and pruning records."""
    m = manifests()[model]
    c = m["extra"]["config"]
    base = {
        "heads": c["num_attention_heads"],
        "ffn": c["intermediate_size"],
        "layers": c["num_hidden_layers"],
    }
    pruned = {f"{name}-int8": rec for name, rec in m["extra"].get("pruning", {}).items()}
    # a variant grafted onto another (the n-gram heads) has the shape of the one it was grafted onto
    onto = {n: g["grafted_onto"] for n, g in m["extra"].get("ngram_head_variants", {}).items()}
    out = {}
    for v in m["variants"]:
        rec = pruned.get(onto.get(v, v))
        out[v] = {k: rec["to"][k] for k in ("heads", "ffn", "layers")} if rec else base
    return out


def include(path: str) -> str:
    """A Markdown file a benchmark script wrote (``benchmarks/results/*.md``), verbatim."""
    source = (ROOT / path).resolve()
    if source.parent != RESULTS:
        raise ValueError(f"include takes a file in benchmarks/results/, got {path!r}")
    return source.read_text(encoding="utf-8").strip() + "\n"


BLOCKS: dict[str, Callable[[str], str]] = {
    "include": include,
    "prune-probe": prune_probe,
    "predict-example": predict_example,
    "models-table": models_table,
    "variants-table": variants_table,
    "cli-reference": cli_reference,
}


# ----------------------------------------------------------------------------- rendering


class SourceError(Exception):
    """A marked part names a source (result file, key, model, variant, block) that does not exist."""


def _source(kind: str, key: str, build: Callable[[str], str], arg: str) -> str:
    try:
        return build(arg)
    except (KeyError, IndexError, ValueError, TypeError, OSError) as exc:
        raise SourceError(f"{kind} {key!r}: no such source ({type(exc).__name__}: {exc})") from exc


def render(text: str, errors: list[str] | None = None) -> str:
    """The text with every marked block and inline figure rebuilt from its source. With ``errors``, a
    part whose source is missing is left as it is and the reason appended there; else it raises."""

    def rebuilt(m: re.Match[str], kind: str, key: str, build: Callable[[str], str], arg: str) -> str:
        try:
            if kind == "block" and key.split()[0] not in BLOCKS:
                raise SourceError(f"unknown block {key.split()[0]!r} (known: {', '.join(BLOCKS)})")
            return m.group(1) + _source(kind, key, build, arg) + m.groups()[-1]
        except SourceError as exc:
            if errors is None:
                raise
            errors.append(str(exc))
            return m.group(0)

    def block(m: re.Match[str]) -> str:
        name, arg = m.group(2), m.group(3) or ""
        return rebuilt(m, "block", f"{name} {arg}".strip(), BLOCKS.get(name, str), arg)

    text = BLOCK.sub(block, text)
    return INLINE.sub(lambda m: rebuilt(m, "figure", m.group(2), figure, m.group(2)), text)


def stale_parts(text: str) -> Iterator[str]:
    """A line naming each marked part of ``text`` that differs from its source or names none."""
    for m in BLOCK.finditer(text):
        try:
            if m.group(1) + m.group(4) + m.group(5) != render(m.group(0)):
                yield f"block figures:{m.group(2)}"
        except SourceError as exc:
            yield str(exc)
    for m in INLINE.finditer(text):
        try:
            want = _source("figure", m.group(2), figure, m.group(2))
        except SourceError as exc:
            yield str(exc)
            continue
        if m.group(3) != want:
            yield f"figure {m.group(2)}: says {m.group(3)!r}, source says {want!r}"


#: Pages written whole by a benchmark script from its stored results (no measuring), re-rendered first.
PAGE_RENDERERS = [["run_all.py", "--render"], ["bench_serve.py", "--render"]]


def render_generated_pages() -> None:
    import subprocess

    for argv in PAGE_RENDERERS:
        subprocess.run(
            [sys.executable, *argv],
            cwd=ROOT / "benchmarks",
            check=True,
            timeout=600,
            stdout=subprocess.DEVNULL,
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if any part is stale")
    ap.add_argument("files", nargs="*", type=Path, help="default: README.md and docs/*.md")
    args = ap.parse_args(argv)
    files = [f.resolve() for f in args.files] or DOCS
    if not args.check and not args.files:
        render_generated_pages()
    stale = 0
    for path in files:
        text = path.read_text(encoding="utf-8")
        if args.check:
            for line in stale_parts(text):
                print(f"{path.relative_to(ROOT)}: {line}")
                stale += 1
        else:
            errors: list[str] = []
            new = render(text, errors)
            for line in errors:
                print(f"{path.relative_to(ROOT)}: {line}", file=sys.stderr)
            stale += len(errors)
            if new == text:
                continue
            path.write_text(new, encoding="utf-8")
            print(f"rendered {path.relative_to(ROOT)}")
    if stale:
        what = "stale or without a source" if args.check else "without a source, left as they were"
        print(f"{stale} part(s) {what}", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
