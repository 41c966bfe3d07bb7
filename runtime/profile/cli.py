"""``edgeclf profile``: its arguments, the command, and the terminal table (measuring in .measure, the page in .report)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import Any

EXIT_OK, EXIT_USAGE = 0, 2


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "profile",
        help="measure latency, throughput, cold start and memory of a bundle on this machine",
        description="Profile a bundle across variants, providers, thread counts, batch sizes and "
        "sequence lengths on real texts; print a table, or write --json / --html (see docs/profiling.md).",
    )
    p.add_argument(
        "-m",
        "--model",
        default="keras-imdb",
        help="embedded model name or bundle directory (default: keras-imdb)",
    )
    p.add_argument(
        "--variants", default=None, help="comma-separated, e.g. fp32,int8 (default: all of the bundle's)"
    )
    p.add_argument(
        "--providers",
        default=None,
        help="comma-separated, e.g. cpu,cuda (default: cpu, plus cuda when available)",
    )
    p.add_argument(
        "--threads",
        default=None,
        help="comma-separated intra-op thread counts (default: 1 and all usable cores)",
    )
    p.add_argument("--batch-sizes", default="1,8,64", help="comma-separated texts per call (default: 1,8,64)")
    p.add_argument(
        "--seq-lens",
        default=None,
        help="comma-separated token lengths and/or 'real', for padding=longest bundles "
        "(default: 64,128,max_length); fixed-length bundles always run at their max_length",
    )
    p.add_argument(
        "--data", default=None, help="CSV (or .csv.gz) of real texts (default: 30 built-in review texts)"
    )
    p.add_argument("--text-column", default="text", help="text column of --data (default: text)")
    p.add_argument("--max-texts", type=int, default=1000, help="texts sampled from --data (default: 1000)")
    p.add_argument("--budget", type=float, default=1.0, help="timed seconds per configuration (default: 1)")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls per configuration first (default: 3)")
    p.add_argument(
        "--min-runs", type=int, default=10, help="timed calls at least, whatever the budget (default: 10)"
    )
    p.add_argument(
        "--cold-runs",
        type=int,
        default=3,
        help="fresh-process cold starts per session, 0 to skip (default: 3)",
    )
    p.add_argument(
        "--json",
        nargs="?",
        const="-",
        default=None,
        metavar="FILE",
        help="write the JSON result (no FILE: stdout)",
    )
    p.add_argument(
        "--html",
        default=None,
        metavar="FILE",
        help="write a self-contained HTML report with plots (needs the [report] extra: pip install 'edgeclf[report]')",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")


def run(args: argparse.Namespace) -> int:
    """``edgeclf profile``: measurement in :mod:`.measure`, the HTML page in :mod:`.report`."""
    from . import inputs
    from . import measure as prof

    if args.html:
        from .report import MissingExtra, require_matplotlib

        try:  # before minutes of measuring, not after
            require_matplotlib()
        except MissingExtra as exc:
            print(f"edgeclf profile: {exc}", file=sys.stderr)
            return EXIT_USAGE
    settings = inputs.ProfileSettings(
        variants=inputs.parse_word_list(args.variants) if args.variants else None,
        providers=inputs.parse_word_list(args.providers) if args.providers else None,
        threads=inputs.parse_int_list(args.threads, "threads") if args.threads else None,
        batch_sizes=inputs.parse_int_list(args.batch_sizes, "batch-sizes"),
        seq_lens=inputs.parse_seq_lens(args.seq_lens) if args.seq_lens else None,
        budget_s=args.budget,
        warmup=args.warmup,
        min_runs=args.min_runs,
        cold_runs=args.cold_runs,
    )
    settings.validate()
    texts = source = None
    if args.data:
        texts = inputs.load_texts(args.data, text_column=args.text_column, max_texts=args.max_texts)
        source = f"{len(texts)} texts sampled from {args.data} (column {args.text_column!r})"

    def say(msg: str) -> None:
        print(f"edgeclf profile: {msg}", file=sys.stderr, flush=True)

    result = prof.profile(
        args.model, texts=texts, texts_source=source, settings=settings, progress=None if args.quiet else say
    )
    result["command"] = command_line(result, model=args.model, data=args.data, text_column=args.text_column)
    if args.json == "-":
        print(json.dumps(result, indent=1))
    else:
        print(format_table(result), end="")
        if args.json:
            prof.write_json(result, args.json)
            if not args.quiet:
                say(f"wrote {args.json}")
    if args.html:
        from .report import write_html

        write_html(result, args.html)
        if not args.quiet:
            say(f"wrote {args.html}")
    return EXIT_OK


def command_line(
    result: dict[str, Any], *, model: str, data: str | None = None, text_column: str = "text"
) -> str:
    """The command that repeats this profile with every default spelled out (for the report)."""
    s = result["settings"]
    words = ["edgeclf", "profile", "-m", model]
    words += ["--variants", ",".join(s["variants"]), "--providers", ",".join(s["providers"])]
    words += [
        "--threads",
        ",".join(map(str, s["threads"])),
        "--batch-sizes",
        ",".join(map(str, s["batch_sizes"])),
    ]
    if result["bundle"]["padding"] != "max_length":
        words += ["--seq-lens", ",".join(map(str, s["seq_lens"]))]
    if data:
        words += ["--data", data, "--text-column", text_column]
    words += [
        "--budget",
        f"{s['budget_s']:g}",
        "--warmup",
        str(s["warmup"]),
        "--min-runs",
        str(s["min_runs"]),
    ]
    words += ["--cold-runs", str(s["cold_runs"])]
    return shlex.join(words)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(result: dict[str, Any]) -> str:
    """The human-readable report: a header, the latency table and the session table."""
    from .measure import SESSION_CREATE_REPEATS

    m, b, s = result["machine"], result["bundle"], result["settings"]
    lines = [
        f"edgeclf profile: {b['name']} (padding {b['padding']}, max_length {b['max_length']}, "
        f"tokenizer {b['tokenizer']})",
        f"machine: {m['cpu_model']}, {m['usable_cores']} usable cores, {m['platform']}, "
        f"onnxruntime {m['onnxruntime']}, load average {m['load_average'][0] if m['load_average'] else '?'}",
        f"texts: {s['texts']}; {s['budget_s']:g} s per configuration after {s['warmup']} warm-up calls",
    ]
    lt = result.get("long_texts")
    if lt:
        lines.append(
            f"long texts: {lt['mode']} by default; with windows these texts take "
            f"{lt['windows_per_text_mean']:g} windows per text (max {lt['windows_per_text_max']}, "
            f"{lt['texts_over_one_window']} over one window)"
        )
    lines += [f"note: {n}" for n in result["notes"]]
    lines.append("")
    head = (
        f"{'variant':<10} {'provider':<8} {'thr':>3} {'batch':>5} {'seq':>5} {'runs':>6}"
        f" {'p50 ms':>9} {'p90 ms':>9} {'p99 ms':>9} {'texts/s':>10}  {'tok':>4} {'onnx':>4} {'other':>5}"
    )
    lines += [
        "latency of one predict_proba call on a batch; texts/s at the p50; time split at the medians",
        head,
    ]
    lines.append("-" * len(head))
    for c in result["configs"]:
        lat, sh = c["latency_ms"], c["breakdown_share"]
        seq = "real" if c["seq_len"] is None else str(c["seq_len"])
        lines.append(
            f"{c['variant']:<10} {c['provider']:<8} {c['threads']:>3} {c['batch_size']:>5} {seq:>5}"
            f" {c['runs']:>6} {lat['p50']:>9.3f} {lat['p90']:>9.3f} {lat['p99']:>9.3f}"
            f" {_fmt(c['texts_per_s'], ',.0f'):>10}  {sh['tokenize']:>4.0%} {sh['onnx']:>4.0%} {sh['other']:>5.0%}"
        )
    lines.append("")
    head2 = (
        f"{'variant':<10} {'provider':<8} {'thr':>3} {'size KiB':>9} {'session ms':>10}"
        f" {'cold ms':>8} {'import':>7} {'load':>7} {'first':>7} {'peak RSS MiB':>12} {'load MiB':>8}"
    )
    cold_runs = s["cold_runs"]
    lines.append(
        f"sessions: creation (median of {SESSION_CREATE_REPEATS}); cold start = fresh python process: "
        f"import, load, first prediction (median of {cold_runs}); load MiB = RSS added by loading "
        "the model (edgeclf.profile.footprint)"
    )
    lines += [head2, "-" * len(head2)]
    for x in result["sessions"]:
        c = x["cold_start"]
        if c.get("error"):
            tail = f" {c['error']}"
        else:
            tail = (
                f" {_fmt(c.get('wall_ms'), '.0f'):>8} {_fmt(c.get('import_ms'), '.0f'):>7}"
                f" {_fmt(c.get('load_ms'), '.0f'):>7} {_fmt(c.get('first_predict_ms'), '.1f'):>7}"
                f" {_fmt(c.get('peak_rss_mib'), '.1f'):>12} {_fmt(c.get('load_rss_mib'), '.1f'):>8}"
            )
        lines.append(
            f"{x['variant']:<10} {x['provider']:<8} {x['threads']:>3} {x['model_bytes'] / 1024:>9.0f}"
            f" {x['session_create_ms']:>10.1f}{tail}"
        )
    return "\n".join(lines) + "\n"
