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
from collections.abc import Sequence
from typing import Any

from .texts import DEFAULT_MAX_CHARS, LONG_TEXTS

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
    p.add_argument("--variant", default=None, help=f"{_variant_choices()} (default: the bundle's choice)")
    p.add_argument(
        "--provider", default="auto", help="auto, cpu, cuda or an onnxruntime provider name (default: auto)"
    )
    p.add_argument(
        "--threads", type=int, default=None, help="intra-op threads (default: onnxruntime's choice)"
    )
    p.add_argument(
        "--long-texts",
        choices=LONG_TEXTS,
        default=None,
        help="texts longer than the model reads: truncate (keep the part the bundle keeps) or windows "
        "(read every part, pooled; transformer bundles) (default: the bundle's choice)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="texts per ONNX run (default: the model's, 256 for fixed-length models, 64 otherwise)",
    )


def _variant_choices() -> str:
    """The variants of each embedded model, for --variant's help."""
    from .bundle import BundleError, embedded_names, embedded_root, read_manifest

    parts = []
    for name in embedded_names():
        try:
            parts.append(f"{name}: {', '.join(read_manifest(embedded_root() / name).variants)}")
        except BundleError:
            continue
    return "; ".join(parts) or "the bundle's variants"


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(prog="edgeclf", description="Text classification on the edge (ONNX Runtime).")
    parser.add_argument("--version", action="version", version=f"edgeclf {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser(
        "predict",
        help="classify every row of a CSV, TSV or JSON Lines file (- reads stdin)",
        description="Classify each row of a CSV or TSV file (id and text columns) or JSON Lines file "
        '({"id": ..., "text": ...} per line); write id,label,score,error. INPUT - reads stdin. '
        "Rows and lines in messages count from 1.",
    )
    p.add_argument("input", help="CSV, TSV (.tsv) or JSON Lines (.jsonl, .ndjson) file, or - for stdin")
    p.add_argument("-o", "--output", default="-", help="output file (default: stdout); written atomically")
    p.add_argument(
        "--format",
        choices=["csv", "jsonl"],
        default=None,
        help="output format (default: from the output's extension, else csv)",
    )
    p.add_argument(
        "--input-format",
        choices=["csv", "jsonl"],
        default=None,
        help="input format (default: jsonl for .jsonl/.ndjson files, else csv)",
    )
    p.add_argument(
        "--id-column",
        default=None,
        help="id column or JSON field (default: 'id', or row numbers when there is none; "
        "in a file without a header: a 1-based column number, default 1 when rows have 2+ columns)",
    )
    p.add_argument(
        "--text-column",
        default="text",
        help="text column or JSON field (default: text; in a file without a header: a 1-based "
        "column number, default the last)",
    )
    p.add_argument(
        "--delimiter",
        default=None,
        help="CSV field delimiter, one character; tab or '\\t' for a tab (default: tab for .tsv, else ,)",
    )
    p.add_argument("--no-header", action="store_true", help="CSV without a header row: every row is data")
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
        help=f"refuse texts longer than this many characters, an error row (default: {DEFAULT_MAX_CHARS:,}, "
        "as every front end)",
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=None,
        help="processes parsing, tokenizing and classifying (default: the usable cores, 1 on a GPU; 1: no workers)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    _add_model_args(p)

    p = sub.add_parser("models", help="list the embedded models and their metrics")
    p.add_argument("--json", action="store_true")
    p.add_argument("--memory", action="store_true", help="also measure each variant's RSS in a fresh process")

    p = sub.add_parser("info", help="summarize a bundle (verified): labels, variants, providers, terms")
    p.add_argument("model", nargs="?", default="keras-imdb", help="embedded model name or bundle directory")
    p.add_argument("--json", action="store_true", help="print the whole manifest as JSON")

    from .profile.cli import add_parser as add_profile

    add_profile(sub)

    from .serve import add_parser as add_serve_parser  # stdlib only; the server imports its extra later

    add_serve_parser(sub)
    for name, help_ in (
        ("export", "train/export models to bundles (needs edgeclf[export])"),
        ("quantize", "int8-quantize a bundle variant (needs edgeclf[export])"),
        ("evaluate", "measure a bundle's accuracy on a labelled CSV"),
        (
            "prune",
            "structured and vocabulary pruning of a checkpoint into bundle variants (needs edgeclf[export])",
        ),
        ("spark-predict", "score a CSV/Parquet input on Spark into Parquet (needs edgeclf[spark])"),
        ("deploy", "print deployment files shipped in the package (systemd: edgeclf-serve.service)"),
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
    if argv and argv[0] in ("export", "quantize", "evaluate", "prune", "spark-predict"):
        return _tool(argv[0], argv[1:])
    if argv and argv[0] == "deploy":  # standard library only, no extra needed
        from .deploy import main as deploy_main

        return deploy_main(argv[1:], prog="edgeclf deploy")
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    from .bundle import BundleError
    from .session import ProviderError
    from .texts import InputFileError

    try:
        if args.command == "predict":
            return _predict(args)
        if args.command == "models":
            return _models(args)
        if args.command == "info":
            return _info(args)
        if args.command == "profile":
            from .profile.cli import run as run_profile

            return run_profile(args)
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
        elif name == "spark-predict":
            from edgeclf.integrations.spark_cli import main as tool_main
        else:
            from edgeclf.quantize.evaluate import main as tool_main
        return tool_main(argv)
    except ModuleNotFoundError as exc:  # edgeclf.export.MissingExtra says which extra to install
        print(f"edgeclf {name}: {exc}", file=sys.stderr)
        return EXIT_USAGE


# --------------------------------------------------------------------- predict


def _predict(args: argparse.Namespace) -> int:
    from .pipeline import CsvOptions, ModelSpec, predict_file
    from .progress import Progress

    if args.chunk_rows < 1:
        raise ValueError("--chunk-rows must be >= 1")
    if args.max_chars is not None and args.max_chars < 1:
        raise ValueError("--max-chars must be >= 1")
    if args.batch_size is not None and args.batch_size < 1:
        raise ValueError("--batch-size must be >= 1")
    if args.jobs is not None and args.jobs < 1:
        raise ValueError("--jobs must be >= 1")
    source = str(args.input).lower()
    input_format = args.input_format or ("jsonl" if source.endswith((".jsonl", ".ndjson")) else "csv")
    if input_format == "jsonl" and (args.no_header or args.delimiter is not None):
        raise ValueError("--no-header and --delimiter apply to CSV input, not JSON Lines")
    opts = CsvOptions(
        input=args.input,
        output=args.output,
        fmt=args.format or ("jsonl" if str(args.output).endswith((".jsonl", ".ndjson")) else "csv"),
        input_format=input_format,
        header=not args.no_header,
        id_column=args.id_column,
        text_column=args.text_column,
        delimiter=delimiter(args.delimiter, source),
        encoding=args.encoding,
        label_format=args.label_format,
        probabilities=args.probabilities,
        errors=args.errors,
        chunk_rows=args.chunk_rows,
        jobs=args.jobs,
    )
    spec = ModelSpec(
        args.model,
        args.variant,
        args.provider,
        args.threads,
        args.batch_size,
        args.max_chars or DEFAULT_MAX_CHARS,
        args.long_texts,
    )
    summary = predict_file(spec, opts, progress=None if args.quiet else Progress())
    if not args.quiet:
        _print_summary(summary, args)
    return EXIT_ROW_ERRORS if summary.errors else EXIT_OK


def delimiter(value: str | None, source: str = "") -> str:
    """``--delimiter``: one character; ``tab`` or a typed ``\\t`` mean a tab (default: tab for .tsv)."""
    if value is None:
        return "\t" if source.endswith(".tsv") else ","
    value = {"tab": "\t", "\\t": "\t"}.get(value.lower(), value)
    if len(value) != 1:
        raise ValueError(f"--delimiter must be one character, or tab (got {value!r})")
    return value


def _print_summary(summary: Any, args: argparse.Namespace) -> None:
    from .csvio import DUPLICATE_ID_WINDOW

    stats = summary.stats
    target = "stdout" if args.output == "-" else args.output
    extra = []
    if stats.blank_lines:
        extra.append(f"{stats.blank_lines} blank lines skipped")
    if stats.duplicate_ids:
        window = f" among the first {DUPLICATE_ID_WINDOW:,} ids" if stats.duplicate_window_full else ""
        extra.append(f"{stats.duplicate_ids} duplicate ids{window}")
    w = summary.windows
    if w is not None and w.texts:
        extra.append(f"{w.windows / w.texts:.2f} windows per text, at most {w.most}")
    tail = f" ({'; '.join(extra)})" if extra else ""
    print(
        f"edgeclf: {summary.rows:,} rows -> {target}: {summary.rows - summary.errors:,} classified, "
        f"{summary.errors:,} errors{' (rows and lines count from 1)' if summary.errors else ''}{tail}; model {summary.model}/{summary.variant} on {summary.provider}; "
        f"{summary.seconds:.2f} s ({summary.rows / max(summary.seconds, 1e-9):,.0f} rows/s)",
        file=sys.stderr,
    )
    if summary.bad_bytes:
        guess = (
            f"; they decode as {summary.encoding_hint}: try --encoding {summary.encoding_hint}"
            if summary.encoding_hint
            else "; pass the file's encoding with --encoding"
        )
        print(
            f"edgeclf: {summary.bad_bytes:,} rows hold bytes that are not valid {args.encoding}{guess}",
            file=sys.stderr,
        )


# --------------------------------------------------------------------- models / info


def _models(args: argparse.Namespace) -> int:
    from . import list_models
    from .bundle import embedded_root, read_manifest

    names = list_models()
    entries = [read_manifest(embedded_root() / name).summary() for name in names]
    if args.memory:
        from .profile.footprint import model_memory

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
    if args.json:
        raw = json.loads((b.root / "manifest.json").read_text(encoding="utf-8"))
        raw["_location"] = str(b.root)
        raw["_verified"] = True
        print(json.dumps(raw, indent=2, ensure_ascii=False))
    else:
        print("\n".join(info_lines(b.manifest, str(b.root))))
    return EXIT_OK


def info_lines(m: Any, location: str) -> list[str]:
    """A bundle's manifest as a short readable summary (``edgeclf info``)."""
    head = "multi-label, thresholds per label" if m.head.kind == "multi_label" else "one label per text"
    out = [
        f"{m.name}: {m.description}" if m.description else m.name,
        f"  task       {m.task} ({head})",
        f"  labels     {', '.join(m.labels)}",
        f"  reads      up to {m.max_length} tokens per text (tokenizer {m.tokenizer.kind})",
        "  variants   (size, measured accuracy)",
    ]
    for v in m.variants.values():
        acc = v.metrics.get("accuracy")
        measured = (
            f"accuracy {acc:.4f} on {v.metrics.get('dataset', '?')}"
            if isinstance(acc, float)
            else "accuracy not measured"
        )
        default = "  (default)" if v.name == m.default_variant else ""
        out.append(f"    {v.name:<12} {v.file.size / 2**20:7.1f} MiB  {measured}{default}")
    prefs = ", ".join(f"{p}: {v}" for p, v in m.provider_variants.items())
    out.append(f"  providers  {prefs or 'the default variant everywhere'} (--provider auto picks)")
    for source in [*m.model_card.get("training_data", []), *m.model_card.get("vocabulary", [])]:
        if isinstance(source, dict) and source.get("terms"):
            out.append(f"  terms      {source.get('name', source.get('id', '?'))}: {source['terms']}")
    out.append(f"  location   {location} (verified; --json prints the whole manifest)")
    return out
