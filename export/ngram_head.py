"""The n-gram head of the ALBERT bundles: what it computes, how it is fitted, how it is blended.

A linear model over n-grams of the *token ids* a bundle's own tokenizer
produces (so it reads exactly what the transformer reads): L2-normalised
features (sublinear TF times IDF, or presence times the naive Bayes
log-count ratio) and a logistic regression. :meth:`NgramHead.margin` is the
numpy reference that the ONNX graph of :mod:`edgeclf.export.ngram_fuse` is
checked against. The transformer's logits and the head's margin are combined
with weights fitted on validation texts (:func:`fit_blend`):

    logits = a * transformer_logits + [-z / 2, z / 2],   z = b * margin + c

Binary heads only (two labels): that is what the shipped bundles are.
Needs the export extra (scikit-learn).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import require


@dataclass(frozen=True)
class HeadSpec:
    """What the head counts, how it weighs the counts, and how hard it is regularised."""

    max_n: int = 2
    min_df: int = 2
    C: float = 8.0
    #: keep the n-grams with the largest |coefficient| (the graft stores each one), then refit
    max_ngrams: int = 100_000
    #: "tfidf": sublinear TF times IDF; "nb": presence times the naive Bayes log-count ratio
    #: |log(p(g | 1) / p(g | 0))| (Wang and Manning's NBSVM features). L2-normalised rows either way.
    features: str = "tfidf"


@dataclass
class NgramHead:
    """A fitted head: pooled n-grams (tuples of token ids), their scales and coefficients.

    A text's feature for a pooled n-gram seen ``c`` times is ``tf(c) * scale``, with
    ``tf(c) = 1 + log(c)`` if ``sublinear`` (TF-IDF; ``scale`` is the IDF) and 1 otherwise
    (presence; ``scale`` is the naive Bayes ratio); the row is L2-normalised, then dotted with ``coef``.
    """

    ngrams: list[tuple[int, ...]]
    scale: np.ndarray  # float32, one per n-gram
    coef: np.ndarray  # float32, one per n-gram (positive pushes towards label 1)
    intercept: float
    sublinear: bool = True

    def margin(self, seqs: Sequence[Sequence[int]], exclude: Iterable[int]) -> np.ndarray:
        """The head's decision value per sequence, computed in numpy (the graph's reference)."""
        index = {g: i for i, g in enumerate(self.ngrams)}
        max_n = max(len(g) for g in self.ngrams)
        out = np.empty(len(seqs), dtype=np.float64)
        skip = set(exclude)
        for r, seq in enumerate(seqs):
            counts = Counter(g for g in ngrams_of(seq, max_n, skip) if g in index)
            cols = np.fromiter((index[g] for g in counts), dtype=np.int64, count=len(counts))
            tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
            x = ((1.0 + np.log(tf)) if self.sublinear else 1.0) * self.scale[cols]
            norm = float(np.sqrt((x * x).sum())) or 1.0
            out[r] = float(x @ self.coef[cols]) / norm + self.intercept
        return out


def ngrams_of(seq: Sequence[int], max_n: int, exclude: set[int]) -> list[tuple[int, ...]]:
    """Every 1..max_n-gram of consecutive ids that contains no excluded (special) id."""
    ids = [int(t) for t in seq]
    out = []
    for n in range(1, max_n + 1):
        for i in range(len(ids) - n + 1):
            g = tuple(ids[i : i + n])
            if not exclude.intersection(g):
                out.append(g)
    return out


def fit_head(
    seqs: Sequence[Sequence[int]], labels: Sequence[int], exclude: Iterable[int], spec: HeadSpec = HeadSpec()
) -> NgramHead:
    """Logistic regression on L2-normalised token-id n-gram features (``spec.features``).

    Fitted once on every n-gram seen ``min_df`` times, then the ``max_ngrams``
    with the largest weights are kept and the model is refitted on them alone
    (the row norm in the graph runs over the kept n-grams, so the refit is what
    the graph computes).
    """
    require("sklearn", "the n-gram head")
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    if spec.features not in ("tfidf", "nb"):
        raise ValueError(f"features must be 'tfidf' or 'nb', got {spec.features!r}")
    skip = set(exclude)
    y = np.asarray(labels)
    if set(np.unique(y)) - {0, 1}:
        raise ValueError("the n-gram head is binary: labels must be 0 / 1")

    def analyzer(seq: Sequence[int]) -> list[str]:  # "12 7 301": feature names scikit-learn can sort
        return [" ".join(map(str, g)) for g in ngrams_of(seq, spec.max_n, skip)]

    counts = CountVectorizer(analyzer=analyzer, min_df=spec.min_df, lowercase=False, dtype=np.float32)
    x = counts.fit_transform(list(seqs)).tocsc()
    names = counts.get_feature_names_out()
    scale = _scales(x, y, spec.features)
    sublinear = spec.features == "tfidf"
    lr = LogisticRegression(C=spec.C, max_iter=2000, solver="liblinear").fit(_rows(x, scale, sublinear), y)
    if len(names) > spec.max_ngrams:
        keep = np.sort(np.argsort(-np.abs(lr.coef_[0]))[: spec.max_ngrams])
        x, names, scale = x[:, keep], names[keep], scale[keep]
        lr = LogisticRegression(C=spec.C, max_iter=2000, solver="liblinear").fit(
            _rows(x, scale, sublinear), y
        )
    return NgramHead(
        ngrams=[tuple(int(t) for t in g.split()) for g in names],
        scale=scale.astype(np.float32),
        coef=lr.coef_[0].astype(np.float32),
        intercept=float(lr.intercept_[0]),
        sublinear=sublinear,
    )


def _scales(counts: Any, y: np.ndarray, features: str) -> np.ndarray:
    """Per n-gram: scikit-learn's smoothed IDF, or the absolute naive Bayes log-count ratio of
    presence (add-one smoothing); the logistic regression learns the sign."""
    seen = (counts > 0).astype(np.float64)
    if features == "tfidf":
        df = np.asarray(seen.sum(axis=0)).ravel()
        return np.log((1 + len(y)) / (1 + df)) + 1
    p = np.asarray(seen[y == 1].sum(axis=0)).ravel() + 1
    q = np.asarray(seen[y == 0].sum(axis=0)).ravel() + 1
    return np.abs(np.log((p / p.sum()) / (q / q.sum())))


def _rows(counts: Any, scale: np.ndarray, sublinear: bool) -> Any:
    """The features the graph computes: ``tf(count) * scale``, rows L2-normalised."""
    from sklearn.preprocessing import normalize

    x = counts.tocsr(copy=True).astype(np.float64)
    x.data = 1.0 + np.log(x.data) if sublinear else np.ones_like(x.data)
    return normalize(x.multiply(scale[None, :]).tocsr())


@dataclass(frozen=True)
class Blend:
    """``logits = a * transformer_logits + [-z/2, z/2]``, ``z = b * margin + c``."""

    a: float
    b: float
    c: float

    def logits(self, transformer_logits: np.ndarray, margin: np.ndarray) -> np.ndarray:
        z = self.b * np.asarray(margin, dtype=np.float64) + self.c
        return self.a * np.asarray(transformer_logits, dtype=np.float64) + np.stack([-z / 2, z / 2], axis=1)

    def as_dict(self) -> dict[str, float]:
        return {"a": round(self.a, 6), "b": round(self.b, 6), "c": round(self.c, 6)}


def fit_blend(transformer_logits: np.ndarray, margin: np.ndarray, y: np.ndarray, C: float = 1.0) -> Blend:
    """Stacking weights: a logistic regression on (transformer margin, head margin), on validation
    texts that neither model was trained on."""
    require("sklearn", "the n-gram blend")
    from sklearn.linear_model import LogisticRegression

    d = transformer_logits[:, 1] - transformer_logits[:, 0]
    lr = LogisticRegression(C=C, max_iter=1000).fit(np.stack([d, margin], axis=1), y)
    w1, w2 = (float(v) for v in lr.coef_[0])
    return Blend(a=w1, b=w2, c=float(lr.intercept_[0]))


def cross_fit_blend(
    transformer_logits: np.ndarray, margin: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0
) -> np.ndarray:
    """Out-of-fold blended logits on the validation texts (each fold blended by weights fitted on
    the others): an honest validation score for choosing between routes."""
    fold = np.arange(len(y)) % folds
    np.random.default_rng(seed).shuffle(fold)
    out = np.zeros((len(y), 2))
    for f in range(folds):
        tr, te = fold != f, fold == f
        out[te] = fit_blend(transformer_logits[tr], margin[tr], y[tr]).logits(
            transformer_logits[te], margin[te]
        )
    return out
