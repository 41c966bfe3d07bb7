"""Tokenizers: text -> token ids, one module per kind, pure Python.

Every tokenizer follows one small protocol (:class:`Tokenizer`): ``encode``
turns one text into its ids, special tokens included and truncated to the
bundle's ``max_length``. Padding, length grouping and attention masks are the
classifier's job, so a new tokenizer is only the text -> ids step.

Kinds are looked up lazily, so importing the runtime costs nothing for
tokenizers a bundle does not use. Training code (``edgeclf.export``) uses the
same classes, so training and serving cannot drift apart.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

__all__ = ["KINDS", "Tokenizer", "build"]


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


def build(kind: str, files: Mapping[str, bytes], config: Mapping[str, Any], max_length: int) -> Tokenizer:
    """Construct the tokenizer a manifest asks for from already-verified file bytes."""
    try:
        target = KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown tokenizer kind {kind!r}; known: {', '.join(sorted(KINDS))}") from None
    module_name, _, cls_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    return cls.from_files(files, config, max_length)
