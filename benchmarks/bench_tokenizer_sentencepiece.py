"""Texts per second: the pure-Python SentencePiece shim vs transformers'
AlbertTokenizer (slow, the exactness reference), AlbertTokenizerFast (Rust) and
the raw ``sentencepiece`` package, one text per call, on the IMDB test reviews.

    python benchmarks/bench_tokenizer_sentencepiece.py [--limit N] [--repeat 2]
        [--max-length 512] [--model tests/data/albert/spiece.model]

Why per text: ``edgeclf predict`` tokenizes row by row while it streams a CSV,
so batch APIs would flatter the Rust tokenizer. "first pass" starts every
tokenizer fresh (the shim's word cache empty), which is what one ``edgeclf
predict`` run over a file sees; "best pass" is the best of ``--repeat``
further passes (warm cache). "raw sentencepiece" is only the C++ core on the
raw text (no ALBERT preprocessing, special-token handling or truncation, so
not the same ids): a floor, not a candidate. "cold start" runs a new Python
process that imports the runtime, builds the tokenizer from the bundle files
and encodes one review.

Run it on an idle machine: the load average is printed because a background
job (e.g. a training run) skews every number; "texts per CPU-s" (process CPU
time instead of wall time) is less sensitive to that. Without ../shared/data
the committed sample (tests/data/imdb_sample.csv) is used.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from common import ROOT, time_tokenizers

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # single-threaded, like the shim

DEFAULT_MODEL = ROOT / "tests" / "data" / "albert" / "spiece.model"

COLD = """
import json, sys, time
t0 = time.perf_counter()
from pathlib import Path
from edgeclf.tokenizers import build
out = Path(sys.argv[1])
config = json.loads((out / "config.json").read_text())
files = {k: (out / v).read_bytes() for k, v in json.loads((out / "files.json").read_text()).items()}
tok = build("sentencepiece-unigram", files, config, int(sys.argv[2]))
tok.encode(sys.argv[3])
print(time.perf_counter() - t0)
"""


def imdb_texts(limit: int) -> tuple[list[str], str]:
    try:
        from edgeclf.export.data import load_imdb

        texts, _ = load_imdb("test")
        source = "IMDB test reviews"
    except (FileNotFoundError, ImportError):
        with open(ROOT / "tests" / "data" / "imdb_sample.csv", encoding="utf-8", newline="") as fh:
            texts = [r["text"] for r in csv.DictReader(fh)]
        source = "tests/data/imdb_sample.csv (no ../shared/data)"
    return (texts[:limit] if limit else texts), source


def cold_starts(files_dir: Path, max_length: int, text: str, runs: int = 5) -> list[float]:
    """Seconds for a new process to import the shim, build it from the bundle files and encode ``text``."""
    colds = []
    for _ in range(runs):
        run = subprocess.run(
            [sys.executable, "-c", COLD, str(files_dir), str(max_length), text],
            capture_output=True,
            text=True,
            check=True,
        )
        colds.append(float(run.stdout.strip()))
    return colds


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="spiece.model to convert and compare")
    ap.add_argument("--limit", type=int, default=0, help="only the first N reviews (0 = all 25,000)")
    ap.add_argument("--repeat", type=int, default=2, help="warm passes after the first")
    ap.add_argument("--max-length", type=int, default=512)
    args = ap.parse_args(argv)

    import json

    import sentencepiece as spm
    import transformers
    from transformers import AlbertTokenizer, AlbertTokenizerFast

    from edgeclf.export.spm_convert import convert, reference_settings
    from edgeclf.tokenizers.sentencepiece import SentencePieceTokenizer

    transformers.logging.set_verbosity_error()
    texts, source = imdb_texts(args.limit)
    n, ml = len(texts), args.max_length
    slow_ref = AlbertTokenizer(str(args.model))
    tmp = Path(tempfile.mkdtemp(prefix="bench-spm-"))  # the converted bundle files, removed at the end
    files, config = convert(args.model, tmp, **reference_settings(slow_ref))
    (tmp / "config.json").write_text(json.dumps(config))
    (tmp / "files.json").write_text(json.dumps(files))
    data = {k: (tmp / v).read_bytes() for k, v in files.items()}

    def make_shim() -> Callable[[str], list[int]]:
        return SentencePieceTokenizer.from_files(data, config, ml).encode

    def make_slow() -> Callable[[str], list[int]]:
        tok = AlbertTokenizer(str(args.model))
        return lambda t: tok.encode(t, truncation=True, max_length=ml)

    def make_fast() -> Callable[[str], list[int]]:
        tok = AlbertTokenizerFast(str(args.model))
        return lambda t: tok.encode(t, truncation=True, max_length=ml)

    def make_raw() -> Callable[[str], list[int]]:
        sp = spm.SentencePieceProcessor(model_file=str(args.model))
        return sp.encode

    makers = {
        "edgeclf SentencePieceTokenizer (pure Python)": make_shim,
        "transformers AlbertTokenizer (slow)": make_slow,
        "transformers AlbertTokenizerFast": make_fast,
        "raw sentencepiece (C++ core only, other ids)": make_raw,
    }
    rows = time_tokenizers(makers, texts, args.repeat)

    colds = cold_starts(tmp, ml, texts[0])
    shutil.rmtree(tmp, ignore_errors=True)
    slow_rate = rows[1]["best"]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\n{n} {source}, max_length {ml}, model {args.model.name}; "
        f"{platform.platform()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, transformers {transformers.__version__}, "
        f"sentencepiece {spm.__version__}; load average {load:.2f}\n"
    )
    print(
        "| tokenizer | load (ms) | first pass (texts/s) | first pass (texts per CPU-s) "
        "| best pass (texts/s) | best vs slow | ids == slow |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        same = "n/a" if "raw" in r["name"] or r["same_as_slow"] is None else f"{r['same_as_slow']}/{n}"
        print(
            f"| {r['name']} | {r['load_ms']:.0f} | {r['first']:,.0f} | {r['first_cpu']:,.0f} | {r['best']:,.0f} "
            f"| {r['best'] / slow_rate:.2f}x | {same} |"
        )
    print(
        f"\ncold start of the shim (new process: import, build from bundle files, first encode): "
        f"median {statistics.median(colds) * 1000:.0f} ms of {len(colds)} runs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
