"""``edgeclf export ...``: train/export models into bundles."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="edgeclf export", description="Train and export models to edgeclf bundles."
    )
    sub = p.add_subparsers(dest="what", required=True, metavar="MODEL")
    k = sub.add_parser("keras-imdb", help="train the TensorFlow tutorial IMDB model, export fp32 + int8")
    k.add_argument(
        "--data",
        default=None,
        help="IMDB: dir with train/test.csv.gz, an aclImdb/ dir, or 'download' (default: ../shared/data/imdb)",
    )
    k.add_argument(
        "--word-index",
        default=None,
        help="Keras imdb_word_index.json (default: ../shared/data/keras/, else the Keras download)",
    )
    k.add_argument("--out", default="runtime/models/keras-imdb", help="bundle directory to (re)write")
    k.add_argument("--epochs", type=int, default=40)
    k.add_argument("--seed", type=int, default=42)
    k.add_argument("--limit", type=int, default=None, help="train on this many reviews only (smoke tests)")
    k.add_argument("--eval-limit", type=int, default=None, help="evaluate on this many test reviews only")
    args = p.parse_args(argv)
    if args.what == "keras-imdb":
        from .keras_imdb import export_bundle

        export_bundle(
            args.out,
            args.data,
            word_index=args.word_index,
            epochs=args.epochs,
            seed=args.seed,
            limit=args.limit,
            eval_limit=args.eval_limit,
            verbose=2,
        )
    return 0
