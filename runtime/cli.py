"""The ``edgeclf`` command line (plain argparse, like piper's).

Exit codes (as ruff and ty use them):
  0  every row classified
  1  the output was written, but some rows carry an error
  2  usage or input error (bad flags, unreadable file, no text column, bad
     model bundle): nothing was written

Runtime commands (predict, models, info) import only the runtime. The
export / quantize commands import ``edgeclf.export`` / ``edgeclf.quantize``
lazily and say which extra to install when the heavy frameworks are missing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import IO

EXIT_OK, EXIT_ROW_ERRORS, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 as well; keep its wording
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"edgeclf: error: {message}\n")


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-m",
        "--model",
        default="keras-imdb",
        help="embedded model name or bundle directory (default: keras-imdb)",
    )
    p.add_argument("--variant", default=None, help="fp32, int8, ... (default: the bundle's default variant)")
    p.add_argument(
        "--provider", default="auto", help="auto, cpu, cuda or an onnxruntime provider name (default: auto)"
    )
    p.add_argument(
        "--threads", type=int, default=None, help="intra-op threads (default: onnxruntime's choice)"
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="texts per ONNX run (default: 64, or 256 for fixed-length models)",
    )


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(prog="edgeclf", description="Text classification on the edge (ONNX Runtime).")
    parser.add_argument("--version", action="version", version=f"edgeclf {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser(
        "predict",
        help="classify every row of a CSV file",
        description="Classify each row of a CSV (id and text columns); write id,label,score,error.",
    )
    p.add_argument("input", help="CSV file, or - for stdin")
    p.add_argument("-o", "--output", default="-", help="output file (default: stdout); written atomically")
    p.add_argument(
        "--format",
        choices=["csv", "jsonl"],
        default=None,
        help="output format (default: from the output's extension, else csv)",
    )
    p.add_argument(
        "--id-column", default=None, help="id column (default: 'id', or row numbers when there is none)"
    )
    p.add_argument("--text-column", default="text", help="text column (default: text)")
    p.add_argument("--delimiter", default=",", help="field delimiter (default: ,)")
    p.add_argument(
        "--encoding", default="utf-8", help="input encoding, e.g. gb18030 (default: utf-8, BOM or not)"
    )
    p.add_argument(
        "--label-format", choices=["name", "id"], default="name", help="write label names or numeric ids"
    )
    p.add_argument("--probabilities", action="store_true", help="add one probability column per label")
    p.add_argument(
        "--errors",
        choices=["report", "abort"],
        default="report",
        help="bad rows: report them as error rows (exit 1) or abort with nothing written (exit 2)",
    )
    p.add_argument(
        "--chunk-rows",
        type=int,
        default=4096,
        help="rows read, classified and written per chunk (memory bound)",
    )
    p.add_argument(
        "--max-chars",
        type=int,
        default=None,
        help="refuse texts longer than this many characters (error row)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    _add_model_args(p)

    p = sub.add_parser("models", help="list the embedded models and their metrics")
    p.add_argument("--json", action="store_true")
    p.add_argument("--memory", action="store_true", help="also measure each variant's RSS in a fresh process")

    p = sub.add_parser("info", help="show a bundle's manifest (verified)")
    p.add_argument("model", nargs="?", default="keras-imdb")

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

    from .serve import add_parser as add_serve_parser  # stdlib only; the server imports its extra later

    add_serve_parser(sub)
    for name, help_ in (
        ("export", "train/export models to bundles (needs edgeclf[export])"),
        ("quantize", "int8-quantize a bundle variant (needs edgeclf[export])"),
        ("evaluate", "measure a bundle's accuracy on a labelled CSV"),
        ("prune", "structured pruning of an ALBERT checkpoint into bundle variants (needs edgeclf[export])"),
    ):
        p = sub.add_parser(name, help=help_, add_help=False)
        p.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # numpy's OpenBLAS starts one thread per core at import (~50 ms here); the
    # runtime never hands numpy a matrix product (onnxruntime has its own pool)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv and argv[0] in ("export", "quantize", "evaluate", "prune"):
        return _tool(argv[0], argv[1:])
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    from .bundle import BundleError
    from .csvio import InputFileError
    from .session import ProviderError

    try:
        if args.command == "predict":
            return _predict(args)
        if args.command == "models":
            return _models(args)
        if args.command == "info":
            return _info(args)
        if args.command == "profile":
            return _profile(args)
        if args.command == "serve":
            from .serve import main as serve_main

            return serve_main(args)
    except (BundleError, InputFileError, ProviderError, ValueError) as exc:
        print(f"edgeclf: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        print("edgeclf: interrupted; no output written", file=sys.stderr)
        return 130
    raise AssertionError(args.command)


def _tool(name: str, argv: list[str]) -> int:
    """Hand over to the heavy packages, explaining a missing extra."""
    try:
        if name == "export":
            from edgeclf.export.cli import main as tool_main
        elif name == "prune":
            from edgeclf.quantize.prune_cli import main as tool_main
        elif name == "quantize":
            from edgeclf.quantize.tool import main as tool_main
        else:
            from edgeclf.quantize.evaluate import main as tool_main
        return tool_main(argv)
    except ModuleNotFoundError as exc:  # edgeclf.export.MissingExtra says which extra to install
        print(f"edgeclf {name}: {exc}", file=sys.stderr)
        return EXIT_USAGE


# --------------------------------------------------------------------- predict


#: Characters of text per chunk: with rows alone as the bound, 4,096 rows of
#: 10 MB reviews would be 40 GB in memory; this keeps a chunk near one big field.
CHUNK_CHARS = 8_000_000


def _chunks(rows: Iterable, size: int, max_chars: int = CHUNK_CHARS) -> Iterator[list]:
    """Rows in chunks of ``size`` rows or about ``max_chars`` characters of text, whichever comes first."""
    chunk: list = []
    chars = 0
    for row in rows:
        chunk.append(row)
        if row.text is not None:
            chars += len(row.text)
        if len(chunk) >= size or chars >= max_chars:
            yield chunk
            chunk, chars = [], 0
    if chunk:
        yield chunk


class _Progress:
    """A one-line progress bar on stderr, only when a person is watching."""

    def __init__(self, fh: IO[str], enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.total = 0
        self.raw = None
        if self.enabled:
            try:
                self.raw = fh.buffer  # type: ignore[attr-defined]
                self.total = os.fstat(fh.fileno()).st_size
            except (AttributeError, OSError, ValueError):
                self.raw = None
        self.start = time.perf_counter()
        self.last = 0.0

    def update(self, rows: int) -> None:
        now = time.perf_counter()
        if not self.enabled or now - self.last < 0.2:
            return
        self.last = now
        rate = rows / max(now - self.start, 1e-9)
        frac = ""
        if self.raw is not None and self.total:
            try:
                done = min(self.raw.tell() / self.total, 1.0)
                bar = "#" * int(done * 30)
                frac = f"[{bar:<30}] {done:6.1%} "
            except (OSError, ValueError):
                pass
        sys.stderr.write(f"\r{frac}{rows:,} rows  {rate:,.0f} rows/s")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def _predict(args: argparse.Namespace) -> int:
    from .classifier import DEFAULT_MAX_CHARS, load
    from .csvio import (
        DUPLICATE_ID_WINDOW,
        AtomicOutput,
        InputFileError,
        ReadStats,
        ResultWriter,
        open_text,
        read_rows,
    )

    if args.chunk_rows < 1:
        raise ValueError("--chunk-rows must be >= 1")
    if len(args.delimiter) != 1:
        raise ValueError("--delimiter must be one character")
    # 0 used to mean "the default" silently; a limit of 0 is a mistake, say so
    if args.max_chars is not None and args.max_chars < 1:
        raise ValueError("--max-chars must be >= 1")
    if args.batch_size is not None and args.batch_size < 1:
        raise ValueError("--batch-size must be >= 1")
    started = time.perf_counter()
    fmt = args.format or ("jsonl" if str(args.output).endswith((".jsonl", ".ndjson")) else "csv")
    max_chars = args.max_chars or DEFAULT_MAX_CHARS
    kwargs = {"batch_size": args.batch_size} if args.batch_size else {}
    clf = load(
        args.model,
        variant=args.variant,
        providers=args.provider,
        threads=args.threads,
        max_chars=max_chars,
        **kwargs,
    )
    if not args.batch_size and clf.manifest.padding == "max_length":
        clf.batch_size = 256  # fixed-width inputs: bigger batches only amortise overhead
    labels = clf.labels
    stats = ReadStats()
    errors = 0
    name = "<stdin>" if args.input == "-" else args.input
    with open_text(args.input, args.encoding) as fh:
        progress = _Progress(fh, not args.quiet)
        rows = read_rows(
            fh,
            name=name,
            id_column=args.id_column or "id",
            text_column=args.text_column,
            id_required=args.id_column is not None,
            stats=stats,
            delimiter=args.delimiter,
        )
        first = list(islice(rows, 1))  # header problems surface before any output exists
        with AtomicOutput(args.output, refuse=[args.input]) as out:
            writer = ResultWriter(out, fmt=fmt, labels=labels, probabilities=args.probabilities)
            done = 0
            for chunk in _chunks(_chain(first, rows), args.chunk_rows):
                for r in chunk:
                    if r.error is None and len(r.text) > max_chars:
                        r.error = f"row {r.number} (line {r.line}): text has {len(r.text):,} characters, over --max-chars {max_chars:,}"
                        r.text = None
                good = [r for r in chunk if r.error is None]
                probs = clf.predict_proba([r.text for r in good]) if good else None
                k = 0
                for r in chunk:
                    if r.error is not None:
                        errors += 1
                        if args.errors == "abort":
                            raise InputFileError(f"{name}: {r.error} (--errors abort: nothing written)")
                        writer.write(r.id, None, None, None, r.error)
                        continue
                    p = probs[k]
                    k += 1
                    j = int(p.argmax())
                    writer.write(r.id, labels[j] if args.label_format == "name" else j, float(p[j]), p, None)
                done += len(chunk)
                progress.update(done)
        progress.close()
    elapsed = time.perf_counter() - started
    if not args.quiet:
        target = "stdout" if args.output == "-" else args.output
        extra = []
        if stats.blank_lines:
            extra.append(f"{stats.blank_lines} blank lines skipped")
        if stats.duplicate_ids:
            window = f" among the first {DUPLICATE_ID_WINDOW:,} ids" if stats.duplicate_window_full else ""
            extra.append(f"{stats.duplicate_ids} duplicate ids{window}")
        tail = f" ({'; '.join(extra)})" if extra else ""
        print(
            f"edgeclf: {stats.rows:,} rows -> {target}: {stats.rows - errors:,} classified, {errors:,} errors"
            f"{tail}; model {clf.manifest.name}/{clf.variant.name}; {elapsed:.2f} s "
            f"({stats.rows / max(elapsed, 1e-9):,.0f} rows/s)",
            file=sys.stderr,
        )
    return EXIT_ROW_ERRORS if errors else EXIT_OK


def _chain(first: list, rest: Iterable) -> Iterator:
    yield from first
    yield from rest


# --------------------------------------------------------------------- models / info


def _models(args: argparse.Namespace) -> int:
    from . import list_models
    from .bundle import embedded_root, read_manifest

    names = list_models()
    entries = [read_manifest(embedded_root() / name).summary() for name in names]
    if args.memory:
        from .footprint import model_memory

        for name, entry in zip(names, entries, strict=True):
            for vname, v in entry["variants"].items():
                v["memory"] = model_memory(name, vname)
    if args.json:
        print(json.dumps(entries, indent=2))
        return EXIT_OK
    for e in entries:
        print(
            f"{e['name']}  ({e['task']}; labels: {', '.join(e['labels'])}; default: {e['default_variant']})"
        )
        if e["description"]:
            print(f"    {e['description']}")
        for vname, v in e["variants"].items():
            acc = v.get("accuracy")
            acc_s = (
                f"accuracy {acc:.4f} on {v.get('dataset', '?')}"
                if isinstance(acc, float)
                else "accuracy not measured"
            )
            mem = v.get("memory")
            mem_s = ""
            if mem:
                mem_s = (
                    f"   RSS +{mem['first_mib']} MiB (+{mem['each_further_mib']} per further instance)"
                    if mem["first_mib"] is not None
                    else "   RSS not measurable here (needs /proc)"
                )
            print(f"    {vname:<12} {v['size_bytes'] / 1024:8.0f} KiB   {acc_s}{mem_s}")
    return EXIT_OK


def _info(args: argparse.Namespace) -> int:
    from .bundle import open_bundle

    b = open_bundle(args.model)
    for ref in [*b.manifest.tokenizer.files.values(), *(v.file for v in b.manifest.variants.values())]:
        b.read_verified(ref)
    raw = json.loads((b.root / "manifest.json").read_text(encoding="utf-8"))
    raw["_location"] = str(b.root)
    raw["_verified"] = True
    print(json.dumps(raw, indent=2, ensure_ascii=False))
    return EXIT_OK


# --------------------------------------------------------------------- profile


def _profile(args: argparse.Namespace) -> int:
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
