"""``edgeclf profile``: its arguments and the command (measuring in edgeclf.profile, the page in edgeclf.report)."""

from __future__ import annotations

import argparse
import json
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
        "--html", default=None, metavar="FILE", help="write a self-contained HTML report with plots"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")


def run(args: argparse.Namespace) -> int:
    """``edgeclf profile``: measurement in edgeclf.profile, the HTML page in edgeclf.report."""
    from . import profile as prof

    if args.html:
        from .report import MissingExtra, require_matplotlib

        try:  # before minutes of measuring, not after
            require_matplotlib()
        except MissingExtra as exc:
            print(f"edgeclf profile: {exc}", file=sys.stderr)
            return EXIT_USAGE
    settings = prof.ProfileSettings(
        variants=prof.parse_word_list(args.variants) if args.variants else None,
        providers=prof.parse_word_list(args.providers) if args.providers else None,
        threads=prof.parse_int_list(args.threads, "threads") if args.threads else None,
        batch_sizes=prof.parse_int_list(args.batch_sizes, "batch-sizes"),
        seq_lens=prof.parse_seq_lens(args.seq_lens) if args.seq_lens else None,
        budget_s=args.budget,
        warmup=args.warmup,
        min_runs=args.min_runs,
        cold_runs=args.cold_runs,
    )
    settings.validate()
    texts = source = None
    if args.data:
        texts = prof.load_texts(args.data, text_column=args.text_column, max_texts=args.max_texts)
        source = f"{len(texts)} texts sampled from {args.data} (column {args.text_column!r})"

    def say(msg: str) -> None:
        print(f"edgeclf profile: {msg}", file=sys.stderr, flush=True)

    result = prof.profile(
        args.model, texts=texts, texts_source=source, settings=settings, progress=None if args.quiet else say
    )
    result["command"] = prof.command_line(
        result, model=args.model, data=args.data, text_column=args.text_column
    )
    if args.json == "-":
        print(json.dumps(result, indent=1))
    else:
        print(prof.format_table(result), end="")
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
