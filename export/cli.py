"""``edgeclf export ...``: train/export models into bundles."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import hub_offline


def main(argv: Sequence[str] | None = None) -> int:
    hub_offline()  # before transformers is imported: every export reads local files only
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
    a = sub.add_parser(
        "albert", help="export a Hugging Face ALBERT checkpoint directory to a bundle (fp32 + int8)"
    )
    a.add_argument(
        "checkpoint", help="save_pretrained directory of AlbertForSequenceClassification + tokenizer files"
    )
    a.add_argument("--out", required=True, help="bundle directory to (re)write")
    a.add_argument("--name", default=None, help="bundle name (default: the checkpoint directory's name)")
    a.add_argument("--task", default="text-classification")
    a.add_argument("--description", default="", help="one line for `edgeclf models` / `info`")
    a.add_argument(
        "--max-length", type=int, default=None, help="truncate inputs to this many tokens (default: 512)"
    )
    a.add_argument(
        "--eval-data",
        default=None,
        help="labelled CSV(.gz) (text,label) to measure accuracy into the manifest",
    )
    a.add_argument("--eval-limit", type=int, default=None)
    a.add_argument("--no-int8", action="store_true")
    a.add_argument("--no-fp16", action="store_true", help="skip the fp16 (GPU) variant")
    t = sub.add_parser(
        "albert-vocab", help="train the SentencePiece vocabulary of the project's English ALBERT (IMDB)"
    )
    t.add_argument("--out", default="checkpoints/albert-imdb")
    t.add_argument("--data", default=None)
    t.add_argument("--vocab-size", type=int, default=16000)
    sub.add_parser(
        "albert-recipe",
        help="pre-train + distil + fine-tune the embedded ALBERTs (teach/train en|zh; --help for options)",
        add_help=False,
    )
    h = sub.add_parser(
        "transformers",
        help="export a Hugging Face *ForSequenceClassification checkpoint directory (BERT, RoBERTa, ...)",
    )
    h.add_argument("checkpoint", help="save_pretrained directory: config.json, weights, tokenizer files")
    h.add_argument("--out", required=True, help="bundle directory to (re)write")
    h.add_argument("--name", default=None, help="bundle name (default: the checkpoint directory's name)")
    h.add_argument("--description", default="", help="one line for `edgeclf models` / `info`")
    h.add_argument(
        "--max-length",
        type=int,
        default=None,
        help="truncate inputs to this many tokens (default: the model's)",
    )
    h.add_argument(
        "--eval-data",
        default=None,
        help="labelled CSV(.gz) (text,label; multi-label: names joined by |): accuracy, or tuned thresholds",
    )
    h.add_argument("--eval-limit", type=int, default=None)
    h.add_argument("--no-int8", action="store_true")
    h.add_argument("--no-fp16", action="store_true", help="skip the fp16 (GPU) variant")
    d = sub.add_parser("drop-variants", help="remove variants' files from a bundle, keeping their metrics")
    d.add_argument("bundle")
    d.add_argument("variants", nargs="+")
    argv = list(argv) if argv is not None else sys.argv[1:]
    if argv and argv[0] == "albert-recipe":
        from .albert_recipe import main as recipe

        return recipe(argv[1:])
    args = p.parse_args(argv)
    if args.what == "drop-variants":
        from pathlib import Path

        from .bundle_writer import drop_variants

        drop_variants(Path(args.bundle), args.variants)
        return 0
    if args.what == "albert":
        return _albert(args)
    if args.what == "transformers":
        return _transformers(args)
    if args.what == "albert-vocab":
        from .albert_train import train_vocab

        print(train_vocab(args.out, args.data, vocab_size=args.vocab_size))
        return 0
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


def _albert(args: argparse.Namespace) -> int:
    from .albert import export_albert
    from .data import read_labelled

    texts = labels = None
    dataset = command = ""
    if args.eval_data:
        texts, labels = read_labelled(args.eval_data, limit=args.eval_limit)
        dataset = f"{args.eval_data} ({len(texts):,} rows)"
        command = f"edgeclf evaluate {args.out} --data {args.eval_data}"
    parity_texts = None
    if texts:  # real texts of many lengths: every 50th by length, plus the built-in short/empty ones
        by_length = sorted(texts, key=len)
        parity_texts = [*by_length[:: max(1, len(by_length) // 50)], by_length[-1], "", "Bad.", "[MASK] it."]
    export_albert(
        args.checkpoint,
        args.out,
        name=args.name,
        task=args.task,
        description=args.description,
        max_length=args.max_length,
        eval_texts=texts,
        eval_labels=labels,
        eval_dataset=dataset,
        eval_command=command,
        parity_texts=parity_texts,
        int8=not args.no_int8,
        fp16=not args.no_fp16,
        default_variant="fp32" if args.no_int8 else "int8",
    )
    return 0


def _transformers(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .transformers import export_transformers, read_config
    from .transformers_eval import read_eval

    texts = labels = None
    dataset = command = ""
    if args.eval_data:
        _, _, names, multi = read_config(Path(args.checkpoint))
        texts, labels = read_eval(args.eval_data, names, multi, limit=args.eval_limit)
        dataset = f"{args.eval_data} ({len(texts):,} rows)"
        command = f"edgeclf export transformers {args.checkpoint} --eval-data {args.eval_data}"
    parity_texts = None
    if texts:  # real texts of many lengths: every 50th by length and the longest
        by_length = sorted(texts, key=len)
        parity_texts = [*by_length[:: max(1, len(by_length) // 50)], by_length[-1], "Bad."]
    export_transformers(
        args.checkpoint,
        args.out,
        name=args.name,
        description=args.description,
        max_length=args.max_length,
        parity_texts=parity_texts,
        eval_texts=texts,
        eval_labels=labels,
        eval_dataset=dataset,
        eval_command=command,
        int8=not args.no_int8,
        fp16=not args.no_fp16,
    )
    return 0
