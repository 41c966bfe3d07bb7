"""ALBERT training loops, on the CPU or a GPU: masked-LM pre-training and
fine-tuning on soft targets (true labels mixed with a teacher's probabilities).

Batches are built by :func:`edgeclf.classifier.pad`, the function that pads
at serving time, so a model is trained on exactly the arrays it is served.
On CUDA the forward pass runs under bf16 autocast (weights stay fp32).
"""

from __future__ import annotations

import math
import platform
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import require

#: the config fields that describe an ALBERT's shape (reports, manifests)
ARCH_KEYS = (
    "vocab_size",
    "embedding_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
)


def torch_module() -> Any:
    return require("torch", "ALBERT training")


def machine(device: str) -> str:
    torch = torch_module()
    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    import os

    return f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}"


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


def batches(lengths: Sequence[int], batch_size: int, rng: random.Random, bucket: int = 50) -> list[list[int]]:
    """Shuffled batches of similar length: sort within buckets of ``bucket`` batches."""
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    span = batch_size * bucket
    out = []
    for s in range(0, len(idx), span):
        chunk = sorted(idx[s : s + span], key=lambda i: lengths[i])
        out += [chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size)]
    rng.shuffle(out)
    return out


def tensor_batch(torch: Any, seqs: Sequence[Sequence[int]], device: str = "cpu") -> tuple[Any, Any]:
    from edgeclf.classifier import pad

    ids, mask = pad(seqs, None, 0)
    return (
        torch.from_numpy(ids).to(device, non_blocking=True),
        torch.from_numpy(mask.astype(np.int64)).to(device, non_blocking=True),
    )


def optimizer_step(torch: Any, model: Any, loss: Any, opt: Any, sched: Any) -> None:
    """Backward, clip gradients at 1.0, step optimizer and schedule: every training loop here."""
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)


def schedule(torch: Any, opt: Any, total: int, warmup: float) -> Any:
    warm = max(1, int(total * warmup))

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total - step) / max(1, total - warm))

    return torch.optim.lr_scheduler.LambdaLR(opt, f)


def _autocast(torch: Any, device: str) -> Any:
    if device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    import contextlib

    return contextlib.nullcontext()


def mlm_pretrain(
    config: Any,
    seqs: list[list[int]],
    *,
    device: str = "cpu",
    seconds: float,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 42,
    log: Callable[[str], None] = print,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Masked-LM pre-training for ``seconds`` of wall time; returns (state_dict, summary).

    The schedule's length is set after a short timing run so that the linear
    decay ends when the time is up. Masking is BERT's: 15% of tokens, 80/10/10.
    """
    torch = torch_module()
    transformers = require("transformers", "ALBERT pre-training")
    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = transformers.AlbertForMaskedLM(config).to(device)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    lengths = [len(s) for s in seqs]
    specials = torch.tensor([0, 2, 3], device=device)
    gen = torch.Generator(device=device).manual_seed(seed)

    def step_once(b: list[int], sched: Any) -> float:
        ids, mask = tensor_batch(torch, [seqs[i] for i in b], device)
        prob = torch.full(ids.shape, 0.15, device=device)
        prob[torch.isin(ids, specials)] = 0.0
        chosen = torch.bernoulli(prob, generator=gen).bool()
        labels = ids.masked_fill(~chosen, -100)
        r = torch.rand(ids.shape, device=device, generator=gen)
        inputs = ids.masked_fill(chosen & (r < 0.8), 4)  # [MASK]
        rand_tok = chosen & (r >= 0.8) & (r < 0.9)
        inputs = torch.where(
            rand_tok, torch.randint(5, config.vocab_size, ids.shape, device=device, generator=gen), inputs
        )
        with _autocast(torch, device):
            hidden = model.albert(input_ids=inputs, attention_mask=mask).last_hidden_state
            logits = model.predictions(hidden[chosen])  # the vocabulary head on masked positions only
        loss = torch.nn.functional.cross_entropy(logits.float(), labels[chosen])
        optimizer_step(torch, model, loss, opt, sched)
        return float(loss.detach())

    # Train for ``seconds`` of wall time. The schedule's length is re-estimated from the
    # measured step rate as training goes (the first steps include CUDA warm-up), so the
    # 6% warm-up and the linear decay fit the time budget.
    plan = {"total": 10**9}
    warm_steps = 200

    def lr_at(s: int) -> float:
        if s < warm_steps:
            return (s + 1) / warm_steps
        return max(0.02, (plan["total"] - s) / max(1, plan["total"] - warm_steps))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    t0 = time.perf_counter()
    step, losses, mark = 0, [], (0, t0)
    done = False
    while not done:
        for b in batches(lengths, batch_size, rng):
            losses.append(step_once(b, sched))
            step += 1
            now = time.perf_counter()
            if step == 50:
                mark = (step, now)  # rate measured after warm-up
            if step > 50 and step % 50 == 0:
                rate = (now - mark[1]) / (step - mark[0])
                plan["total"] = step + max(0, int((seconds - (now - t0)) / rate))
            if step % 200 == 0:
                log(f"mlm step {step}/{plan['total']} loss {np.mean(losses[-200:]):.3f} ({now - t0:.0f} s)")
            if now - t0 >= seconds or step >= plan["total"]:
                done = True
                break
    epochs = step * batch_size / len(seqs)
    summary = {
        "seconds": round(time.perf_counter() - t0, 1),
        "steps": step,
        "batch_size": batch_size,
        "epochs": round(epochs, 2),
        "sequences": len(seqs),
        "final_loss": round(float(np.mean(losses[-200:])), 3),
        "lr": lr,
    }
    log(f"mlm done: {summary}")
    state = {k: v.detach().cpu() for k, v in model.albert.state_dict().items()}
    return state, summary


def finetune(
    config: Any,
    seqs: Sequence[Sequence[int]],
    targets: np.ndarray,
    val: tuple[Sequence[Sequence[int]], Sequence[int]],
    *,
    init_state: dict[str, Any] | None = None,
    device: str = "cpu",
    epochs: int = 3,
    batch_size: int = 64,
    lr: float = 5e-4,
    seed: int = 42,
    evals_per_epoch: int = 4,
    log: Callable[[str], None] = print,
) -> tuple[Any, dict[str, Any]]:
    """Soft-target cross-entropy fine-tuning; returns (best model on CPU, summary).

    ``targets`` holds one probability row per sequence: a one-hot label, a
    teacher's probabilities, or a mix. Selection: best validation accuracy.
    """
    torch = torch_module()
    transformers = require("transformers", "ALBERT fine-tuning")
    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = transformers.AlbertForSequenceClassification(config)
    if init_state is not None:
        missing, _unexpected = model.albert.load_state_dict(init_state, strict=False)
        bad = [k for k in missing if "pooler" not in k]
        if bad:
            raise RuntimeError(f"pre-trained weights do not fit: missing {bad[:5]}")
    model.to(device).train()
    tgt = torch.from_numpy(np.asarray(targets, dtype=np.float32))
    steps_per_epoch = math.ceil(len(seqs) / batch_size)
    total = steps_per_epoch * epochs
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = schedule(torch, opt, total, 0.1)
    every = max(1, steps_per_epoch // evals_per_epoch)
    vy = torch.tensor(list(val[1]))

    def evaluate() -> float:
        model.eval()
        right = 0
        with torch.no_grad():
            order = sorted(range(len(val[0])), key=lambda i: len(val[0][i]))
            for s in range(0, len(order), 256):
                b = order[s : s + 256]
                ids, mask = tensor_batch(torch, [val[0][i] for i in b], device)
                with _autocast(torch, device):
                    pred = model(input_ids=ids, attention_mask=mask).logits.argmax(-1).cpu()
                right += int((pred == vy[b]).sum())
        model.train()
        return right / max(1, len(val[0]))

    best: dict[str, Any] = {"accuracy": -1.0}
    best_state = None
    t0 = time.perf_counter()
    step = 0
    for epoch in range(epochs):
        for b in batches([len(s) for s in seqs], batch_size, rng):
            ids, mask = tensor_batch(torch, [seqs[i] for i in b], device)
            q = tgt[b].to(device, non_blocking=True)
            with _autocast(torch, device):
                logits = model(input_ids=ids, attention_mask=mask).logits
            loss = -(q * torch.log_softmax(logits.float(), -1)).sum(-1).mean()
            optimizer_step(torch, model, loss, opt, sched)
            step += 1
            if step % every == 0 or step == total:
                acc = evaluate()
                log(f"epoch {epoch + 1} step {step}/{total} loss {float(loss.detach()):.3f} val {acc:.4f} "
                    f"({time.perf_counter() - t0:.0f} s)")  # fmt: skip
                if acc > best["accuracy"]:
                    best = {"accuracy": round(acc, 5), "step": step, "epoch": epoch + 1}
                    best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    best.update(
        steps=step, seconds=round(time.perf_counter() - t0, 1), epochs=epochs, lr=lr, batch_size=batch_size
    )
    return model.cpu().eval(), best
