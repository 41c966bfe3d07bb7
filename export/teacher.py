"""N-gram teachers for distillation: TF-IDF + logistic regression (scikit-learn).

A training tool only: the teacher ships nowhere. It gives the ALBERT student
soft targets (probabilities) on

- the student's own training texts, *cross-fitted*: each text is scored by a
  teacher fitted on the other folds, so the targets are as honest as on
  unseen text (an in-sample teacher is over-confident on what it memorised);
- unlabeled texts (IMDB's 50,000 ``unsup`` reviews), scored by a teacher
  fitted on all of the student's training texts.

The student's validation texts are never seen by any teacher, so the
student's model selection stays honest; the test sets are never touched.

The same features are the baselines in ``benchmarks/baselines.py``: word
uni+bigrams for English, character 1-3-grams for Chinese.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import require


@dataclass(frozen=True)
class NgramSpec:
    analyzer: str  # "word" or "char"
    ngram_range: tuple[int, int]
    min_df: int = 2
    C: float = 4.0


ENGLISH = NgramSpec("word", (1, 2), min_df=2, C=8.0)
CHINESE = NgramSpec("char", (1, 3), min_df=1, C=8.0)


def split_indices(n: int, validation: int, seed: int) -> tuple[list[int], list[int]]:
    """The student's split: shuffle with ``random.Random(seed)``, first ``validation`` held out.

    Shared by the teacher and the student so both hold out the same texts.
    """
    order = list(range(n))
    random.Random(seed).shuffle(order)  # data files are often sorted by label
    n_val = min(validation, n // 5)
    return order[n_val:], order[:n_val]


def fit(spec: NgramSpec, texts: Sequence[str], labels: Sequence[int]) -> Any:
    """A fitted ``Pipeline(TfidfVectorizer, LogisticRegression)``."""
    require("sklearn", "the n-gram teacher")
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    vec = TfidfVectorizer(
        analyzer=spec.analyzer,
        ngram_range=spec.ngram_range,
        min_df=spec.min_df,
        sublinear_tf=True,
        lowercase=True,
        dtype=np.float32,
    )
    clf = LogisticRegression(C=spec.C, max_iter=2000, solver="liblinear")
    return make_pipeline(vec, clf).fit(list(texts), list(labels))


def soft_targets(
    spec: NgramSpec,
    texts: Sequence[str],
    labels: Sequence[int],
    unlabeled: Sequence[str] = (),
    *,
    folds: int = 5,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Cross-fitted probabilities for ``texts`` and full-fit ones for ``unlabeled``."""
    n = len(texts)
    fold_of = np.arange(n) % folds
    np.random.default_rng(seed).shuffle(fold_of)
    y = np.asarray(labels)
    k = int(y.max()) + 1
    own = np.zeros((n, k), dtype=np.float32)
    for f in range(folds):
        test = np.flatnonzero(fold_of == f)
        train = np.flatnonzero(fold_of != f)
        model = fit(spec, [texts[i] for i in train], y[train])
        own[test] = model.predict_proba([texts[i] for i in test])
    other = np.zeros((0, k), dtype=np.float32)
    if len(unlabeled):
        other = fit(spec, texts, labels).predict_proba(list(unlabeled)).astype(np.float32)
    return own, other
