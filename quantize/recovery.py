"""The recovery fine-tune of a pruned model, distilled from the model it was cut from.

A pruned model has lost what the removed heads, neurons or passes computed;
a short fine-tune lets the rest re-learn it. The loss is cross-entropy on
the labels plus KL divergence to the teacher's temperature-softened
answers; texts without a label (``unlabeled``) are learnt from the teacher
alone, or from probabilities given for them (an ensemble bundle that is no
PyTorch model). Shared by the ALBERT pruner (:mod:`edgeclf.quantize.prune`)
and the other families' (:mod:`edgeclf.quantize.prune_families`), with the
split of the training texts both use (:class:`Split`).

Which texts a recovery reads is deterministic (:func:`schedule`), so
:func:`texts_read` can name them afterwards without a model: the validation
texts a pruned model never read are the ones that can still judge it, and
its own students.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeclf.export import require


def _mapped(torch: Any, ids: Any, id_map: Any) -> Any:
    return ids if id_map is None else torch.from_numpy(id_map[ids.numpy()])


def accuracy(
    model: Any, data: tuple[Sequence[Sequence[int]], Sequence[int]], batch_size: int = 128, id_map: Any = None
) -> float:
    """Share of ``data`` (token ids, labels) the model labels right."""
    torch = require("torch", "pruning")
    from edgeclf.export.albert_loops import tensor_batch as _tensor_batch

    model.eval()
    seqs, labels = data
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    right = 0
    with torch.no_grad():
        for s in range(0, len(order), batch_size):
            b = order[s : s + batch_size]
            ids, mask = _tensor_batch(torch, [seqs[i] for i in b])
            pred = model(input_ids=_mapped(torch, ids, id_map), attention_mask=mask).logits.argmax(-1)
            right += int((pred == torch.tensor([labels[i] for i in b])).sum())
    return right / max(1, len(seqs))


def schedule(lengths: Sequence[int], steps: int, batch_size: int, seed: int) -> Iterator[list[int]]:
    """The batches (indices into the recovery's texts) that :func:`recover` trains on, in order.

    Deterministic given the texts' token lengths: replaying it without a
    model says which texts a recovery read (:func:`texts_read`),
    so validation texts its teacher never saw can be told from those it did.
    """
    from edgeclf.export.albert_loops import batches

    rng, step = random.Random(seed), 0
    while step < steps:
        for b in batches(lengths, batch_size, rng):
            yield b
            step += 1
            if step >= steps:
                return


def recover(
    model: Any,
    teacher: Any,
    train: tuple[Sequence[Sequence[int]], Sequence[int]],
    val: tuple[Sequence[Sequence[int]], Sequence[int]] | None,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    distill: float,
    temperature: float,
    seed: int,
    log: Callable[[str], None],
    id_map: Any = None,
    unlabeled: Sequence[Sequence[int]] = (),
    unlabeled_probs: Any = None,
) -> dict[str, Any]:
    """A short fine-tune that lets the pruned model re-learn, distilled from the teacher.

    With a pruned vocabulary the teacher reads the original ids and the
    student the remapped ones. ``unlabeled`` texts join the shuffle with the
    teacher as their only target: the student sees more of the domain than
    the labelled texts alone. ``unlabeled_probs`` (one row per unlabeled
    text) replaces the teacher's answers there, so a stronger teacher that is
    no PyTorch model (an ensemble bundle) can be distilled from.
    """
    torch = require("torch", "pruning")
    from edgeclf.export.albert_loops import optimizer_step
    from edgeclf.export.albert_loops import tensor_batch as _tensor_batch

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else max(0.0, (steps - s) / max(1, steps - warm))
    )
    if unlabeled and distill <= 0:
        raise ValueError("unlabeled texts need distillation (distill > 0): the teacher is their only target")
    before = accuracy(model, val, id_map=id_map) if val is not None else None
    model.train()
    seqs = [*train[0], *unlabeled]
    labels = [*train[1], *([-1] * len(unlabeled))]  # -1: no label, teacher only
    given = _given_logits(torch, unlabeled_probs, len(unlabeled))
    if not seqs:
        raise ValueError("recovery needs texts: the labelled and unlabeled sets are both empty")
    t0 = time.perf_counter()
    kl = torch.nn.KLDivLoss(reduction="batchmean")
    for step, b in enumerate(schedule([len(s) for s in seqs], steps, batch_size, seed), 1):
        ids, mask = _tensor_batch(torch, [seqs[i] for i in b])
        y = torch.tensor([labels[i] for i in b])
        logits = model(input_ids=_mapped(torch, ids, id_map), attention_mask=mask).logits
        labelled = y >= 0
        loss = (
            torch.nn.functional.cross_entropy(logits[labelled], y[labelled])
            if bool(labelled.any())
            else logits.sum() * 0.0
        )
        if distill > 0:
            with torch.no_grad():
                t_logits = _teacher_logits(torch, teacher, ids, mask, b, len(train[0]), given)
            soft = kl(torch.log_softmax(logits / temperature, -1), torch.softmax(t_logits / temperature, -1))
            loss = (1 - distill) * loss + distill * soft * temperature**2
        optimizer_step(torch, model, loss, opt, sched)
        if step % 50 == 0:
            log(f"recovery step {step}/{steps} loss {loss.item():.3f} ({time.perf_counter() - t0:.0f} s)")
    after = accuracy(model, val, id_map=id_map) if val is not None else None
    model.eval()
    return {
        "steps": steps,
        "lr": lr,
        "distill": distill,
        "unlabeled_texts": len(unlabeled),
        "unlabeled_targets": None if not unlabeled else "teacher" if unlabeled_probs is None else "given",
        "val_accuracy_before": before,
        "val_accuracy_after": after,
        "seconds": round(time.perf_counter() - t0, 1),
        "batch_size": batch_size,
        "seed": seed,
    }


def _given_logits(torch: Any, probs: Any, n_unlabeled: int) -> Any:
    """The given probabilities of the unlabeled texts as log-probabilities (None: none given)."""
    if probs is None:
        return None
    p = np.asarray(probs, dtype=np.float32)
    if p.ndim != 2 or len(p) != n_unlabeled:
        raise ValueError(
            f"unlabeled_probs: expected {n_unlabeled} rows of class probabilities, got {p.shape}"
        )
    return torch.from_numpy(np.log(np.clip(p, 1e-6, 1.0)))


def _teacher_logits(
    torch: Any, teacher: Any, ids: Any, mask: Any, rows: Sequence[int], n_labelled: int, given: Any
) -> Any:
    """The targets' logits for one batch of training rows (labelled ones first, then unlabeled):
    the given log-probabilities where a row has them, the teacher's forward pass, on the other
    rows only, elsewhere."""
    if given is None:
        return teacher(input_ids=ids, attention_mask=mask).logits
    has = torch.tensor([r >= n_labelled for r in rows])
    out = torch.empty(len(rows), given.shape[1])
    out[has] = given[torch.tensor([r - n_labelled for r in rows if r >= n_labelled], dtype=torch.long)]
    if not bool(has.all()):
        out[~has] = teacher(input_ids=ids[~has], attention_mask=mask[~has]).logits
    return out


@dataclass(frozen=True)
class Split:
    """The training texts tokenized and shuffled once: validation first, calibration from the rest."""

    order: list[int]  # the shuffle, as indices into the training texts
    seqs: list[list[int]]
    ys: list[int]
    n_val: int
    n_cal: int

    @classmethod
    def of(
        cls, tok: Any, texts: Sequence[str], labels: Sequence[int], max_length: int, seed: int, n_cal: int
    ) -> Split:
        order = list(range(len(texts)))
        random.Random(seed).shuffle(order)
        seqs = [tok.encode(texts[i], truncation=True, max_length=max_length) for i in order]
        return cls(order, seqs, [int(labels[i]) for i in order], min(1000, len(seqs) // 10), n_cal)

    def tokens_seen(self, min_count: int, special: Sequence[int]) -> list[int]:
        """Token ids seen at least ``min_count`` times in the training texts, and the special tokens."""
        from collections import Counter

        counts = Counter(t for seq in self.seqs for t in seq)
        return sorted({t for t, c in counts.items() if c >= min_count} | set(special))

    @property
    def val(self) -> tuple[list[list[int]], list[int]]:
        return self.seqs[: self.n_val], self.ys[: self.n_val]

    @property
    def train(self) -> tuple[list[list[int]], list[int]]:
        return self.seqs[self.n_val :], self.ys[self.n_val :]

    @property
    def calibration(self) -> tuple[list[list[int]], list[int]]:
        end = self.n_val + self.n_cal
        return self.seqs[self.n_val : end], self.ys[self.n_val : end]


def texts_read(
    tok: Any,
    texts: Sequence[str],
    labels: Sequence[int],
    max_length: int,
    *,
    steps: int,
    batch_size: int = 32,
    seed: int = 0,
    calibration: int = 256,
    unlabeled: Sequence[str] = (),
) -> set[int]:
    """Indices of ``texts`` that a pruning run with these settings read with their labels.

    Replays :meth:`Split.of` and :func:`schedule` without a model: the
    calibration texts the importance scores were taken on, and every text the
    recovery's ``steps`` batches drew. What is left of a validation set after
    removing these is clean for the pruned model and for its own students.
    """
    data = Split.of(tok, texts, labels, max_length, seed, calibration)
    n_train = len(data.train[0])
    lengths = [len(s) for s in data.train[0]]
    lengths += [len(tok.encode(t, truncation=True, max_length=max_length)) for t in unlabeled]
    drawn = {i for b in schedule(lengths, steps, batch_size, seed) for i in b if i < n_train}
    return {data.order[data.n_val + i] for i in drawn} | set(data.order[data.n_val : data.n_val + data.n_cal])
