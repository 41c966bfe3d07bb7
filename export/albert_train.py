"""The project's own ALBERT checkpoints (no pretrained ALBERT can be downloaded).

Three steps, each a function and a CLI flag of ``edgeclf export albert-train``:

1. ``train_sentencepiece``: a unigram SentencePiece model trained with the
   ``sentencepiece`` package on ALBERT-preprocessed text (whitespace folded,
   ``````/``''`` -> ``"``, accents stripped, lowercased), with ALBERT's ids:
   ``<pad>``=0, ``<unk>``=1, ``[CLS]``=2, ``[SEP]``=3, ``[MASK]``=4, and
   nmt_nfkc normalization. The result loads in ``transformers.AlbertTokenizer``.
2. optional masked-LM pre-training on unlabeled text (``AlbertForMaskedLM``).
3. fine-tuning ``AlbertForSequenceClassification`` with AdamW, linear warm-up
   and decay, length-bucketed batches (little padding), keeping the best
   validation epoch.

The output is an ordinary ``save_pretrained`` directory (config.json,
model.safetensors, spiece.model, tokenizer files), exactly what a user brings
from their own fine-tuning, so ``edgeclf export albert`` treats both alike.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import model_card, require

SPECIALS = ["[CLS]", "[SEP]", "[MASK]"]


def albert_preprocess(text: str, lower: bool = True, keep_accents: bool = False) -> str:
    """AlbertTokenizer.preprocess_text, for the SentencePiece training corpus."""
    out = " ".join(text.strip().split())
    out = out.replace("``", '"').replace("''", '"')
    if not keep_accents:
        out = unicodedata.normalize("NFKD", out)
        out = "".join(c for c in out if not unicodedata.combining(c))
    return out.lower() if lower else out


def train_sentencepiece(texts: Sequence[str], out_dir: Path, vocab_size: int = 16000, seed: int = 0) -> Path:
    spm = require("sentencepiece", "training a SentencePiece vocabulary")
    out_dir.mkdir(parents=True, exist_ok=True)
    corpus = out_dir / "spm_corpus.txt"
    with open(corpus, "w", encoding="utf-8") as fh:
        for t in texts:
            fh.write(albert_preprocess(t) + "\n")
    prefix = out_dir / "spiece"
    spm.set_random_generator_seed(seed)
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(prefix),
        model_type="unigram",
        vocab_size=vocab_size,
        pad_id=0,
        unk_id=1,
        bos_id=-1,
        eos_id=-1,
        pad_piece="<pad>",
        unk_piece="<unk>",
        control_symbols=SPECIALS,
        normalization_rule_name="nmt_nfkc",
        character_coverage=0.9999,
        max_sentence_length=1 << 16,
        input_sentence_size=200_000,
        shuffle_input_sentence=True,
        num_threads=os.cpu_count() or 1,
        minloglevel=2,
    )
    corpus.unlink()
    (out_dir / "spiece.vocab").unlink(missing_ok=True)
    return prefix.with_suffix(".model")


def make_tokenizer(spiece: Path, max_length: int) -> Any:
    transformers = require("transformers", "ALBERT training")
    tok = transformers.AlbertTokenizer(str(spiece), do_lower_case=True, keep_accents=False, remove_space=True)
    tok.model_max_length = max_length
    return tok


def encode_all(tok: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    return [tok.encode(t, truncation=True, max_length=max_length) for t in texts]


def _batches(
    lengths: Sequence[int], batch_size: int, rng: random.Random, bucket: int = 50
) -> list[list[int]]:
    """Shuffled batches of similar length: sort within buckets of ``bucket`` batches."""
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    span = batch_size * bucket
    batches = []
    for s in range(0, len(idx), span):
        chunk = sorted(idx[s : s + span], key=lambda i: lengths[i])
        batches += [chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def _tensor_batch(torch: Any, seqs: Sequence[Sequence[int]]) -> tuple[Any, Any]:
    from edgeclf.classifier import pad

    ids, mask = pad(seqs, None, 0)
    return torch.from_numpy(ids), torch.from_numpy(mask.astype(np.int64))


def optimizer_step(torch: Any, model: Any, loss: Any, opt: Any, sched: Any) -> None:
    """Backward, clip gradients at 1.0, step optimizer and schedule: every training loop here."""
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()
    opt.zero_grad()


#: the config fields that describe an ALBERT's shape (reports, manifests)
ARCH_KEYS = (
    "vocab_size",
    "embedding_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
)


def _schedule(torch: Any, opt: Any, total: int, warmup: float) -> Any:
    warm = max(1, int(total * warmup))

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total - step) / max(1, total - warm))

    return torch.optim.lr_scheduler.LambdaLR(opt, f)


def mlm_pretrain(
    model_dir: Path,
    config: Any,
    seqs: list[list[int]],
    *,
    epochs: float,
    batch_size: int,
    lr: float,
    seed: int,
    log: Callable[[str], None],
    time_budget: float | None = None,
) -> None:
    torch = require("torch", "ALBERT pre-training")
    transformers = require("transformers", "ALBERT pre-training")
    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = transformers.AlbertForMaskedLM(config)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    steps_per_epoch = math.ceil(len(seqs) / batch_size)
    total = int(steps_per_epoch * epochs)
    sched = _schedule(torch, opt, total, 0.06)
    step, t0 = 0, time.perf_counter()
    specials = torch.tensor([0, 2, 3])
    while step < total:
        for b in _batches([len(s) for s in seqs], batch_size, rng):
            ids, mask = _tensor_batch(torch, [seqs[i] for i in b])
            labels = ids.clone()
            prob = torch.full(ids.shape, 0.15)
            prob[torch.isin(ids, specials)] = 0.0
            chosen = torch.bernoulli(prob).bool()
            labels[~chosen] = -100
            r = torch.rand(ids.shape)
            inputs = ids.clone()
            inputs[chosen & (r < 0.8)] = 4  # [MASK]
            rand_tok = chosen & (r >= 0.8) & (r < 0.9)
            inputs[rand_tok] = torch.randint(5, config.vocab_size, (int(rand_tok.sum()),))
            out = model(input_ids=inputs, attention_mask=mask, labels=labels)
            optimizer_step(torch, model, out.loss, opt, sched)
            step += 1
            if step % 50 == 0:
                log(f"mlm step {step}/{total} loss {out.loss.item():.3f} ({time.perf_counter() - t0:.0f} s)")
            if step >= total or (time_budget and time.perf_counter() - t0 > time_budget):
                total = step
                break
    model.save_pretrained(model_dir / "mlm", safe_serialization=True)


def finetune(
    out_dir: Path,
    config: Any,
    train: tuple[list[list[int]], list[int]],
    val: tuple[list[list[int]], list[int]],
    *,
    init: Path | None,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    log: Callable[[str], None],
    time_budget: float | None = None,
    eval_every: int | None = None,
) -> dict[str, Any]:
    torch = require("torch", "ALBERT fine-tuning")
    transformers = require("transformers", "ALBERT fine-tuning")
    torch.manual_seed(seed)
    rng = random.Random(seed)
    if init is not None:
        model = transformers.AlbertForSequenceClassification.from_pretrained(str(init), config=config)
    else:
        model = transformers.AlbertForSequenceClassification(config)
    x, y = train
    steps_per_epoch = math.ceil(len(x) / batch_size)
    total = steps_per_epoch * epochs
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = _schedule(torch, opt, total, 0.1)
    best = {"accuracy": -1.0, "step": 0}
    t0 = time.perf_counter()
    step = 0
    eval_every = eval_every or steps_per_epoch

    def evaluate() -> float:
        model.eval()
        right = 0
        with torch.no_grad():
            order = sorted(range(len(val[0])), key=lambda i: len(val[0][i]))
            for s in range(0, len(order), 128):
                b = order[s : s + 128]
                ids, mask = _tensor_batch(torch, [val[0][i] for i in b])
                pred = model(input_ids=ids, attention_mask=mask).logits.argmax(-1)
                right += int((pred == torch.tensor([val[1][i] for i in b])).sum())
        model.train()
        return right / len(val[0])

    model.train()
    stop = False
    for epoch in range(epochs):
        for b in _batches([len(s) for s in x], batch_size, rng):
            ids, mask = _tensor_batch(torch, [x[i] for i in b])
            labels = torch.tensor([y[i] for i in b])
            out = model(input_ids=ids, attention_mask=mask, labels=labels)
            optimizer_step(torch, model, out.loss, opt, sched)
            step += 1
            if step % 50 == 0:
                log(
                    f"epoch {epoch + 1} step {step}/{total} loss {out.loss.item():.3f} "
                    f"lr {sched.get_last_lr()[0]:.2e} ({time.perf_counter() - t0:.0f} s)"
                )
            over = bool(time_budget and time.perf_counter() - t0 > time_budget)
            if step % eval_every == 0 or step == total or over:
                acc = evaluate()
                log(f"validation accuracy {acc:.4f} at step {step}")
                if acc > best["accuracy"]:
                    best = {"accuracy": acc, "step": step, "epoch": epoch + 1}
                    model.save_pretrained(out_dir, safe_serialization=True)
            if over:
                stop = True
                break
        if stop:
            break
    best["train_seconds"] = round(time.perf_counter() - t0, 1)
    best["steps"] = step
    return best


def albert_config(
    vocab_size: int,
    labels: Sequence[str],
    *,
    hidden: int,
    embedding: int,
    layers: int,
    heads: int,
    intermediate: int,
    max_length: int,
) -> Any:
    transformers = require("transformers", "ALBERT training")
    return transformers.AlbertConfig(
        vocab_size=vocab_size,
        embedding_size=embedding,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=max(512, max_length),
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        classifier_dropout_prob=0.1,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={lab: i for i, lab in enumerate(labels)},
        pad_token_id=0,
    )


def train_classifier(
    out: Path,
    tok: Any,
    texts: Sequence[str],
    labels: Sequence[int],
    label_names: Sequence[str],
    *,
    max_length: int,
    hidden: int,
    embedding: int,
    layers: int,
    heads: int,
    intermediate: int,
    epochs: int,
    batch_size: int,
    lr: float,
    validation: int,
    seed: int,
    mlm_texts: Sequence[str] = (),
    mlm_epochs: float = 0.0,
    mlm_lr: float = 1e-3,
    time_budget: float | None = None,
    mlm_time_budget: float | None = None,
    eval_every: int | None = None,
    log: Callable[[str], None] = print,
    extra: dict[str, Any] | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Shuffle, hold out ``validation`` texts, (pre-train,) fine-tune, save with the tokenizer."""
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)  # data files are often sorted by label
    if limit:
        order = order[:limit]
        mlm_texts = list(mlm_texts)[:limit]
    t0 = time.perf_counter()
    seqs = encode_all(tok, [texts[i] for i in order], max_length)
    ys = [labels[i] for i in order]
    log(
        f"tokenized {len(seqs)} texts in {time.perf_counter() - t0:.0f} s; "
        f"mean length {np.mean([len(s) for s in seqs]):.0f}"
    )
    n_val = min(validation, len(seqs) // 5)
    val = (seqs[:n_val], ys[:n_val])
    train = (seqs[n_val:], ys[n_val:])
    config = albert_config(
        len(tok),
        label_names,
        hidden=hidden,
        embedding=embedding,
        layers=layers,
        heads=heads,
        intermediate=intermediate,
        max_length=max_length,
    )
    init = None
    if mlm_epochs > 0:
        mlm_seqs = encode_all(tok, list(mlm_texts), max_length) + train[0]
        log(f"mlm corpus: {len(mlm_seqs)} sequences")
        mlm_pretrain(
            out,
            config,
            mlm_seqs,
            epochs=mlm_epochs,
            batch_size=batch_size,
            lr=mlm_lr,
            seed=seed,
            log=log,
            time_budget=mlm_time_budget,
        )
        init = out / "mlm"
    best = finetune(
        out,
        config,
        train,
        val,
        init=init,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        log=log,
        time_budget=time_budget,
        eval_every=eval_every,
    )
    tok.save_pretrained(str(out))
    summary = {
        "config": {k: getattr(config, k) for k in ARCH_KEYS},
        "max_length": max_length,
        "train_texts": len(train[0]),
        "validation_texts": n_val,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "mlm_epochs": mlm_epochs,
        "seed": seed,
        "best": best,
        **(extra or {}),
    }
    (out / "training.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    log(f"done: {summary}")
    return summary


def train_albert(
    out_dir: str | os.PathLike[str],
    data: str | os.PathLike[str] | None = None,
    *,
    vocab_size: int = 16000,
    max_length: int = 256,
    hidden: int = 128,
    embedding: int = 128,
    layers: int = 4,
    heads: int = 2,
    intermediate: int = 512,
    epochs: int = 3,
    batch_size: int = 32,
    lr: float = 1e-3,
    mlm_epochs: float = 0.0,
    validation: int = 2500,
    limit: int | None = None,
    seed: int = 42,
    threads: int | None = None,
    time_budget: float | None = None,
    eval_every: int | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """IMDB: SentencePiece vocabulary on train + unlabeled reviews, then :func:`train_classifier`."""
    torch = require("torch", "ALBERT training")
    from .data import load_imdb, read_csv_rows, shared_data_dir

    if threads:
        torch.set_num_threads(threads)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts, labels = load_imdb("train", data)
    unsup: list[str] = []
    src = Path(data) if data else (shared_data_dir() or Path(".")) / "imdb"
    if (src / "unsup.csv.gz").is_file():
        unsup = [r["text"] for r in read_csv_rows(src / "unsup.csv.gz")]
    spiece = out / "spiece.model"
    if not spiece.exists():
        t0 = time.perf_counter()
        train_sentencepiece(texts + unsup, out, vocab_size=vocab_size, seed=seed)
        log(f"sentencepiece: {vocab_size} pieces in {time.perf_counter() - t0:.0f} s")
    tok = make_tokenizer(spiece, max_length)
    model_card.write_for_checkpoint(out, model_card.albert_imdb())  # `export albert` copies it
    return train_classifier(
        out,
        tok,
        texts,
        labels,
        ["negative", "positive"],
        max_length=max_length,
        hidden=hidden,
        embedding=embedding,
        layers=layers,
        heads=heads,
        intermediate=intermediate,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        validation=validation,
        seed=seed,
        mlm_texts=unsup,
        mlm_epochs=mlm_epochs,
        time_budget=time_budget,
        eval_every=eval_every,
        log=log,
        extra={"data": "IMDB train (25,000 reviews)"},
    )
