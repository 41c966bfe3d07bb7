"""Texts per second: the pure-Python WordPiece shim vs transformers' BertTokenizer
(slow, the exactness reference) and BertTokenizerFast (Rust), one text per call
as the runtime's classifier calls it, on the real zh-rumor Weibo posts.

    python benchmarks/bench_tokenizer_wordpiece.py [--limit N] [--repeat 3] [--max-length 512]

Why per text: ``edgeclf predict`` tokenizes row by row while it streams a CSV,
so batch APIs would flatter the Rust tokenizer. "first pass" starts every
tokenizer fresh (the shim's word cache empty); "best pass" is the best of
``--repeat`` further passes. Run it on an idle machine: the load average is
printed because a background job (e.g. a training run) skews every number.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from common import ROOT, time_tokenizers

from edgeclf.tokenizers.wordpiece import WordPieceTokenizer, load_vocab


def default_data() -> Path:
    env = os.environ.get("EDGECLF_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


def read_posts(paths: Sequence[Path]) -> list[str]:
    texts: list[str] = []
    for p in paths:
        with open(p, encoding="utf-8-sig", newline="") as fh:
            texts += [row["text"] for row in csv.DictReader(fh)]
    return texts


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="folder with zh-rumor/ and zh-vocab/")
    ap.add_argument("--limit", type=int, default=0, help="only the first N posts (0 = all)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--max-length", type=int, default=512)
    args = ap.parse_args(argv)

    data = args.data or default_data()
    csvs = sorted((data / "zh-rumor").glob("*.csv"))
    vocab_path = data / "zh-vocab" / "vocab.txt"
    if not csvs or not vocab_path.is_file():
        # the committed test sample keeps the script usable in a fresh clone
        csvs = [ROOT / "tests" / "data" / "zh" / "weibo_sample.csv"]
        vocab_path = ROOT / "tests" / "data" / "zh" / "vocab.txt"
    texts = read_posts(csvs)
    if args.limit:
        texts = texts[: args.limit]
    n, ml = len(texts), args.max_length

    def make_shim() -> Callable[[str], list[int]]:
        return WordPieceTokenizer(load_vocab(vocab_path.read_bytes()), max_length=ml).encode

    makers: dict[str, Callable[[], Callable[[str], list[int]]]] = {"edgeclf WordPieceTokenizer": make_shim}
    try:
        import transformers
        from transformers import BertTokenizer, BertTokenizerFast

        transformers.logging.set_verbosity_error()

        def make_slow() -> Callable[[str], list[int]]:
            tok = BertTokenizer(str(vocab_path))
            return lambda t: tok.encode(t, truncation=True, max_length=ml)

        def make_fast() -> Callable[[str], list[int]]:
            tok = BertTokenizerFast(str(vocab_path))
            return lambda t: tok.encode(t, truncation=True, max_length=ml)

        makers["transformers BertTokenizer (slow)"] = make_slow
        makers["transformers BertTokenizerFast"] = make_fast
        versions = f"transformers {transformers.__version__}"
    except ImportError:
        versions = "transformers not installed: shim only"

    rows = time_tokenizers(makers, texts, args.repeat)
    shim_rate = rows[0]["best"]
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    print(
        f"\n{n} posts ({', '.join(p.name for p in csvs)}), max_length {ml}; "
        f"{platform.platform()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {versions}; load average {load[0]:.2f}\n"
        if isinstance(load[0], float)
        else f"\n{n} posts, max_length {ml}; {platform.platform()}, {os.cpu_count()} CPUs\n"
    )
    print("| tokenizer | load (ms) | first pass (texts/s) | best pass (texts/s) | vs shim | ids == slow |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        same = "n/a" if r["same_as_slow"] is None else f"{r['same_as_slow']}/{n}"
        print(
            f"| {r['name']} | {r['load_ms']:.0f} | {r['first']:,.0f} | {r['best']:,.0f} "
            f"| {r['best'] / shim_rate:.2f}x | {same} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
