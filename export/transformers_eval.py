"""``--eval-data`` of ``edgeclf export transformers``: reading labelled texts, accuracy, multi-label thresholds.

Single-label bundles get each variant's accuracy and agreement with fp32
(:func:`edgeclf.export.bundle_writer.record_metrics`). Multi-label bundles
get a threshold per label: the one of a grid (0.05 ... 0.95) that maximises
that label's F1 on the data, through the default variant, as the runtime
scores it (ties go to the value nearest 0.5); then each variant's micro /
macro F1 and exact-match rate at those thresholds. The thresholds are tuned
on the same texts they are measured on, which the metrics say
(``thresholds_tuned_on``): measure on other texts for an unbiased figure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import bundle_writer

GRID = np.round(np.arange(0.05, 0.96, 0.05), 2)


def read_eval(
    path: str, labels: Sequence[str], multi: bool, limit: int | None = None
) -> tuple[list[str], list[Any]]:
    """(texts, labels) from a CSV(.gz) with ``text`` and ``label`` (or ``labels``) columns.

    A label is an id (``0``) or an ``id2label`` name; multi-label rows join
    them with ``|`` (an empty field: no label applies).
    """
    from .data import read_csv_rows

    index = {name: i for i, name in enumerate(labels)}
    rows = read_csv_rows(path)
    if rows and "label" not in rows[0] and "labels" not in rows[0]:
        raise ValueError(f"{path}: needs a 'label' (or 'labels') column beside 'text'")
    texts: list[str] = []
    out: list[Any] = []
    for i, row in enumerate(rows, start=2):
        text, field = row.get("text") or "", row.get("label", row.get("labels"))
        if not text.strip() or field is None or (field == "" and not multi):
            continue
        names = [f for f in field.split("|") if f] if multi else [field]
        ids = []
        for name in names:
            if name in index:
                ids.append(index[name])
            elif name.isdigit() and int(name) < len(labels):
                ids.append(int(name))
            else:
                raise ValueError(
                    f"{path}: line {i}: label {name!r} is neither an id nor one of {list(labels)}"
                )
        texts.append(text)
        out.append(tuple(sorted(set(ids))) if multi else ids[0])
        if limit and len(texts) >= limit:
            break
    return texts, out


def evaluate(
    root: Path,
    manifest: dict[str, Any],
    texts: Sequence[str],
    labels: Sequence[Any],
    multi: bool,
    dataset: str,
    command: str,
    log: Callable[[str], None],
) -> None:
    if not multi:
        bundle_writer.record_metrics(
            root, manifest, texts, labels, dataset=dataset, measured_by=command, log=log
        )
        return
    import edgeclf

    n_labels = len(manifest["labels"])
    truth = np.zeros((len(texts), n_labels), dtype=bool)
    for row, ids in enumerate(labels):
        truth[row, list(ids)] = True
    probs = {
        name: edgeclf.load(root, variant=name, providers="cpu").predict_proba(list(texts))
        for name in manifest["variants"]
    }
    thresholds = tune_thresholds(probs[manifest["default_variant"]], truth)
    manifest["head"] = {"kind": "multi_label", "thresholds": thresholds}
    machine = bundle_writer.machine_description()
    for name, p in probs.items():
        metrics = multi_label_metrics(p >= np.asarray(thresholds), truth)
        metrics.update(dataset=dataset, measured_by=command, machine=machine, thresholds_tuned_on=dataset)
        manifest["variants"][name]["metrics"] = metrics
        log(f"{name}: {metrics}")
    bundle_writer.save(root, manifest)


def tune_thresholds(probs: np.ndarray, truth: np.ndarray) -> list[float]:
    """Per label, the grid threshold with the best F1 (nearest 0.5 among equals)."""
    out = []
    for k in range(truth.shape[1]):
        scores = [(_f1(probs[:, k] >= t, truth[:, k]), -abs(t - 0.5), float(t)) for t in GRID]
        out.append(max(scores)[2])
    return out


def _f1(pred: np.ndarray, true: np.ndarray) -> float:
    tp = float((pred & true).sum())
    denom = float(pred.sum() + true.sum())
    return 2 * tp / denom if denom else 1.0


def multi_label_metrics(pred: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    per_label = [_f1(pred[:, k], truth[:, k]) for k in range(truth.shape[1])]
    return {
        "micro_f1": round(_f1(pred.ravel(), truth.ravel()), 5),
        "macro_f1": round(float(np.mean(per_label)), 5),
        "exact_match": round(float((pred == truth).all(axis=1).mean()), 5),
        "n": len(truth),
    }
