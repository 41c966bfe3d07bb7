"""Which end of a long review should an ALBERT keep?

42% of IMDB reviews are longer than the 254 pieces a 256-token model reads,
and the end of a review tends to carry its verdict ("... 3/10, avoid").

1. Choice, on clean data: ``checkpoints/albert-imdb-ffn1024`` (the parent
   of the shipped model, fine-tuned on 22,500 training reviews) scores the
   recipe's 2,500 held-out validation reviews with different truncations of
   the same untruncated ids: the first 254 pieces (transformers' default),
   the last 254 (``truncation_side="left"``), head + tail mixes, and 510
   pieces (positions the model was never fine-tuned on). PyTorch, fp32.
2. Confirmation, once, on all 25,000 test reviews: the shipped bundle's
   default variant through the runtime with its tokenizer as shipped and with
   the other side.

    python benchmarks/truncation.py [--skip-validation]

Writes benchmarks/results/truncation.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, markdown_table, save

import edgeclf
from edgeclf.export import teacher
from edgeclf.export.data import load_imdb, shared_data_dir
from edgeclf.tokenizers import KeepEnd

PARENT = ROOT / "checkpoints" / "albert-imdb-ffn1024"
#: name -> (pieces kept, of which from the start); the rest come from the end
STRATEGIES = {
    "first 254 (right truncation)": (254, 254),
    "last 254 (left truncation)": (254, 0),
    "first 32 + last 222": (254, 32),
    "first 64 + last 190": (254, 64),
    "first 128 + last 126": (254, 128),
    "first 510": (510, 510),
    "first 128 + last 382": (510, 128),
}


def keep(ids: list[int], total: int, head: int) -> list[int]:
    if len(ids) <= total:
        return ids
    return ids[:head] + (ids[len(ids) - (total - head) :] if total > head else [])


def validation(texts: list[str], labels: np.ndarray, tokenizer) -> list[dict]:
    import torch
    from transformers import AlbertForSequenceClassification

    torch.set_num_threads(2)
    model = AlbertForSequenceClassification.from_pretrained(str(PARENT)).eval()
    raw = [tokenizer.tokenize_ids(t) for t in texts]
    cls, sep = tokenizer.cls_id, tokenizer.sep_id
    out = []
    for name, (total, head) in STRATEGIES.items():
        seqs = [[cls, *keep(r, total, head), sep] for r in raw]
        order = np.argsort([len(s) for s in seqs])
        probs = np.zeros(len(seqs))
        t0 = time.perf_counter()
        with torch.inference_mode():
            for i in range(0, len(seqs), 32):
                idx = order[i : i + 32]
                width = max(len(seqs[j]) for j in idx)
                ids = torch.zeros((len(idx), width), dtype=torch.long)
                mask = torch.zeros_like(ids)
                for k, j in enumerate(idx):
                    ids[k, : len(seqs[j])] = torch.tensor(seqs[j])
                    mask[k, : len(seqs[j])] = 1
                logits = model(input_ids=ids, attention_mask=mask).logits
                probs[idx] = torch.softmax(logits, -1)[:, 1].numpy()
        acc = float(((probs > 0.5) == labels).mean())
        out.append(
            {"truncation": name, "accuracy": round(acc, 4), "seconds": round(time.perf_counter() - t0)}
        )
        print(out[-1], flush=True)
    return out


def test_set(texts: list[str], labels: np.ndarray) -> list[dict]:
    clf = edgeclf.load("albert-imdb")
    shipped = clf.tokenizer
    right = shipped.inner if isinstance(shipped, KeepEnd) else shipped
    out = []
    for name, tok in (("first 254 (right)", right), ("last 254 (left)", KeepEnd(right))):
        clf.tokenizer = tok
        t0 = time.perf_counter()
        proba = clf.predict_proba(texts)
        acc = float((proba.argmax(1) == labels).mean())
        out.append(
            {
                "variant": clf.variant.name,
                "truncation": name,
                "shipped": isinstance(tok, KeepEnd) == isinstance(shipped, KeepEnd),
                "accuracy": round(acc, 4),
                "seconds": round(time.perf_counter() - t0),
            }
        )
        print(out[-1], flush=True)
    clf.close()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--skip-validation", action="store_true", help="only the test-set confirmation")
    a = p.parse_args(argv)
    data = shared_data_dir()
    if data is None:
        print("needs ../shared/data", file=sys.stderr)
        return 2
    result: dict = {"machine": machine()}
    probe = edgeclf.load("albert-imdb").tokenizer
    probe = probe.inner if isinstance(probe, KeepEnd) else probe
    if not a.skip_validation:
        x_tr, y_tr = load_imdb("train", data / "imdb")
        _, val_idx = teacher.split_indices(len(x_tr), 2500, 42)
        xv, yv = [x_tr[i] for i in val_idx], np.asarray([y_tr[i] for i in val_idx])
        lengths = np.array([len(probe.tokenize_ids(t)) for t in xv])
        result["validation"] = {
            "model": str(PARENT.relative_to(ROOT)),
            "reviews": len(xv),
            "median_pieces": float(np.median(lengths)),
            "share_over_254": round(float((lengths > 254).mean()), 4),
            "rows": validation(xv, yv, probe),
        }
    x_te, y_te = load_imdb("test", data / "imdb")
    result["test"] = {"reviews": len(x_te), "rows": test_set(x_te, np.asarray(y_te))}
    save("truncation", result)
    if "validation" in result:
        v = result["validation"]
        print(f"\nValidation ({v['reviews']} reviews, {v['model']}, fp32):\n")
        print(
            markdown_table(["kept pieces", "accuracy"], [[r["truncation"], r["accuracy"]] for r in v["rows"]])
        )
    print(f"\nTest ({result['test']['reviews']} reviews, shipped bundle):\n")
    rows = [[r["variant"], r["truncation"], r["accuracy"]] for r in result["test"]["rows"]]
    print(markdown_table(["variant", "kept pieces", "accuracy"], rows))
    print(json.dumps(result["machine"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
