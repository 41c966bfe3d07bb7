"""Byte-pair encoding (``"model": {"type": "BPE"}`` of tokenizer.json).

RoBERTa, ModernBERT and GPT-2-style vocabularies: the ByteLevel pre-tokenizer
(:mod:`edgeclf.tokenizers.hf_text`) splits text by GPT-2's regex and maps each
piece's UTF-8 bytes to 256 printable characters (:func:`bytes_to_unicode`);
BPE then merges the characters of each word by rank.

Merging follows the library's algorithm: a heap of (rank, position) pairs,
the lowest rank first and the leftmost among equal ranks, so a word of
100,000 characters costs O(n log n), not the O(n^2) of the textbook loop.
Results are cached per word (bounded), as words repeat in real text.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

__all__ = ["BPE", "bytes_to_unicode"]

CACHE_SIZE = 1 << 16


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs, strict=False)}


class BPE:
    """``word -> ids`` by ranked merges (``vocab``, ``merges`` of a tokenizer.json BPE model)."""

    def __init__(self, spec: Mapping[str, Any], cache_size: int = CACHE_SIZE) -> None:
        if spec.get("dropout") not in (None, 0, 0.0):
            raise ValueError("tokenizer.json BPE with dropout is not supported (not deterministic)")
        self.vocab: dict[str, int] = {str(k): int(v) for k, v in spec["vocab"].items()}
        self.prefix = spec.get("continuing_subword_prefix") or ""
        self.suffix = spec.get("end_of_word_suffix") or ""
        unk = spec.get("unk_token")
        self.unk_id = self.vocab.get(unk) if unk is not None else None
        if unk is not None and self.unk_id is None:
            raise ValueError(f"tokenizer.json BPE: unk_token {unk!r} is not in the vocab")
        self.fuse_unk = bool(spec.get("fuse_unk", False))
        self.byte_fallback = bool(spec.get("byte_fallback", False))
        self.ignore_merges = bool(spec.get("ignore_merges", False))
        self.merges = self._merges(spec.get("merges") or [])
        self._cache: dict[str, tuple[int, ...]] = {}
        self._cache_size = cache_size

    def _merges(self, merges: list[Any]) -> dict[tuple[int, int], tuple[int, int]]:
        """(left id, right id) -> (rank, merged id), as the library builds it."""
        out: dict[tuple[int, int], tuple[int, int]] = {}
        vocab, cut = self.vocab, len(self.prefix)
        for rank, merge in enumerate(merges):
            a, b = merge.split(" ", 1) if isinstance(merge, str) else merge
            try:
                pair = (vocab[a], vocab[b])
                new = vocab[a + b[cut:]]
            except KeyError as exc:
                raise ValueError(f"tokenizer.json BPE merge {merge!r}: {exc} is not in the vocab") from None
            out[pair] = (rank, new)
        return out

    def word_ids(self, word: str) -> tuple[int, ...]:
        ids = self._cache.get(word)
        if ids is None:
            ids = self._encode(word)
            if len(self._cache) >= self._cache_size:
                self._cache = {}
            self._cache[word] = ids
        return ids

    def _encode(self, word: str) -> tuple[int, ...]:
        if self.ignore_merges and word in self.vocab:
            return (self.vocab[word],)
        return tuple(self._merge(self._symbols(word)))

    def _symbols(self, word: str) -> list[int]:
        """One symbol per character (prefix / suffix added), unknowns as bytes or (fused) unk."""
        vocab = self.vocab
        syms: list[int] = []
        pending_unk = False
        last = len(word) - 1
        for i, ch in enumerate(word):
            s = ch
            if i > 0 and self.prefix:
                s = self.prefix + s
            if i == last and self.suffix:
                s += self.suffix
            idx = vocab.get(s)
            if idx is not None:
                if pending_unk:
                    syms.append(self.unk_id)  # type: ignore[arg-type]
                    pending_unk = False
                syms.append(idx)
                continue
            if self.byte_fallback:
                codes = [vocab.get(f"<0x{b:02X}>") for b in s.encode("utf-8")]
                if all(c is not None for c in codes):
                    if pending_unk:
                        syms.append(self.unk_id)  # type: ignore[arg-type]
                        pending_unk = False
                    syms.extend(codes)  # type: ignore[arg-type]
                    continue
            if self.unk_id is not None:
                if pending_unk and not self.fuse_unk:
                    syms.append(self.unk_id)
                pending_unk = True
        if pending_unk:
            syms.append(self.unk_id)  # type: ignore[arg-type]
        return syms

    def _merge(self, syms: list[int]) -> list[int]:
        merges = self.merges
        n = len(syms)
        if n < 2:
            return syms
        nxt = [*list(range(1, n)), -1]
        prv = list(range(-1, n - 1))
        alive = [True] * n
        heap = []
        for i in range(n - 1):
            m = merges.get((syms[i], syms[i + 1]))
            if m is not None:
                heap.append((m[0], i, m[1]))
        heapq.heapify(heap)
        while heap:
            _rank, pos, new = heapq.heappop(heap)
            right = nxt[pos]
            if not alive[pos] or right < 0:
                continue
            m = merges.get((syms[pos], syms[right]))
            if m is None or m[1] != new:
                continue  # an expired entry: one of its symbols merged since
            syms[pos] = new
            alive[right] = False
            after = nxt[right]
            nxt[pos] = after
            if after >= 0:
                prv[after] = pos
            before = prv[pos]
            if before >= 0:
                m = merges.get((syms[before], new))
                if m is not None:
                    heapq.heappush(heap, (m[0], before, m[1]))
            if after >= 0:
                m = merges.get((new, syms[after]))
                if m is not None:
                    heapq.heappush(heap, (m[0], pos, m[1]))
        return [s for s, a in zip(syms, alive, strict=False) if a]
