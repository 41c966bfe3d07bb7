"""The text rule and the per-text result, shared by every front end.

``Classifier.predict``, ``edgeclf predict`` (CSV and JSON Lines files),
``edgeclf serve`` and the Spark integration all refuse a text for the same
reasons, in the same words (:func:`text_error`), and shape each text's
result in one place (:func:`classify_texts` -> :class:`Prediction`).

Where a refusal is reported, the position is said the way the front end
counts: the Python API and serve name the text's 0-based index in the list
they were given (``text 0 (0-based index): empty text``); files name the
1-based data row and the 1-based physical line(s) (``row 3 (line 4): empty
text``).

This module imports nothing of edgeclf (and nothing heavy), so any module
may import it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

#: Texts longer than this (in characters) are refused by every front end rather than tokenized:
#: a runaway field (an unclosed quote that swallowed a file) fails fast instead of eating memory,
#: while any real document (a 10 MB field of reviews) passes. Change it with ``max_chars`` /
#: ``--max-chars``; serve's request body limit (``--max-body-bytes``) usually bounds a text first.
DEFAULT_MAX_CHARS = 32 * 1024 * 1024

#: How a text longer than the model reads is handled (``long_texts``): see docs/long-texts.md.
LONG_TEXTS = ("truncate", "windows")

#: Joins the labels of a multi-label prediction in a single text cell (CSV, Spark's ``label``).
LABEL_SEPARATOR = "|"


class InputFileError(ValueError):
    """An input file as a whole cannot be read (``edgeclf predict`` exits with code 2)."""


class InputError(ValueError):
    """A text cannot be classified; ``index`` is its 0-based position in the list given."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(f"text {index} (0-based index): {message}")
        self.index = index
        self.reason = message


def text_error(text: object, max_chars: int | None = None, *, limit_name: str = "max_chars") -> str | None:
    """Why ``text`` cannot be classified, or ``None`` when it can.

    Checked in this order: not a string (``None``: "no text"), invalid bytes
    for the input encoding (bytes decoded with ``surrogateescape`` become
    lone surrogates), empty or only whitespace, longer than ``max_chars``
    characters (``None``: no limit). ``limit_name`` names the limit in the
    message (the command line says ``--max-chars``).
    """
    if not isinstance(text, str):
        return "no text" if text is None else f"expected a string, got {type(text).__name__}"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "invalid bytes for the input encoding"
    if not text.strip():
        return "empty text"
    if max_chars is not None and len(text) > max_chars:
        return f"text has {len(text):,} characters, over {limit_name} {max_chars:,}"
    return None


def check_texts(texts: Sequence[object], max_chars: int | None = None) -> None:
    """Raise :class:`InputError` for the first text :func:`text_error` refuses."""
    for i, text in enumerate(texts):
        why = text_error(text, max_chars)
        if why is not None:
            raise InputError(i, why)


class Prediction(NamedTuple):
    """One text's result: a prediction, or the reason it has none (``error``).

    ``labels`` holds the predicted labels: exactly one for a single-label
    head; for a multi-label head every label whose probability reaches its
    threshold (zero or more, in label order). ``label`` is the text cell the
    command line writes: the label, or a multi-label head's labels joined by
    ``|``. ``score`` is the highest probability and ``label_id`` its label's
    index. All are ``None`` (``labels`` empty) when ``error`` says why the
    text was refused.
    """

    label: str | None
    score: float | None
    label_id: int | None
    probabilities: dict[str, float] | None
    labels: tuple[str, ...] = ()
    label_ids: tuple[int, ...] = ()
    error: str | None = None


def refused(reason: str) -> Prediction:
    """The result of a text that was not classified."""
    return Prediction(None, None, None, None, (), (), reason)


def shape(
    row: Sequence[float], names: Sequence[str], thresholds: Sequence[float] | None = None
) -> Prediction:
    """One text's probabilities (label order) as a :class:`Prediction`.

    ``thresholds`` (one per label) marks a multi-label head; without them
    the most probable label is the prediction.
    """
    values = [float(p) for p in row]
    best = max(range(len(values)), key=values.__getitem__)
    if thresholds is None:
        ids: tuple[int, ...] = (best,)
    else:
        ids = tuple(j for j, (p, t) in enumerate(zip(values, thresholds, strict=True)) if p >= t)
    labels = tuple(names[j] for j in ids)
    return Prediction(
        LABEL_SEPARATOR.join(labels),
        values[best],
        best,
        dict(zip(names, values, strict=True)),
        labels,
        ids,
    )


def thresholds_of(clf: Any) -> Sequence[float] | None:
    """A classifier's multi-label thresholds (from its manifest's head), or None (single-label)."""
    head = getattr(clf.manifest, "head", None)
    return None if head is None or head.kind != "multi_label" else head.thresholds


def classify_texts(
    clf: Any,
    texts: Sequence[object],
    *,
    max_chars: int | None = None,
    limit_name: str = "max_chars",
    errors: str = "report",
    predict_proba: Callable[[list[str]], Any] | None = None,
    **options: Any,
) -> list[Prediction]:
    """One :class:`Prediction` per text, in input order, through ``clf`` (a Classifier).

    Texts that :func:`text_error` refuses (``max_chars`` defaults to the
    classifier's) get a result carrying the reason (``errors="report"``) or
    raise :class:`InputError` naming the first one's 0-based index
    (``errors="raise"``); the others are classified together, in one
    ``predict_proba`` call, given ``options`` (such as ``long_texts``);
    ``predict_proba`` replaces the classifier's.
    """
    if errors not in ("report", "raise"):
        raise ValueError("errors must be 'report' or 'raise'")
    limit = clf.max_chars if max_chars is None else max_chars
    reasons = [text_error(t, limit, limit_name=limit_name) for t in texts]
    if errors == "raise":
        for i, why in enumerate(reasons):
            if why is not None:
                raise InputError(i, why)
    good = [t for t, why in zip(texts, reasons, strict=True) if why is None]
    probs = (predict_proba or clf.predict_proba)(good, **options) if good else []
    return shape_results(probs, reasons, clf.labels, thresholds_of(clf))


def shape_results(
    probs: Sequence[Sequence[float]],
    reasons: Sequence[str | None],
    names: Sequence[str],
    thresholds: Sequence[float] | None = None,
) -> list[Prediction]:
    """Zip the probability rows of the accepted texts back with the refusals, in input order."""
    rows = iter(probs)
    return [refused(why) if why is not None else shape(next(rows), names, thresholds) for why in reasons]
