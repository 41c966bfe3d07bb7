"""``edgeclf prune``: structured pruning of a checkpoint into its bundle.

    edgeclf prune CHECKPOINT --bundle BUNDLE_DIR --heads 1 --ffn 256 --layers 3 \\
        --train-data ../shared/data/imdb/train.csv.gz --eval-data ../shared/data/imdb/test.csv.gz

Adds two variants to BUNDLE_DIR (which must be the export of CHECKPOINT, so
the tokenizer matches): ``pruned`` (fp32) and ``pruned-int8``, with the
pruning report and measured metrics in the manifest. ALBERT checkpoints
are pruned by :mod:`edgeclf.quantize.prune` (one shared layer); every other
family by :mod:`edgeclf.quantize.prune_families`, into the bundle
``edgeclf export transformers`` wrote.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from edgeclf.export import hub_offline
    from edgeclf.export.data import read_labelled

    hub_offline()  # local checkpoints only, before transformers is imported

    from .prune import prune_into_bundle

    p = argparse.ArgumentParser(
        prog="edgeclf prune", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("checkpoint", help="*ForSequenceClassification save_pretrained directory")
    p.add_argument(
        "--bundle", required=True, help="bundle exported from that checkpoint (variants are added)"
    )
    p.add_argument("--heads", type=int, default=None, help="attention heads to keep (default: all)")
    p.add_argument(
        "--ffn", type=int, default=None, help="FFN neurons (intermediate size) to keep (default: all)"
    )
    p.add_argument(
        "--layers",
        type=int,
        default=None,
        help="layers to keep; ALBERT: passes through the shared layer (default: unchanged)",
    )
    p.add_argument(
        "--vocab-min-count",
        type=int,
        default=None,
        help="also drop embedding rows of tokens seen fewer times in --train-data (they read as unknown)",
    )
    p.add_argument("--name", default="pruned", help="variant name (default: pruned; also writes NAME-int8)")
    p.add_argument(
        "--train-data", required=True, help="labelled CSV(.gz) (text,label) for calibration + recovery"
    )
    p.add_argument(
        "--unlabeled-data",
        default=None,
        help="CSV(.gz) with a text column: more texts for the recovery, distilled from the unpruned model",
    )
    p.add_argument(
        "--unlabeled-limit",
        type=int,
        default=None,
        metavar="N",
        help="a random N of the --unlabeled-data texts (drawn with --seed)",
    )
    p.add_argument(
        "--unlabeled-teacher",
        default=None,
        metavar="VARIANT",
        help="variant of --bundle whose probabilities are the targets on --unlabeled-data "
        "(default: the unpruned checkpoint's)",
    )
    p.add_argument("--eval-data", default=None, help="labelled CSV(.gz) to measure the new variants")
    p.add_argument("--eval-limit", type=int, default=None)
    p.add_argument("--recovery-steps", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--save-checkpoint",
        default=None,
        metavar="DIR",
        help="also keep the pruned PyTorch checkpoint (to export it on its own or prune it further)",
    )
    args = p.parse_args(argv)

    tx, ty = read_labelled(args.train_data)
    ex = ey = None
    if args.eval_data:
        ex, ey = read_labelled(args.eval_data, limit=args.eval_limit)
    from .prune_families import model_type
    from .prune_families import prune_into_bundle as prune_other_family

    extra = _unlabeled(p, args, model_type(args.checkpoint))
    run = prune_into_bundle if model_type(args.checkpoint) == "albert" else prune_other_family
    run(
        args.checkpoint,
        args.bundle,
        heads=args.heads,
        ffn=args.ffn,
        layers=args.layers,
        train_texts=tx,
        train_labels=ty,
        eval_texts=ex,
        eval_labels=ey,
        eval_dataset=f"{args.eval_data} ({len(ex or []):,} rows)",
        name=args.name,
        recovery_steps=args.recovery_steps,
        vocab_min_count=args.vocab_min_count,
        seed=args.seed,
        save_checkpoint=args.save_checkpoint,
        **extra,
        log=lambda s: print(s, flush=True),
    )
    return 0


def _unlabeled(p: argparse.ArgumentParser, args: argparse.Namespace, family: str) -> dict:
    """``--unlabeled-*`` as keyword arguments of the ALBERT pruner (none when not given)."""
    if args.unlabeled_teacher and not args.unlabeled_data:
        p.error("--unlabeled-teacher needs --unlabeled-data")
    if not args.unlabeled_data:
        return {}
    if family != "albert":
        p.error("--unlabeled-data: only ALBERT's recovery reads unlabeled texts")
    from edgeclf.export.data import read_csv_rows

    texts = [t for t in (r.get("text") or "" for r in read_csv_rows(args.unlabeled_data)) if t.strip()]
    if not texts:
        p.error(f"--unlabeled-data {args.unlabeled_data}: no non-empty 'text' column values")
    if args.unlabeled_limit is not None and args.unlabeled_limit < len(texts):
        import random

        texts = random.Random(args.seed).sample(texts, args.unlabeled_limit)
    out: dict = {"unlabeled_texts": texts}
    if args.unlabeled_teacher:
        out["unlabeled_teacher"] = args.unlabeled_teacher
    return out
