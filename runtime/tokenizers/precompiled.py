"""The ``Precompiled`` normalizer of tokenizer.json: SentencePiece's charsmap, as the Rust library applies it.

The charsmap (base64 in tokenizer.json) is SentencePiece's precompiled
normalization table: ``uint32 trie_size`` + a Darts-clone double array +
NUL-terminated replacement strings. The ``tokenizers`` library does not walk
it as SentencePiece does (longest match over the raw bytes); it goes
grapheme cluster by grapheme cluster:

- a cluster shorter than 6 UTF-8 bytes whose bytes start with a rule is
  replaced *whole* by the first (shortest) rule that prefixes it, so
  ``"Ａ\\u0301"`` becomes ``"A"``, the accent dropped with the cluster;
- otherwise each character is replaced by its own rule, if it has one.

Single characters go through one ``str.translate`` table filled lazily;
only the rare multi-character clusters walk the trie. Cluster boundaries
follow the Unicode rules that can form a cluster shorter than 6 bytes: a
base followed by combining marks (``M*``), ZWJ / ZWNJ or variation
selectors, and CR LF; longer clusters (Hangul jamo runs, emoji sequences,
flags) are at least 6 bytes and go character by character either way.
"""

from __future__ import annotations

import re
import struct
import unicodedata
from functools import lru_cache

from .hf_unicode import mark_class

#: characters a cluster may continue with (besides M*): ZWNJ, ZWJ, variation selectors
_EXTENDERS = "\u200c\u200d\ufe00-\ufe0f"


@lru_cache(maxsize=1)
def _extender_re() -> re.Pattern[str]:
    return re.compile(f"[{mark_class()}{_EXTENDERS}\U000e0100-\U000e01ef]|\r\n")


class Charsmap:
    """Shortest-rule lookups in a precompiled charsmap blob."""

    def __init__(self, blob: bytes) -> None:
        if len(blob) < 4:
            raise ValueError("Precompiled normalizer: charsmap too short")
        (size,) = struct.unpack_from("<I", blob, 0)
        if size % 4 or 4 + size > len(blob):
            raise ValueError("Precompiled normalizer: corrupt charsmap")
        self._units = struct.unpack_from(f"<{size // 4}I", blob, 4)
        self._pool = blob[4 + size :]
        self._table = _Table(self)

    def first(self, key: bytes) -> str | None:
        """The replacement of the shortest rule that prefixes ``key`` (None: no rule)."""
        units = self._units
        n = len(units)
        if not n:
            return None
        u = units[0]
        pos = (u >> 10) << ((u & 0x200) >> 6)
        for b in key:
            pos ^= b
            if pos >= n:
                return None
            u = units[pos]
            if (u & 0x800000FF) != b:
                return None
            pos ^= (u >> 10) << ((u & 0x200) >> 6)
            if (u >> 8) & 1:
                if pos >= n:
                    return None
                value = units[pos] & 0x7FFFFFFF
                end = self._pool.find(b"\0", value)
                return self._pool[value : end if end >= 0 else len(self._pool)].decode("utf-8", "replace")
        return None

    def normalize(self, text: str) -> str:
        if not text:
            return text
        table = self._table
        if not text.isascii() and _extender_re().search(text) is not None:
            return self._by_cluster(text)
        return text.translate(table)

    def _by_cluster(self, text: str) -> str:
        table = self._table
        ext = _extender_re()
        out: list[str] = []
        i, n = 0, len(text)
        while i < n:
            m = ext.search(text, i + 1)
            if m is None:
                out.append(text[i:].translate(table))
                break
            start = m.start() - 1 if text[m.start()] != "\r" else m.start()
            if start > i:
                out.append(text[i:start].translate(table))
            end = _cluster_end(text, start)
            cluster = text[start:end]
            raw = cluster.encode("utf-8", "surrogatepass")
            rep = self.first(raw) if end - start > 1 and len(raw) < 6 else None
            out.append(rep if rep is not None else cluster.translate(table))
            i = end
        return "".join(out)


def _cluster_end(text: str, start: int) -> int:
    """End of the grapheme cluster starting at ``start`` (the rules above)."""
    n = len(text)
    if text[start] == "\r":
        return start + 2 if start + 1 < n and text[start + 1] == "\n" else start + 1
    if _is_control(text[start]):
        return start + 1
    end = start + 1
    while end < n and _extends(text[end]):
        end += 1
    return end


def _is_control(ch: str) -> bool:
    """Grapheme_Cluster_Break=Control (nothing attaches to it)."""
    if ch in "\u200c\u200d":
        return False
    return unicodedata.category(ch) in ("Cc", "Zl", "Zp", "Cf")


def _extends(ch: str) -> bool:
    cp = ord(ch)
    return (
        unicodedata.category(ch).startswith("M")
        or cp in (0x200C, 0x200D)
        or 0xFE00 <= cp <= 0xFE0F
        or 0xE0100 <= cp <= 0xE01EF
    )


class _Table(dict[int, "str | int"]):
    """``str.translate`` table: a character's own rule, filled on first sight."""

    def __init__(self, charsmap: Charsmap) -> None:
        super().__init__()
        self._charsmap = charsmap

    def __missing__(self, cp: int) -> str | int:
        rep = self._charsmap.first(chr(cp).encode("utf-8", "surrogatepass"))
        value: str | int = cp if rep is None else rep
        if len(self) < 1 << 16:
            self[cp] = value
        return value
