"""Tokenizers: text -> token ids, one module per kind, pure Python.

Every tokenizer follows one small protocol (:class:`Tokenizer`): ``encode``
turns one text into its ids, special tokens included and truncated to the
bundle's ``max_length``. Padding, length grouping and attention masks are the
classifier's job, so a new tokenizer is only the text -> ids step.

Truncation: by default a long text keeps its first ``max_length - 2`` ids
(transformers' ``truncation_side="right"``). A bundle whose tokenizer config
says ``"truncation_side": "left"`` keeps the *last* ones instead, as
``AlbertTokenizer(..., truncation_side="left")`` does: the end of a review
often carries its verdict ("... 3/10, avoid"). One wrapper,
:class:`KeepEnd`, does it for every subword kind, on top of the kind's
untruncated ``tokenize_ids``.

Reading only what the model can use (:func:`read_ids`): a 10 MB field must
not be tokenized whole when the model keeps 254 of its pieces. A tokenizer
declares ``cut_words``, a regex whose matches are its pre-tokenized words:
text between two of them is tokenized independently of the rest, and every
word yields its own pieces. The last (or first) ``cap + margin`` words then
give the same pieces as the whole text, so only they are read; the word at
the cut is not trusted (context across the cut), and words that yield no
pieces widen the cut. A tokenizer whose split of the kept end also depends on
the length of what lies before it (SentencePiece's float32 running score)
declares ``whole_tail_chars``: texts up to that length are read whole when
their end is kept. docs/tokenizers.md has the argument and the measurements.

Kinds are looked up lazily, so importing the runtime costs nothing for
tokenizers a bundle does not use. Training code (``edgeclf.export``) uses the
same classes, so training and serving cannot drift apart.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping, Sequence
from itertools import islice
from typing import Any, Protocol

__all__ = ["KINDS", "WHOLE_TAIL_CHARS", "KeepEnd", "Tokenizer", "build", "cut_text", "read_ids"]

#: words read beyond the ``cap`` pieces asked for (every word yields >= 1 piece unless it vanishes)
CUT_MARGIN = 16
#: what SentencePiece declares as ``whole_tail_chars``: up to this many characters a text whose end
#: is kept is read whole (docs/tokenizers.md: beyond, the reference's split of a word at the end
#: depends on float32 rounding of the running score, not on the text)
WHOLE_TAIL_CHARS = 1 << 16


class Tokenizer(Protocol):
    pad_id: int
    max_length: int

    def encode(self, text: str) -> list[int]: ...

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]: ...


#: manifest ``tokenizer.kind`` -> "module:Class" (imported on first use)
KINDS: dict[str, str] = {
    "hf-tokenizer-json": "edgeclf.tokenizers.hf_json:HFJsonTokenizer",
    "keras-words": "edgeclf.tokenizers.words:KerasWordTokenizer",
    "sentencepiece-unigram": "edgeclf.tokenizers.sentencepiece:SentencePieceTokenizer",
    "wordpiece": "edgeclf.tokenizers.wordpiece:WordPieceTokenizer",
}


#: ``tokenizer.config.truncation_side`` values (transformers' names)
TRUNCATION_SIDES = ("right", "left")


class KeepEnd:
    """A subword tokenizer that truncates from the left: ``[CLS] ids[-(max_length - 2):] [SEP]``.

    Equals transformers' ``encode(text, truncation=True, max_length=max_length)``
    with ``truncation_side="left"``. Only the end of a long text is read
    (:func:`read_ids`). Every other attribute is the wrapped tokenizer's.
    """

    truncation_side = "left"

    def __init__(self, inner: Any) -> None:
        if not (callable(getattr(inner, "tokenize_ids", None)) and callable(getattr(inner, "wrap", None))):
            raise ValueError(f"{type(inner).__name__} cannot truncate from the left (no tokenize_ids / wrap)")
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (unpickling, copy): no endless recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    def encode(self, text: str) -> list[int]:
        return self.inner.wrap(read_ids(self.inner, text, self.inner.max_length - 2, "left"))

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]


def build(kind: str, files: Mapping[str, bytes], config: Mapping[str, Any], max_length: int) -> Tokenizer:
    """Construct the tokenizer a manifest asks for from already-verified file bytes."""
    side = config.get("truncation_side", "right")
    if side not in TRUNCATION_SIDES:
        raise ValueError(f"tokenizer truncation_side must be one of {TRUNCATION_SIDES}, got {side!r}")
    try:
        target = KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown tokenizer kind {kind!r}; known: {', '.join(sorted(KINDS))}") from None
    module_name, _, cls_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    tokenizer = cls.from_files(files, config, max_length)
    return KeepEnd(tokenizer) if side == "left" and not getattr(cls, "truncates_itself", False) else tokenizer


def cut_text(text: str, words: int, side: str, pattern: re.Pattern[str]) -> tuple[str, str] | None:
    """``(kept part, its word at the cut)``: the last (``side="left"``) or first ``words`` matches of
    ``pattern`` with what lies between them; ``None`` when the text has no more words than that.

    The left side looks at a growing tail, so a 10 MB text costs what its kept end does.
    """
    if side == "right":
        found = list(islice(pattern.finditer(text), words + 1))
        if len(found) <= words:
            return None
        return text[: found[-2].end()], found[-2].group()
    span = 8 * words + 64
    while True:
        start = max(0, len(text) - span)
        found = list(pattern.finditer(text, start))  # from inside the text, the first may be a part
        if len(found) > words:
            edge = found[len(found) - words]
            return text[edge.start() :], edge.group()
        if not start:
            return None
        span *= 4


def read_ids(tokenizer: Any, text: str, cap: int, side: str = "right") -> list[int]:
    """At most ``cap`` content ids (no specials) of ``text``, from ``side`` (``"left"`` keeps the end).

    Equal to ``tokenize_ids(text)[-cap:]`` (or ``[:cap]``), reading only about ``cap`` words where
    the tokenizer declares ``cut_words`` (see the module docstring).
    """
    pattern = getattr(tokenizer, "cut_words", None)
    if side == "left" and len(text) <= getattr(tokenizer, "whole_tail_chars", 0):
        pattern = None
    words = cap + CUT_MARGIN
    while pattern is not None:
        cut = cut_text(text, words, side, pattern)
        if cut is None:
            break
        kept, edge = cut
        ids = tokenizer.tokenize_ids(kept)
        if len(ids) - len(tokenizer.tokenize_ids(edge)) >= cap:  # the word at the cut is not kept
            return ids[len(ids) - cap :] if side == "left" else ids[:cap]
        words *= 4
    ids = tokenizer.tokenize_ids(text)
    return ids[max(0, len(ids) - cap) :] if side == "left" else ids[:cap]
