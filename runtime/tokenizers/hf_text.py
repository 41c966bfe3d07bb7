"""tokenizer.json normalizers and pre-tokenizers, as the ``tokenizers`` library runs them.

A normalizer is a function ``str -> str``; a pre-tokenizer turns one piece
of text into the words the model encodes (``pre_tokenize(text, first)``,
``first``: the piece starts the original text, which Metaspace's
``prepend_scheme: "first"`` asks about). :func:`normalizer` and
:func:`pre_tokenizer` build them from their JSON objects and refuse any
part they do not implement, by its ``type``.

Regex patterns in tokenizer.json are Oniguruma's; they run on Python's
``re`` with ``\\p{L}`` / ``\\p{N}`` / ``\\s`` spelled out as the library's
classes (:mod:`edgeclf.tokenizers.hf_unicode`). A pattern Python cannot
compile is refused when the tokenizer is built, never at encode time.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from .bpe import bytes_to_unicode
from .hf_unicode import (
    SPACE_CLASS,
    WHITESPACE,
    is_bert_control,
    is_bert_punctuation,
    is_chinese_char,
    letter_class,
    lower,
    number_class,
)

Normalizer = Callable[[str], str]
PreTokenizer = Callable[[str, bool], list[str]]

NORMALIZERS = (
    "BertNormalizer Sequence NFC NFD NFKC NFKD Lowercase Strip StripAccents Replace Prepend Precompiled"
)
PRE_TOKENIZERS = "BertPreTokenizer ByteLevel Metaspace Sequence Split Punctuation WhitespaceSplit"


class UnsupportedPart(ValueError):
    """A tokenizer.json part this runtime does not implement."""


def _unsupported(what: str, kind: Any, known: str) -> UnsupportedPart:
    return UnsupportedPart(f"tokenizer.json {what} {kind!r} is not supported; supported: {known}")


# ------------------------------------------------------------------ regexes


def translate_regex(pattern: str) -> re.Pattern[str]:
    """An Oniguruma pattern of tokenizer.json as a Python regex.

    ``\\p{L}``, ``\\p{N}`` and ``\\s`` / ``\\S`` become the library's classes (Python's ``\\s``
    adds U+001C-U+001F); any other ``\\p{...}`` is refused.
    """
    out: list[str] = []
    inside = False
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt in "pP":
                name = re.match(r"\{(\w+)\}", pattern[i + 2 :])
                body = {"L": letter_class, "N": number_class}.get(name.group(1) if name else "")
                if nxt == "P" or body is None:
                    raise UnsupportedPart(
                        f"tokenizer.json regex {pattern!r}: only \\p{{L}} and \\p{{N}} are supported"
                    )
                out.append(body() if inside else f"[{body()}]")
                i += 2 + name.end()  # type: ignore[union-attr]
                continue
            if nxt == "s":
                out.append(SPACE_CLASS if inside else f"[{SPACE_CLASS}]")
            elif nxt == "S" and not inside:
                out.append(f"[^{SPACE_CLASS}]")
            elif nxt == "S":
                raise UnsupportedPart(f"tokenizer.json regex {pattern!r}: \\S inside a class")
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if c == "[" and not inside:
            inside = True
        elif c == "]" and inside and out and out[-1] not in ("[", "[^"):
            inside = False
        out.append(c)
        if c == "^" and out[-2:] == ["[", "^"]:
            out[-2:] = ["[^"]
        i += 1
    try:
        return re.compile("".join(out))
    except re.error as exc:
        raise UnsupportedPart(f"tokenizer.json regex {pattern!r} does not compile in Python: {exc}") from None


@lru_cache(maxsize=1)
def byte_level_regex() -> re.Pattern[str]:
    """GPT-2's split regex, as ByteLevel runs it."""
    return translate_regex(r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+")


# ------------------------------------------------------------------ normalizers


def normalizer(spec: Mapping[str, Any] | None) -> Normalizer | None:
    """The normalizer a tokenizer.json ``normalizer`` object describes (None: none)."""
    if spec is None:
        return None
    kind = spec.get("type")
    if kind == "Sequence":
        steps = [n for n in (normalizer(s) for s in spec.get("normalizers", [])) if n is not None]
        return lambda text: _chain(steps, text)
    if kind in ("NFC", "NFD", "NFKC", "NFKD"):
        form = kind
        return lambda text: text if text.isascii() else unicodedata.normalize(form, text)
    if kind == "Lowercase":
        return lower
    if kind == "StripAccents":
        return _strip_marks
    if kind == "Strip":
        left, right = bool(spec.get("strip_left", True)), bool(spec.get("strip_right", True))
        return lambda text: _strip(text, left, right)
    if kind == "Prepend":
        prefix = str(spec["prepend"])
        return lambda text: prefix + text if text else text
    if kind == "Replace":
        return _replace(spec)
    if kind == "BertNormalizer":
        return _bert_normalizer(spec)
    if kind == "Precompiled":
        from .precompiled import Charsmap

        blob = base64.b64decode(spec.get("precompiled_charsmap") or "")
        return Charsmap(blob).normalize if blob else None
    raise _unsupported("normalizer", kind, NORMALIZERS)


def _chain(steps: list[Normalizer], text: str) -> str:
    for step in steps:
        text = step(text)
    return text


def _strip(text: str, left: bool, right: bool) -> str:
    spaces = "".join(WHITESPACE)
    if left:
        text = text.lstrip(spaces)
    if right:
        text = text.rstrip(spaces)
    return text


def _strip_marks(text: str) -> str:
    """StripAccents: drop every combining mark (``M*``); the library does not decompose first."""
    if text.isascii():
        return text
    return "".join(c for c in text if not unicodedata.category(c).startswith("M"))


def _replace(spec: Mapping[str, Any]) -> Normalizer:
    pattern, content = spec["pattern"], str(spec["content"])
    if "String" in pattern:
        literal = str(pattern["String"])
        return lambda text: text.replace(literal, content) if literal else text
    if "Regex" in pattern:
        regex = translate_regex(str(pattern["Regex"]))
        return lambda text: regex.sub(lambda _m: content, text)
    raise UnsupportedPart(f"tokenizer.json Replace pattern {pattern!r}: expected String or Regex")


class _BertTable(dict[int, "str | int | None"]):
    """``clean_text`` + ``handle_chinese_chars`` as one lazily filled ``str.translate`` table."""

    def __init__(self, clean: bool, chinese: bool) -> None:
        super().__init__()
        self.clean, self.chinese = clean, chinese

    def __missing__(self, cp: int) -> str | int | None:
        ch = chr(cp)
        value: str | int | None = cp
        if self.clean and is_bert_control(ch):
            value = None
        elif self.clean and ch in WHITESPACE:
            value = " "
        elif self.chinese and is_chinese_char(cp):
            value = f" {ch} "
        if len(self) < 1 << 16:
            self[cp] = value
        return value


def _bert_normalizer(spec: Mapping[str, Any]) -> Normalizer:
    clean = bool(spec.get("clean_text", True))
    chinese = bool(spec.get("handle_chinese_chars", True))
    lowercase = bool(spec.get("lowercase", True))
    strip = spec.get("strip_accents")
    strip = lowercase if strip is None else bool(strip)
    table = _BertTable(clean, chinese)

    def run(text: str) -> str:
        if clean or chinese:
            text = text.translate(table)
        if strip and not text.isascii():
            text = unicodedata.normalize("NFD", text)
            text = "".join(c for c in text if unicodedata.category(c) != "Mn")
        return lower(text) if lowercase else text

    return run


# ------------------------------------------------------------------ pre-tokenizers


def pre_tokenizer(spec: Mapping[str, Any] | None) -> PreTokenizer | None:
    """The pre-tokenizer a tokenizer.json ``pre_tokenizer`` object describes (None: none)."""
    if spec is None:
        return None
    kind = spec.get("type")
    if kind == "Sequence":
        steps = [p for p in (pre_tokenizer(s) for s in spec.get("pretokenizers", [])) if p is not None]
        return lambda text, first: _sequence(steps, text, first)
    if kind == "BertPreTokenizer":
        return lambda text, first: _bert_words(text)
    if kind == "WhitespaceSplit":
        return lambda text, first: [w for w in _space_re().split(text) if w]
    if kind == "Punctuation":
        behavior = str(spec.get("behavior", "Isolated"))
        return lambda text, first: split_chars(text, is_bert_punctuation, behavior)
    if kind == "Split":
        return _split(spec)
    if kind == "ByteLevel":
        return ByteLevel(spec)
    if kind == "Metaspace":
        return _metaspace(spec)
    raise _unsupported("pre_tokenizer", kind, PRE_TOKENIZERS)


def _sequence(steps: list[PreTokenizer], text: str, first: bool) -> list[str]:
    pieces = [text]
    for step in steps:
        pieces = [w for i, p in enumerate(pieces) for w in step(p, first and i == 0)]
    return pieces


def _bert_words(text: str) -> list[str]:
    """Split on White_Space (removed), then isolate every punctuation character."""
    words: list[str] = []
    for word in _space_re().split(text):
        if not word:
            continue
        if word.isalnum():
            words.append(word)
        else:
            words.extend(split_chars(word, is_bert_punctuation, "Isolated"))
    return words


@lru_cache(maxsize=1)
def _space_re() -> re.Pattern[str]:
    return re.compile(f"[{SPACE_CLASS}]+")


def split_chars(text: str, pred: Callable[[str], bool], behavior: str) -> list[str]:
    """Split where single characters match ``pred``, with the library's delimiter behaviors."""
    spans = [(i, i + 1) for i, c in enumerate(text) if pred(c)]
    return apply_behavior(text, spans, behavior)


def apply_behavior(text: str, spans: list[tuple[int, int]], behavior: str, invert: bool = False) -> list[str]:
    """Pieces of ``text`` given its delimiter ``spans`` (``SplitDelimiterBehavior``); empties dropped."""
    items: list[tuple[int, int, bool]] = []
    pos = 0
    for s, e in spans:
        if s > pos:
            items.append((pos, s, invert))
        items.append((s, e, not invert))
        pos = e
    if pos < len(text):
        items.append((pos, len(text), invert))
    out: list[list[int]] = []
    if behavior == "Removed":
        out = [[s, e] for s, e, m in items if not m]
    elif behavior == "Isolated":
        out = [[s, e] for s, e, _ in items]
    elif behavior == "Contiguous":
        prev = False
        for s, e, m in items:
            if m and prev and out:
                out[-1][1] = e
            else:
                out.append([s, e])
            prev = m
    elif behavior == "MergedWithPrevious":
        prev = False
        for s, e, m in items:
            if m and not prev and out:
                out[-1][1] = e
            else:
                out.append([s, e])
            prev = m
    elif behavior == "MergedWithNext":
        prev = False
        for s, e, m in reversed(items):
            if m and not prev and out:
                out[-1][0] = s
            else:
                out.append([s, e])
            prev = m
        out.reverse()
    else:
        raise UnsupportedPart(f"tokenizer.json split behavior {behavior!r} is not supported")
    return [text[s:e] for s, e in out if e > s]


def _split(spec: Mapping[str, Any]) -> PreTokenizer:
    pattern = spec["pattern"]
    behavior = str(spec.get("behavior", "Isolated"))
    invert = bool(spec.get("invert", False))
    apply_behavior("", [], behavior)  # refuse an unknown behavior now
    if "String" in pattern:
        regex = re.compile(re.escape(str(pattern["String"])))
    elif "Regex" in pattern:
        regex = translate_regex(str(pattern["Regex"]))
    else:
        raise UnsupportedPart(f"tokenizer.json Split pattern {pattern!r}: expected String or Regex")

    def run(text: str, first: bool) -> list[str]:
        spans = [m.span() for m in regex.finditer(text) if m.end() > m.start()]
        return apply_behavior(text, spans, behavior, invert)

    return run


def _metaspace(spec: Mapping[str, Any]) -> PreTokenizer:
    rep = str(spec.get("replacement", "▁"))
    scheme = spec.get("prepend_scheme")
    if scheme is None:  # files written before prepend_scheme existed
        scheme = "always" if spec.get("add_prefix_space", True) else "never"
    if scheme not in ("always", "first", "never"):
        raise UnsupportedPart(f"tokenizer.json Metaspace prepend_scheme {scheme!r} is not supported")
    split = bool(spec.get("split", True))

    def run(text: str, first: bool) -> list[str]:
        text = text.replace(" ", rep)
        if (scheme == "always" or (scheme == "first" and first)) and not text.startswith(rep):
            text = rep + text
        if not split:
            return [text]
        words = text.split(rep)
        out = [words[0]] if words[0] else []
        # MergedWithNext: each replacement starts the next word; a run of them stays one per word
        out.extend(rep + w for w in words[1:])
        return out

    return run


class ByteLevel:
    """The ByteLevel pre-tokenizer: optional prefix space, GPT-2 regex split, bytes -> characters."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.add_prefix_space = bool(spec.get("add_prefix_space", False))
        self.regex = byte_level_regex() if spec.get("use_regex", True) else None
        table = bytes_to_unicode()
        self._ascii = str.maketrans({chr(b): table[b] for b in range(128)})
        self._bytes = [table[b] for b in range(256)]

    def __call__(self, text: str, first: bool) -> list[str]:
        if self.add_prefix_space and not text.startswith(" "):
            text = " " + text
        words = [text] if self.regex is None else [w for w in self.regex.findall(text) if w]
        return [self._map(w) for w in words]

    def _map(self, word: str) -> str:
        if word.isascii():
            return word.translate(self._ascii)
        table = self._bytes
        return "".join([table[b] for b in word.encode("utf-8")])
