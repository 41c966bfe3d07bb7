"""Long texts through a transformer's fixed window: truncate, or read overlapping windows and pool.

A transformer bundle reads at most ``max_length`` tokens. ``truncate`` keeps the side its
tokenizer keeps (the end of a review for ``truncation_side: left``); ``windows`` cuts the
text's pieces into windows of the model's width, ``stride`` pieces apart (consecutive
windows overlap by ``width - stride``), at most ``max_windows`` of them, anchored at that
same side, so a text that fits gives exactly the truncated ids. Every window is one row of
the batch; the rows of a text are then pooled into one answer: the mean of the logits for a
single-label head, the highest probability of each label for a multi-label head (a label
found in one window is not diluted by the others). docs/long-texts.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from .texts import LONG_TEXTS as MODES
from .tokenizers import read_ids

#: windows per text when the bundle does not say
DEFAULT_MAX_WINDOWS = 8


class Encoded(NamedTuple):
    """Token ids ready to run: one row per text, or with windows one row per window."""

    ids: list[list[int]]
    #: row -> index of its text (windows); None when each row is one text
    owner: np.ndarray | None = None

    def windows_per_text(self, n_texts: int) -> np.ndarray:
        """How many rows (windows) each of ``n_texts`` texts became."""
        if self.owner is None:
            return np.ones(n_texts, dtype=np.int64)
        return np.bincount(self.owner, minlength=n_texts)


class Windows(NamedTuple):
    width: int  # pieces per window, specials excluded
    stride: int
    max_windows: int
    side: str  # "left": anchored at the end of the text

    @property
    def reach(self) -> int:
        """Pieces the windows of one text can hold (what the tokenizer reads)."""
        return self.width + (self.max_windows - 1) * self.stride


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"long_texts must be one of {', '.join(MODES)}, not {mode!r}")
    return mode


def plan(tokenizer: Any, max_length: int, stride: int | None, max_windows: int | None) -> Windows | None:
    """The window layout for a tokenizer, or None when it cannot do windows (no ``wrap``)."""
    inner = getattr(tokenizer, "inner", tokenizer)  # KeepEnd wraps the kind's tokenizer
    if not callable(getattr(inner, "wrap", None)) or not callable(getattr(inner, "tokenize_ids", None)):
        return None
    width = max_length - len(inner.wrap([]))
    if width < 1:
        return None
    stride = min(stride or max(1, width // 2), width)
    return Windows(
        width, stride, max_windows or DEFAULT_MAX_WINDOWS, getattr(tokenizer, "truncation_side", "right")
    )


def starts(n: int, w: Windows) -> list[int]:
    """Where each window of a text of ``n`` pieces (``n <= w.reach``) starts, in text order."""
    if n <= w.width:
        return [0]
    count = min(w.max_windows, 1 - (-(n - w.width) // w.stride))
    if w.side == "left":
        return sorted(max(0, n - w.width - k * w.stride) for k in range(count))
    return [min(k * w.stride, n - w.width) for k in range(count)]


def encode(tokenizer: Any, texts: Sequence[str], w: Windows) -> Encoded:
    """Every text's windows, wrapped in the tokenizer's specials, and which text each belongs to."""
    inner = getattr(tokenizer, "inner", tokenizer)
    ids: list[list[int]] = []
    owner: list[int] = []
    for i, text in enumerate(texts):
        content = read_ids(inner, text, w.reach, w.side)
        for s in starts(len(content), w):
            ids.append(inner.wrap(content[s : s + w.width]))
            owner.append(i)
    return Encoded(ids, np.asarray(owner, dtype=np.int64))


def pool(rows: np.ndarray, owner: np.ndarray, n_texts: int, how: str) -> np.ndarray:
    """One row per text from its windows' rows: ``"mean"`` or ``"max"`` per column."""
    out = np.zeros((n_texts, rows.shape[1]), dtype=np.float64)
    if how == "max":
        out[:] = -np.inf
        np.maximum.at(out, owner, rows)
    else:
        np.add.at(out, owner, rows)
        out /= np.bincount(owner, minlength=n_texts)[:, None]
    return out.astype(np.float32)
