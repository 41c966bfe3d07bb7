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

Kinds are looked up lazily, so importing the runtime costs nothing for
tokenizers a bundle does not use. Training code (``edgeclf.export``) uses the
same classes, so training and serving cannot drift apart.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

__all__ = ["KINDS", "KeepEnd", "Tokenizer", "build"]


class Tokenizer(Protocol):
    pad_id: int
    max_length: int

    def encode(self, text: str) -> list[int]: ...

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]: ...


#: manifest ``tokenizer.kind`` -> "module:Class" (imported on first use)
KINDS: dict[str, str] = {
    "keras-words": "edgeclf.tokenizers.words:KerasWordTokenizer",
    "sentencepiece-unigram": "edgeclf.tokenizers.sentencepiece:SentencePieceTokenizer",
    "wordpiece": "edgeclf.tokenizers.wordpiece:WordPieceTokenizer",
}


#: ``tokenizer.config.truncation_side`` values (transformers' names)
TRUNCATION_SIDES = ("right", "left")


class KeepEnd:
    """A subword tokenizer that truncates from the left: ``[CLS] ids[-(max_length - 2):] [SEP]``.

    Equals transformers' ``encode(text, truncation=True, max_length=max_length)``
    with ``truncation_side="left"``. The whole text is tokenized (the
    SentencePiece kind's float32 running score makes a suffix tokenized on its
    own differ from the same suffix of the whole text in rare ties), so a long
    text costs what its length costs; ``max_chars`` bounds that. Every other
    attribute is the wrapped tokenizer's.
    """

    truncation_side = "left"

    def __init__(self, inner: Any) -> None:
        if not callable(getattr(inner, "tokenize_ids", None)):
            raise ValueError(f"{type(inner).__name__} cannot truncate from the left (no tokenize_ids)")
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (unpickling, copy): no endless recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    def encode(self, text: str) -> list[int]:
        ids = self.inner.tokenize_ids(text)
        del ids[: max(0, len(ids) - (self.inner.max_length - 2))]
        return [self.inner.cls_id, *ids, self.inner.sep_id]

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
    return KeepEnd(tokenizer) if side == "left" else tokenizer
