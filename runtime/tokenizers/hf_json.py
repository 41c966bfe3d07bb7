"""Tokenizers read from a Hugging Face ``tokenizer.json``, id for id what the fast tokenizer gives.

``AutoTokenizer.from_pretrained(dir)`` loads a checkpoint's ``tokenizer.json``
into the Rust ``tokenizers`` library; the runtime may not import it, so this
module runs the same pipeline in pure Python, for the parts BERT-family
classifiers use:

1. added tokens (``[CLS]``, ``<mask>`` ...) are cut out of the raw text
   (leftmost-longest, with their ``lstrip`` / ``rstrip`` / ``single_word``),
   then, after normalization, those marked ``normalized``;
2. the normalizer and pre-tokenizer (:mod:`edgeclf.tokenizers.hf_text`);
3. the model: WordPiece (here), BPE (:mod:`~edgeclf.tokenizers.bpe`) or
   Unigram (:mod:`~edgeclf.tokenizers.unigram`), cached per word;
4. truncation to ``max_length`` minus the template's special tokens, on the
   tokenizer's truncation side, then the post-processor's template
   (TemplateProcessing, RobertaProcessing, BertProcessing; ByteLevel's only
   moves offsets).

Any other part is refused by name when the tokenizer is built. Texts the
fast tokenizer cannot take, those holding a lone surrogate (Rust strings are
valid UTF-8), are refused with ``ValueError`` instead of being guessed at;
``edgeclf predict`` reports such rows as invalid bytes before tokenizing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from . import read_ids
from .hf_text import UnsupportedPart, normalizer, pre_tokenizer
from .hf_unicode import SPACE_CLASS, WHITESPACE

__all__ = ["HFJsonTokenizer", "UnsupportedPart"]

MODELS = "WordPiece BPE Unigram"
POST_PROCESSORS = "TemplateProcessing RobertaProcessing BertProcessing ByteLevel Sequence"


class WordPiece:
    """Greedy longest-match-first with a continuation prefix; ``unk`` for a word it cannot cover."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.vocab: dict[str, int] = {str(k): int(v) for k, v in spec["vocab"].items()}
        self.prefix = str(spec.get("continuing_subword_prefix", "##"))
        self.max_chars = int(spec.get("max_input_chars_per_word", 100))
        unk = str(spec.get("unk_token", "[UNK]"))
        if unk not in self.vocab:
            raise ValueError(f"tokenizer.json WordPiece: unk_token {unk!r} is not in the vocab")
        self.unk_id = self.vocab[unk]
        self.longest = max(len(t) for t in self.vocab)
        self._cache: dict[str, tuple[int, ...]] = {}

    def word_ids(self, word: str) -> tuple[int, ...]:
        ids = self._cache.get(word)
        if ids is None:
            ids = self._encode(word)
            if len(self._cache) >= 1 << 16:
                self._cache = {}
            self._cache[word] = ids
        return ids

    def _encode(self, word: str) -> tuple[int, ...]:
        n = len(word)
        if n > self.max_chars:
            return (self.unk_id,)
        vocab, out, start, prefix = self.vocab, [], 0, ""
        while start < n:
            end = min(n, start + self.longest)
            while end > start:
                idx = vocab.get(prefix + word[start:end])
                if idx is not None:
                    out.append(idx)
                    break
                end -= 1
            else:
                return (self.unk_id,)
            start, prefix = end, self.prefix
        return tuple(out)


def _model(spec: Mapping[str, Any]) -> Any:
    kind = spec.get("type")
    if kind == "WordPiece":
        return WordPiece(spec)
    if kind == "BPE":
        from .bpe import BPE

        return BPE(spec)
    if kind == "Unigram":
        from .unigram import Unigram

        return Unigram(spec)
    raise UnsupportedPart(f"tokenizer.json model {kind!r} is not supported; supported: {MODELS}")


def template(spec: Mapping[str, Any] | None) -> tuple[list[int], list[int], list[int]]:
    """(ids before the text, ids after it, type ids of [before..., text, after...]) for one text."""
    if spec is None:
        return [], [], [0]
    kind = spec.get("type")
    if kind == "ByteLevel":
        return [], [], [0]
    if kind == "Sequence":
        found = [template(p) for p in spec.get("processors", []) if p.get("type") != "ByteLevel"]
        if len(found) > 1:
            raise UnsupportedPart("tokenizer.json post_processor Sequence: more than one template")
        return found[0] if found else ([], [], [0])
    if kind in ("RobertaProcessing", "BertProcessing"):
        cls, sep = spec["cls"], spec["sep"]
        return [int(cls[1])], [int(sep[1])], [0, 0, 0]
    if kind == "TemplateProcessing":
        return _template_processing(spec)
    raise UnsupportedPart(
        f"tokenizer.json post_processor {kind!r} is not supported; supported: {POST_PROCESSORS}"
    )


def _template_processing(spec: Mapping[str, Any]) -> tuple[list[int], list[int], list[int]]:
    specials = spec.get("special_tokens", {})
    before: list[int] = []
    after: list[int] = []
    types: list[int] = []
    seen = 0
    for item in spec["single"]:
        if "Sequence" in item:
            seen += 1
            types.append(int(item["Sequence"].get("type_id", 0)))
            continue
        name = item["SpecialToken"]["id"]
        ids = [int(i) for i in specials[name]["ids"]]
        (after if seen else before).extend(ids)
        types.extend([int(item["SpecialToken"].get("type_id", 0))] * len(ids))
    if seen != 1:
        raise UnsupportedPart("tokenizer.json TemplateProcessing: the single template must hold $A once")
    return before, after, types


#: normalizers and pre-tokenizers that act within a whitespace-separated word (or on whitespace alone)
_LOCAL_NORMALIZERS = {"BertNormalizer", "NFC", "NFD", "NFKC", "NFKD", "Lowercase", "StripAccents", "Strip"}
_LOCAL_PRE_TOKENIZERS = {"BertPreTokenizer", "ByteLevel", "WhitespaceSplit", "Punctuation"}


def _cuts_on_whitespace(spec: Mapping[str, Any]) -> bool:
    """Whether text between two whitespace-separated words tokenizes independently of the rest."""

    def local_normalizer(n: Mapping[str, Any] | None) -> bool:
        if n is None:
            return True
        kind = n.get("type")
        if kind == "Sequence":
            return all(local_normalizer(x) for x in n.get("normalizers", []))
        if kind == "Precompiled":  # per grapheme cluster; clusters never start with a space
            return True
        if kind == "Replace":
            pattern = n.get("pattern", {})
            literal = pattern.get("String")
            if literal is not None:
                return bool(literal) and not any(c in WHITESPACE for c in literal + str(n.get("content")))
            return pattern.get("Regex") == " {2,}"
        return kind in _LOCAL_NORMALIZERS

    def local_pre(p: Mapping[str, Any] | None) -> bool:
        if p is None:
            return False
        kind = p.get("type")
        if kind == "Sequence":
            steps = p.get("pretokenizers", [])
            return any(local_pre(x) for x in steps) and all(local_pre(x) or _splits(x) for x in steps)
        if kind == "Metaspace":
            return bool(p.get("split", True))
        return kind in _LOCAL_PRE_TOKENIZERS and p.get("use_regex", True)

    def _splits(p: Mapping[str, Any]) -> bool:
        return p.get("type") in ("Punctuation",)

    return local_normalizer(spec.get("normalizer")) and local_pre(spec.get("pre_tokenizer"))


class _Added:
    """Added tokens of one kind (raw or normalized) as one leftmost-longest regex."""

    def __init__(self, tokens: list[Mapping[str, Any]]) -> None:
        self.tokens = {str(t["content"]): t for t in tokens if t.get("content")}
        alternatives = sorted(self.tokens, key=len, reverse=True)
        self.regex = re.compile("|".join(map(re.escape, alternatives))) if alternatives else None
        self.starts = frozenset(t[0] for t in self.tokens)

    def split(self, text: str) -> list[str | int]:
        """Text pieces (str) and added-token ids (int), in order."""
        if self.regex is None or not any(c in text for c in self.starts):
            return [text]
        out: list[str | int] = []
        pos = 0
        for m in self.regex.finditer(text):
            start, stop = m.span()
            tok = self.tokens[m.group()]
            if tok.get("single_word") and not _single_word(text, start, stop):
                continue
            if start < pos:  # an rstrip before took the spaces this match starts in
                continue
            if tok.get("lstrip"):
                while start > pos and text[start - 1] in WHITESPACE:
                    start -= 1
            if tok.get("rstrip"):
                while stop < len(text) and text[stop] in WHITESPACE:
                    stop += 1
            if pos < start:
                out.append(text[pos:start])
            out.append(int(tok["id"]))
            pos = stop
        if pos < len(text):
            out.append(text[pos:])
        return out


def _single_word(text: str, start: int, stop: int) -> bool:
    def word(c: str) -> bool:
        return c.isalnum() or c == "_"

    return (start == 0 or not word(text[start - 1])) and (stop == len(text) or not word(text[stop]))


class HFJsonTokenizer:
    """``text -> ids`` exactly as ``AutoTokenizer`` (fast) encodes with ``truncation=True``."""

    kind = "hf-tokenizer-json"
    #: truncates on its own side (any template), so ``build`` never wraps it in ``KeepEnd``
    truncates_itself = True

    def __init__(
        self,
        spec: Mapping[str, Any],
        *,
        max_length: int = 512,
        truncation_side: str = "right",
        pad_id: int | None = None,
    ) -> None:
        if truncation_side not in ("right", "left"):
            raise ValueError(f"truncation_side must be 'right' or 'left', got {truncation_side!r}")
        self.model = _model(spec["model"])
        self.normalize = normalizer(spec.get("normalizer"))
        self.pre_tokenize = pre_tokenizer(spec.get("pre_tokenizer"))
        self.before, self.after, self.type_ids = template(spec.get("post_processor"))
        added = list(spec.get("added_tokens") or [])
        self._raw = _Added([t for t in added if not t.get("normalized")])
        self._normalized = _Added([t for t in added if t.get("normalized")])
        n_special = len(self.before) + len(self.after)
        if max_length <= n_special:
            raise ValueError(f"max_length {max_length} leaves no room besides {n_special} special tokens")
        self.max_length = max_length
        self.truncation_side = truncation_side
        self.pad_id = 0 if pad_id is None else int(pad_id)
        #: words that tokenize independently of the text around them (for :func:`read_ids`), or None
        self.cut_words = re.compile(f"[^{SPACE_CLASS}]+") if _cuts_on_whitespace(spec) else None
        # the ids KeepEnd-style code and long-text windows expect around the pieces
        self.cls_id = self.before[0] if self.before else None
        self.sep_id = self.after[-1] if self.after else None

    @classmethod
    def from_files(
        cls, files: Mapping[str, bytes], config: Mapping[str, Any], max_length: int
    ) -> HFJsonTokenizer:
        """Bundle files: ``tokenizer`` (tokenizer.json); config: ``truncation_side``, ``pad_id``."""
        if "tokenizer" not in files:
            raise ValueError("hf-tokenizer-json needs a 'tokenizer' file (tokenizer.json)")
        spec = json.loads(files["tokenizer"].decode("utf-8"))
        return cls(
            spec,
            max_length=max_length,
            truncation_side=str(config.get("truncation_side", "right")),
            pad_id=config.get("pad_id"),
        )

    # -- public API ---------------------------------------------------------

    def encode(self, text: str) -> list[int]:
        limit = self.max_length - len(self.before) - len(self.after)
        if self.cut_words is not None:  # read only about `limit` words of a long text
            return self.wrap(read_ids(self, text, limit, self.truncation_side))
        if self.truncation_side == "right":
            ids = self._ids(text, limit)
            del ids[limit:]
        else:
            ids = self._ids(text, None)
            del ids[: max(0, len(ids) - limit)]
        return self.wrap(ids)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def tokenize_ids(self, text: str) -> list[int]:
        """The text's ids without the template's special tokens, untruncated."""
        return self._ids(text, None)

    def wrap(self, ids: list[int]) -> list[int]:
        """The template around already-cut ids."""
        return [*self.before, *ids, *self.after]

    # -- pipeline -----------------------------------------------------------

    def _ids(self, text: str, limit: int | None) -> list[int]:
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError(
                    f"text holds a lone surrogate ({text[exc.start]!r} at {exc.start}); the fast "
                    "tokenizer cannot encode it either"
                ) from None
        out: list[int] = []
        first = True  # Metaspace "first": only a piece that starts the text gets the prefix
        for piece in self._raw.split(text):
            if isinstance(piece, int):
                out.append(piece)
            else:
                normalized = self.normalize(piece) if self.normalize is not None else piece
                for sub in self._normalized.split(normalized):
                    if isinstance(sub, int):
                        out.append(sub)
                    elif sub:
                        self._words(sub, first, out, limit)
                    first = False
            first = False
            if limit is not None and len(out) >= limit:
                break
        return out

    def _words(self, text: str, first: bool, out: list[int], limit: int | None) -> None:
        words = self.pre_tokenize(text, first) if self.pre_tokenize is not None else [text]
        word_ids = self.model.word_ids
        for _i, word in enumerate(words):
            out.extend(word_ids(word))
            if limit is not None and len(out) >= limit:
                return
