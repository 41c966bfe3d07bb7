"""One small classifier per tokenizer kind, fine-tuned on IMDB on the CPU: int8 against fp32 on all 25,000 test reviews.

No pretrained checkpoint can be downloaded here, so each model starts from
random weights (say so wherever its accuracy is quoted):

- kinds: WordPiece (``bert-uncased``), byte-level BPE (``roberta``),
  SentencePiece Unigram (``xlm-roberta``), each with the tokenizer
  tests/byo_checkpoints.py trains, here on 5,000 training reviews with an
  8,000-piece vocabulary, saved by the family's fast tokenizer class;
- shape: hidden 128, 2 layers, 4 heads, FFN 512, 256 positions;
- training: 22,500 IMDB training reviews (the other 2,500 are validation,
  where the epoch's accuracy is logged), AdamW, linear warm-up and decay,
  batches of 32 texts of similar length, truncated as the tokenizer
  truncates; saved with ``save_pretrained``;
- measurement: ``edgeclf export transformers`` of that directory with all
  25,000 test reviews as ``--eval-data``, so accuracy per variant and label
  agreement with fp32 are the exporter's own metrics through the runtime
  (its pure-Python tokenizer and onnxruntime).

    python benchmarks/byo_finetune.py [--families bert-uncased,roberta,xlm-roberta] [--epochs 1] [--work DIR]

Writes benchmarks/results/byo_finetune.json (families measured earlier stay in it).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, markdown_table, save
from tests.byo_checkpoints import FAMILIES, _config, _tokenizer_dir

SHAPE = {"hidden": 128, "layers": 2, "heads": 4, "ffn": 512, "positions": 256}
LABELS = {0: "negative", 1: "positive"}
RESULT = Path(__file__).parent / "results" / "byo_finetune.json"


def batches(n: int, lengths: list[int], size: int, rng: random.Random) -> list[list[int]]:
    """Indices in batches of similar length (less padding), the batches in random order."""
    order = sorted(range(n), key=lambda i: (lengths[i], rng.random()))
    out = [order[i : i + size] for i in range(0, n, size)]
    rng.shuffle(out)
    return out


def collate(ids: list[list[int]], index: list[int], pad_id: int) -> tuple[Any, Any]:
    """The runtime's own padding (``edgeclf.classifier.pad``), as torch tensors."""
    import torch

    from edgeclf.classifier import pad

    x, mask = pad([ids[i] for i in index], None, pad_id)
    return torch.from_numpy(x), torch.from_numpy(mask.astype("int64"))


def accuracy(model: Any, ids: list[list[int]], labels: list[int], pad_id: int) -> float:
    import torch

    model.eval()
    right = 0
    with torch.no_grad():
        for start in range(0, len(ids), 64):
            index = list(range(start, min(start + 64, len(ids))))
            x, mask = collate(ids, index, pad_id)
            pred = model(input_ids=x, attention_mask=mask).logits.argmax(-1)
            right += int((pred == torch.tensor([labels[i] for i in index])).sum())
    model.train()
    return right / len(ids)


def fine_tune(family: str, work: Path, train: tuple[list[str], list[int]], epochs: int) -> tuple[Path, dict]:
    """Train ``family`` from random weights; returns its ``save_pretrained`` directory and a log."""
    import torch
    import transformers

    out = work / f"finetuned-{family}"
    if (out / "config.json").is_file():
        return out, json.loads((out / "edgeclf_training.json").read_text())
    texts, labels = train
    tok_dir = _tokenizer_dir(FAMILIES[family][0], family, texts[:5000], work, 8000)
    tok = transformers.AutoTokenizer.from_pretrained(str(tok_dir))
    config = _config(family, tok, 2, False, SHAPE)
    config.id2label, config.label2id = LABELS, {v: k for k, v in LABELS.items()}
    torch.manual_seed(0)
    model = transformers.AutoModelForSequenceClassification.from_config(config)
    ids = tok(texts, truncation=True, max_length=SHAPE["positions"])["input_ids"]
    held = 2500
    tr_ids, tr_labels, va_ids, va_labels = ids[held:], labels[held:], ids[:held], labels[:held]
    rng = random.Random(0)
    steps = epochs * -(-len(tr_ids) // 32)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    sched = transformers.get_linear_schedule_with_warmup(opt, steps // 20, steps)
    log: dict[str, Any] = {
        "shape": SHAPE,
        "train_texts": len(tr_ids),
        "epochs": [],
        "tokenizer_vocab": len(tok),
    }
    started = time.time()
    for epoch in range(epochs):
        for index in batches(len(tr_ids), [len(t) for t in tr_ids], 32, rng):
            x, mask = collate(tr_ids, index, tok.pad_token_id)
            y = torch.tensor([tr_labels[i] for i in index])
            loss = model(input_ids=x, attention_mask=mask, labels=y).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step(), sched.step(), opt.zero_grad()
            done = sched.last_epoch
            if done % 100 == 0:
                print(
                    f"{family} step {done}/{steps} loss {loss.item():.3f} ({time.time() - started:.0f} s)",
                    flush=True,
                )
        val = accuracy(model, va_ids, va_labels, tok.pad_token_id)
        log["epochs"].append({"epoch": epoch + 1, "validation_accuracy": round(val, 4)})
        print(f"{family} epoch {epoch + 1}: validation {val:.4f} ({time.time() - started:.0f} s)", flush=True)
    log["train_seconds"] = round(time.time() - started)
    tmp = work / f".finetuned-{family}.tmp"
    model.save_pretrained(str(tmp))
    tok.save_pretrained(str(tmp))
    (tmp / "edgeclf_training.json").write_text(json.dumps(log), encoding="utf-8")
    tmp.rename(out)
    return out, log


def measure(family: str, ckpt: Path, work: Path, test: tuple[list[str], list[int]]) -> dict[str, Any]:
    from edgeclf.export.transformers import export_transformers

    started = time.time()
    manifest = export_transformers(
        ckpt, work / f"bundle-{family}", name=f"imdb-{family}", eval_texts=test[0], eval_labels=test[1],
        eval_dataset="IMDB test (25,000 reviews)", eval_command="python benchmarks/byo_finetune.py",
        fp16=False, log=lambda m: print(f"  {m}"[:300], flush=True),
    )  # fmt: skip
    metrics = {
        name: {k: v["metrics"].get(k) for k in ("accuracy", "agreement_with_fp32", "n")}
        for name, v in manifest["variants"].items()
    }
    fp32 = metrics["fp32"]["accuracy"]
    for m in metrics.values():
        m["points_vs_fp32"] = round(100 * (m["accuracy"] - fp32), 2)
    sizes = {n: v["file"]["size"] for n, v in manifest["variants"].items()}
    return {
        "kind": FAMILIES[family][0],
        "variants": metrics,
        "bytes": sizes,
        "export_s": round(time.time() - started),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--families", default="bert-uncased,roberta,xlm-roberta")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    p.add_argument("--work", default="/tmp/edgeclf-finetune")
    args = p.parse_args()
    from edgeclf.export.data import load_imdb

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    shared = Path(args.shared)
    train, test = load_imdb("train", shared / "imdb"), load_imdb("test", shared / "imdb")
    order = list(range(len(train[0])))
    random.Random(1).shuffle(order)  # the training file is sorted by label
    train = ([train[0][i] for i in order], [train[1][i] for i in order])
    result = json.loads(RESULT.read_text()) if RESULT.is_file() else {"families": {}}
    for family in args.families.split(","):
        ckpt, log = fine_tune(family, work, train, args.epochs)
        result["families"][family] = {"training": log, **measure(family, ckpt, work, test)}
        result["machine"] = machine()
        save("byo_finetune", result)
    rows = [
        [
            f,
            r["kind"],
            name,
            f"{m['accuracy']:.4f}",
            f"{m['points_vs_fp32']:+.2f}",
            f"{m['agreement_with_fp32'] or 1:.4f}",
        ]
        for f, r in result["families"].items()
        for name, m in r["variants"].items()
    ]
    print(markdown_table(["family", "tokenizer", "variant", "accuracy", "points vs fp32", "agreement"], rows))


if __name__ == "__main__":
    main()
