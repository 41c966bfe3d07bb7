"""BERT WordPiece, id for id what transformers' slow ``BertTokenizer`` produces.

Chinese ALBERT checkpoints (``albert_chinese_*``) and every BERT-family model
that ships a ``vocab.txt`` tokenize with ``BertTokenizer``; the runtime may not
import transformers, so this re-implements its exact pipeline
(``PreTrainedTokenizer.tokenize`` + ``BasicTokenizer`` + ``WordpieceTokenizer``),
quirks included, because a model fed other ids than it was trained with
silently loses accuracy. Cleaning and CJK spacing are one ``str.translate``;
everything per word is memoised in a bounded cache, and encoding stops once
``max_length - 2`` ids exist. docs/tokenizers.md lists each step, the known
limit (overlapping special tokens) and the measured speed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from . import read_ids

__all__ = ["WordPieceTokenizer", "is_chinese_char", "is_punctuation", "load_vocab"]

#: words memoised per tokenizer; real text uses a few thousand distinct words,
#: the bound only protects against hostile input.
CACHE_SIZE = 1 << 16
#: characters memoised in the shared cleaning tables (same reasoning)
_TABLE_SIZE = 1 << 16


def is_chinese_char(cp: int) -> bool:
    """BERT's CJK ideograph ranges (``BasicTokenizer._is_chinese_char``); they omit
    Hangul, kana and CJK punctuation on purpose."""
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


#: BERT's CJK ideograph ranges as a regex class (the same ranges as is_chinese_char)
_CJK = (
    "\u4e00-\u9fff\u3400-\u4dbf\U00020000-\U0002a6df\U0002a700-\U0002b73f\U0002b740-\U0002b81f"
    "\U0002b820-\U0002ceaf\uf900-\ufaff\U0002f800-\U0002fa1f"
)
#: pre-tokenized words for read_ids: whitespace-separated, and each CJK ideograph alone
#: when they are split (spaces go around them before the word split)
_CUT_WORDS = {True: re.compile(f"[{_CJK}]|[^\\s{_CJK}]+"), False: re.compile(r"\S+")}


def is_punctuation(ch: str) -> bool:
    """BERT's ``_is_punctuation``: Unicode ``P*`` plus every non-alphanumeric
    printable ASCII character (``$``, ``+``, ``^`` ... are symbols in Unicode)."""
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


class _CleanTable(dict):
    """``str.translate`` table for ``_clean_text`` (+ ``_tokenize_chinese_chars``).

    Filled on first sight of each code point instead of scanning all 1.1M
    at import; lookups after that are C dict hits. Inserts are single dict
    assignments of a deterministic value, so concurrent threads are harmless.
    """

    def __init__(self, split_chinese: bool) -> None:
        super().__init__()
        self.split_chinese = split_chinese

    def __missing__(self, cp: int) -> str | int | None:
        ch = chr(cp)
        value: str | int | None
        if cp == 0 or cp == 0xFFFD:
            value = None
        elif ch in " \t\n\r":
            value = " "
        else:
            cat = unicodedata.category(ch)
            if cat.startswith("C"):
                value = None
            elif cat == "Zs":
                value = " "
            elif self.split_chinese and is_chinese_char(cp):
                value = f" {ch} "
            else:
                value = cp
        if len(self) < _TABLE_SIZE:
            self[cp] = value
        return value


_TABLES = {True: _CleanTable(True), False: _CleanTable(False)}


def load_vocab(data: bytes) -> dict[str, int]:
    """Parse vocab.txt as ``transformers.models.bert.load_vocab`` does: UTF-8 (a
    BOM stays part of the first token), universal newlines, one token per
    line, only the newline stripped, a repeated token keeps its last index."""
    text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return {tok: i for i, tok in enumerate(lines)}


class WordPieceTokenizer:
    """``text -> [CLS] wordpieces [SEP]`` ids, truncated to ``max_length``.

    Equals ``BertTokenizer(vocab, ...).encode(text, truncation=True,
    max_length=max_length)``. Stateless apart from the word cache, hence
    safe to share between threads.
    """

    kind = "wordpiece"

    def __init__(
        self,
        vocab: Mapping[str, int],
        *,
        max_length: int = 512,
        do_lower_case: bool = True,
        strip_accents: bool | None = None,
        tokenize_chinese_chars: bool = True,
        never_split: Iterable[str] = (),
        unk_token: str = "[UNK]",
        sep_token: str = "[SEP]",
        pad_token: str = "[PAD]",
        cls_token: str = "[CLS]",
        mask_token: str | None = "[MASK]",
        additional_special_tokens: Sequence[str] = (),
        max_input_chars_per_word: int = 100,
        cache_size: int = CACHE_SIZE,
    ) -> None:
        if max_length < 3:
            # [CLS] + [SEP] leave no room for text; BertTokenizer then logs an
            # error and returns the *untruncated* ids, which no model accepts
            raise ValueError("max_length must be >= 3 ([CLS], one token, [SEP])")
        self.vocab: dict[str, int] = dict(vocab)
        # all_special_tokens order of transformers: it decides which alternative
        # wins in the lowercasing regex when tokens overlap
        specials = [t for t in (unk_token, sep_token, pad_token, cls_token, mask_token) if t]
        specials += [t for t in additional_special_tokens if t]
        specials = list(dict.fromkeys(specials))
        missing = [t for t in specials if t not in self.vocab]
        if missing:
            # BertTokenizer would append them with fresh ids the model never saw
            raise ValueError(f"special tokens missing from the vocab: {missing}")
        self.max_length = max_length
        self.vocab_size = max(self.vocab.values()) + 1 if self.vocab else 0
        self.unk_id = self.vocab[unk_token]
        self.cls_id = self.vocab[cls_token]
        self.sep_id = self.vocab[sep_token]
        self.pad_id = self.vocab[pad_token]
        self.do_lower_case = bool(do_lower_case)
        self.strip_accents = strip_accents
        self.tokenize_chinese_chars = bool(tokenize_chinese_chars)
        self.max_input_chars_per_word = int(max_input_chars_per_word)
        self.special_tokens: tuple[str, ...] = tuple(specials)
        self._special_ids = {t: self.vocab[t] for t in specials}
        # BasicTokenizer.never_split (kept verbatim *and* looked up whole) vs.
        # the union with the special tokens (only kept from splitting/lowercasing)
        self._basic_never_split = frozenset(never_split)
        self._never_split = self._basic_never_split | frozenset(specials)
        self._table = _TABLES[self.tokenize_chinese_chars]
        #: pre-tokenized words (edgeclf.tokenizers.read_ids)
        self.cut_words = _CUT_WORDS[self.tokenize_chinese_chars]
        self._lower_re = re.compile("(" + "|".join(map(re.escape, specials)) + ")") if specials else None
        by_length = sorted(specials, key=len, reverse=True)
        self._split_re = re.compile("(" + "|".join(map(re.escape, by_length)) + ")") if specials else None
        self._special_starts = tuple(dict.fromkeys(t[0] for t in specials))
        # longest-match search never needs to look past the longest vocab entry
        self._max_piece = max((len(t) for t in self.vocab if not t.startswith("##")), default=0)
        self._max_cont = max((len(t) - 2 for t in self.vocab if t.startswith("##")), default=0)
        self._punct: dict[str, bool] = {}
        self._cache_size = int(cache_size)
        self._cache: dict[str, tuple[int, ...]] = {}

    @classmethod
    def from_files(
        cls, files: Mapping[str, bytes], config: Mapping[str, Any], max_length: int
    ) -> WordPieceTokenizer:
        """Build from a bundle: ``files["vocab"]`` is vocab.txt; ``config`` uses the
        key names of a Hugging Face ``tokenizer_config.json``."""
        if "vocab" not in files:
            raise ValueError("wordpiece tokenizer needs a 'vocab' file (vocab.txt)")
        if not config.get("do_basic_tokenize", True):
            raise ValueError("wordpiece: do_basic_tokenize=false is not supported")
        strip_accents = config.get("strip_accents")
        mask_token = config.get("mask_token", "[MASK]")
        extra = config.get("additional_special_tokens") or ()
        return cls(
            load_vocab(files["vocab"]),
            max_length=max_length,
            do_lower_case=bool(config.get("do_lower_case", True)),
            strip_accents=None if strip_accents is None else bool(strip_accents),
            tokenize_chinese_chars=bool(config.get("tokenize_chinese_chars", True)),
            never_split=[str(t) for t in config.get("never_split") or ()],
            unk_token=_token_name(config.get("unk_token", "[UNK]")),
            sep_token=_token_name(config.get("sep_token", "[SEP]")),
            pad_token=_token_name(config.get("pad_token", "[PAD]")),
            cls_token=_token_name(config.get("cls_token", "[CLS]")),
            mask_token=None if mask_token is None else _token_name(mask_token),
            additional_special_tokens=[_token_name(t) for t in extra],
            max_input_chars_per_word=int(config.get("max_input_chars_per_word", 100)),
        )

    # -- public API ---------------------------------------------------------

    def encode(self, text: str) -> list[int]:
        """``[CLS] + ids + [SEP]``, the ids cut after ``max_length - 2``."""
        return self.wrap(read_ids(self, text, self.max_length - 2, "right"))

    def wrap(self, ids: Sequence[int]) -> list[int]:
        """``[CLS] ids [SEP]``."""
        return [self.cls_id, *ids, self.sep_id]

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def tokenize_ids(self, text: str) -> list[int]:
        """Ids without [CLS]/[SEP] and without truncation (left truncation, tests)."""
        ids: list[int] = []
        for i, part in enumerate(self._parts(text)):
            if i & 1:
                ids.append(self._special_ids[part])
            elif part:
                self._encode_segment(part, ids, None)
        return ids

    def tokenize(self, text: str) -> list[str]:
        """Word pieces as strings (no [CLS]/[SEP], no truncation), for debugging
        and for comparing with ``BertTokenizer.tokenize``."""
        inverse = {i: t for t, i in self.vocab.items()}
        return [inverse[i] for i in self.tokenize_ids(text)]

    # -- pipeline -----------------------------------------------------------

    def _parts(self, text: str) -> list[str]:
        """Steps 1-2: lowercase outside special tokens, then cut them out.

        ``re.split`` layout: even indexes are text (maybe empty), odd ones
        special tokens. Most texts hold no special token's first character,
        which one substring test per token start proves in C.
        """
        if self.do_lower_case:
            if self._lower_re is not None and self._may_hold_special(text):
                parts = self._lower_re.split(text)
                parts[0::2] = [_lower(p) for p in parts[0::2]]
                text = "".join(parts)
            else:
                text = _lower(text)
        if self._split_re is None or not self._may_hold_special(text):
            return [text]
        return self._split_re.split(text)

    def _may_hold_special(self, text: str) -> bool:
        return any(c in text for c in self._special_starts)

    def _encode_segment(self, segment: str, out: list[int], limit: int | None) -> None:
        """Step 3 up to the word split in C, then one cache lookup per word."""
        text = unicodedata.normalize("NFC", segment.translate(self._table))
        cache = self._cache
        get = cache.get
        for word in text.split():
            ids = get(word)
            if ids is None:
                ids = self._word_ids(word)
                if len(cache) >= self._cache_size:
                    # start over instead of evicting: one attribute assignment,
                    # so threads still holding the old dict stay correct
                    self._cache = cache = {}
                    get = cache.get
                cache[word] = ids
            out.extend(ids)
            if limit is not None and len(out) >= limit:
                return

    def _word_ids(self, word: str) -> tuple[int, ...]:
        """Step 3's per-word tail (case, accents, punctuation) and step 4."""
        never_split = self._never_split
        if word in never_split:
            pieces = [word]
        else:
            if self.do_lower_case:
                word = word.lower()
                if self.strip_accents is not False:
                    word = _strip_accents(word)
            elif self.strip_accents:
                word = _strip_accents(word)
            pieces = [word] if word in never_split else self._split_punctuation(word)
        ids: list[int] = []
        # transformers re-splits " ".join(pieces) on whitespace; emptied words vanish
        for piece in " ".join(pieces).split():
            if piece in self._basic_never_split:
                ids.append(self._special_ids.get(piece, self.vocab.get(piece, self.unk_id)))
            else:
                self._wordpiece(piece, ids)
        return tuple(ids)

    def _split_punctuation(self, word: str) -> list[str]:
        punct = self._punct
        out: list[str] = []
        start = 0
        for i, ch in enumerate(word):
            p = punct.get(ch)
            if p is None:
                p = is_punctuation(ch)
                if len(punct) < _TABLE_SIZE:
                    punct[ch] = p
            if p:
                if start < i:
                    out.append(word[start:i])
                out.append(ch)
                start = i + 1
        if start < len(word):
            out.append(word[start:])
        return out

    def _wordpiece(self, word: str, out: list[int]) -> None:
        """Greedy longest-match-first; the whole word is ``[UNK]`` if any rest fails."""
        n = len(word)
        if n > self.max_input_chars_per_word:
            out.append(self.unk_id)
            return
        vocab = self.vocab
        found: list[int] = []
        start = 0
        longest = self._max_piece
        prefix = ""
        while start < n:
            end = min(n, start + longest)
            while end > start:
                idx = vocab.get(prefix + word[start:end])
                if idx is not None:
                    found.append(idx)
                    break
                end -= 1
            else:
                out.append(self.unk_id)
                return
            start = end
            prefix = "##"
            longest = self._max_cont
        out.extend(found)


def _token_name(value: Any) -> str:
    """A special token from a tokenizer_config.json: a string, or a serialised
    ``AddedToken`` (``{"content": "[UNK]", ...}``)."""
    if isinstance(value, Mapping):
        value = value["content"]
    if not isinstance(value, str) or not value:
        raise ValueError(f"wordpiece: a special token must be a non-empty string, got {value!r}")
    return value


def _lower(text: str) -> str:
    """Per-character lowercasing as transformers' regex does: ``str.lower`` but
    without the context-dependent final sigma (its only conditional mapping)."""
    return text.replace("Σ", "σ").lower()


def _strip_accents(text: str) -> str:
    text = unicodedata.normalize("NFD", text)
    if text.isascii():
        return text
    return "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
