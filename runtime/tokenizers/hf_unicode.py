"""Character classes of the ``tokenizers`` library, for the tokenizer.json pipeline.

The Rust library classifies characters with its own Unicode tables
(Oniguruma for regexes, Rust crates for BERT's cleaning and punctuation),
each of its own Unicode version; Python's ``unicodedata`` has another. The
classes here are Python's categories plus the exception tables below, which
``benchmarks/byo_unicode_tables.py`` generates by probing the library
(tokenizers 0.22, against Python 3.11's Unicode 14.0 data) on every code
point. With them the classes equal the library's on every code point Python
knows. Tables are built lazily (one scan of the code space, ~0.3 s) the
first time a tokenizer needs them.

Not covered by tables (the library differs only for characters of scripts
added after Unicode 9 or in 15-16): lowercasing, NFC/NFKC/NFD and the
combining-mark tests of accent stripping follow Python's ``unicodedata``.
"""

from __future__ import annotations

import sys
import unicodedata
from array import array
from functools import lru_cache

from .wordpiece import is_chinese_char

__all__ = ["is_bert_control", "is_bert_punctuation", "is_chinese_char", "letter_class", "lower"]

# fmt: off
LETTER_EXTRA: tuple[tuple[int, int], ...] = (
    (0x1C89, 0x1C8A), (0xA7CB, 0xA7CD), (0xA7DA, 0xA7DC), (0x105C0, 0x105F3), (0x10D4A, 0x10D65),
    (0x10D6F, 0x10D85), (0x10EC2, 0x10EC4), (0x1123F, 0x11240), (0x11380, 0x11389), (0x1138B, 0x1138B),
    (0x1138E, 0x1138E), (0x11390, 0x113B5), (0x113B7, 0x113B7), (0x113D1, 0x113D1), (0x113D3, 0x113D3),
    (0x11BC0, 0x11BE0), (0x11F02, 0x11F02), (0x11F04, 0x11F10), (0x11F12, 0x11F33), (0x1342F, 0x1342F),
    (0x13441, 0x13446), (0x13460, 0x143FA), (0x16100, 0x1611D), (0x16D40, 0x16D6C), (0x18CFF, 0x18CFF),
    (0x1B132, 0x1B132), (0x1B155, 0x1B155), (0x1DF25, 0x1DF2A), (0x1E030, 0x1E06D), (0x1E4D0, 0x1E4EB),
    (0x1E5D0, 0x1E5ED), (0x1E5F0, 0x1E5F0), (0x2B739, 0x2B739), (0x2EBF0, 0x2EE5D), (0x31350, 0x323AF),
)
NUMBER_EXTRA: tuple[tuple[int, int], ...] = (
    (0x10D40, 0x10D49), (0x116D0, 0x116E3), (0x11BF0, 0x11BF9), (0x11F50, 0x11F59), (0x16130, 0x16139),
    (0x16D70, 0x16D79), (0x1CCF0, 0x1CCF9), (0x1D2C0, 0x1D2D3), (0x1E4F0, 0x1E4F9), (0x1E5F1, 0x1E5FA),
)
CONTROL_KEPT: tuple[tuple[int, int], ...] = (
    (0x890, 0x891), (0x8E2, 0x8E2), (0x110CD, 0x110CD), (0x13430, 0x13438),
)

PUNCT_EXTRA: tuple[tuple[int, int], ...] = (
    (0x166D, 0x166D), (0x111C9, 0x111C9),
)
PUNCT_NOT: tuple[tuple[int, int], ...] = (
    (0x61D, 0x61D), (0x9FD, 0x9FD), (0xA76, 0xA76), (0xC77, 0xC77), (0xC84, 0xC84), (0x1B7D, 0x1B7E),
    (0x2E43, 0x2E4F), (0x2E52, 0x2E5D), (0x10EAD, 0x10EAD), (0x10F55, 0x10F59), (0x10F86, 0x10F89),
    (0x1144B, 0x1144F), (0x1145A, 0x1145B), (0x1145D, 0x1145D), (0x11660, 0x1166C), (0x116B9, 0x116B9),
    (0x1183B, 0x1183B), (0x11944, 0x11946), (0x119E2, 0x119E2), (0x11A3F, 0x11A46), (0x11A9A, 0x11A9C),
    (0x11A9E, 0x11AA2), (0x11C41, 0x11C45), (0x11C70, 0x11C71), (0x11EF7, 0x11EF8), (0x11FFF, 0x11FFF),
    (0x12FF1, 0x12FF2), (0x16E97, 0x16E9A), (0x16FE2, 0x16FE2), (0x1E95E, 0x1E95F),
)
# fmt: on

#: Rust's ``char::is_whitespace`` and Oniguruma's ``\s``: the White_Space property
#: (Python's ``str.isspace`` adds U+001C-U+001F)
WHITESPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
SPACE_CLASS = "".join(f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}" for c in sorted(WHITESPACE))


def _in(cp: int, table: tuple[tuple[int, int], ...]) -> bool:
    return any(a <= cp <= b for a, b in table)


def _class(points: list[int]) -> str:
    """A regex character-class body (no brackets) for sorted code points, as ranges."""
    out: list[str] = []
    start = prev = -2
    for cp in [*points, -5]:
        if cp == prev + 1:
            prev = cp
            continue
        if start >= 0:
            out.append(_esc(start) if start == prev else f"{_esc(start)}-{_esc(prev)}")
        start = prev = cp
    return "".join(out)


def _esc(cp: int) -> str:
    return f"\\U{cp:08x}"


@lru_cache(maxsize=1)
def _categories() -> dict[str, list[int]]:
    """Letters (``L*``), numbers (``N*``) and marks (``M*``) of Python's Unicode data.

    Letters and numbers are among regex ``\\w`` (alphanumerics and ``_``), which the C regex
    engine finds in the whole code space at once; marks only occur below U+20000 and in plane 14.
    """
    import re

    points = array("I", range(0xD800))
    points.extend(range(0xE000, sys.maxunicode + 1))
    everything = points.tobytes().decode("utf-32-le" if sys.byteorder == "little" else "utf-32-be")
    out: dict[str, list[int]] = {"L": [], "N": [], "M": []}
    category = unicodedata.category
    for ch in re.findall(r"\w", everything):
        if ch.isalpha():
            out["L"].append(ord(ch))
        elif category(ch)[0] == "N":
            out["N"].append(ord(ch))
    for cp in [*range(0x20000), *range(0xE0000, 0xE1000)]:
        if category(chr(cp))[0] == "M":
            out["M"].append(cp)
    return out


def _with(points: list[int], extra: tuple[tuple[int, int], ...]) -> list[int]:
    more = {cp for a, b in extra for cp in range(a, b + 1)}
    return sorted(more.union(points))


@lru_cache(maxsize=1)
def letter_class() -> str:
    """Oniguruma's ``\\p{L}`` as a Python regex class body."""
    return _class(_with(_categories()["L"], LETTER_EXTRA))


@lru_cache(maxsize=1)
def number_class() -> str:
    """Oniguruma's ``\\p{N}`` as a Python regex class body."""
    return _class(_with(_categories()["N"], NUMBER_EXTRA))


@lru_cache(maxsize=1)
def mark_class() -> str:
    """Every ``M*`` character (grapheme extenders, for the Precompiled normalizer)."""
    return _class(_categories()["M"])


def is_bert_control(ch: str) -> bool:
    """Removed by BertNormalizer's ``clean_text``: NUL, U+FFFD, ``Cc``/``Cf``/``Co`` but tab/LF/CR."""
    cp = ord(ch)
    if cp == 0 or cp == 0xFFFD:
        return True
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch) in ("Cc", "Cf", "Co") and not _in(cp, CONTROL_KEPT)


def is_bert_punctuation(ch: str) -> bool:
    """BertPreTokenizer's (and the Punctuation pre-tokenizer's) punctuation."""
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    if unicodedata.category(ch).startswith("P"):
        return not _in(cp, PUNCT_NOT)
    return _in(cp, PUNCT_EXTRA)


def lower(text: str) -> str:
    """Per-character lowercasing (Rust's ``char::to_lowercase``): no final-sigma rule."""
    return text.replace("Σ", "σ").lower() if "Σ" in text else text.lower()
