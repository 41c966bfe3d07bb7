"""SentencePiece unigram from tokenizer.json (``"model": {"type": "Unigram"}``), as the Rust library runs it.

XLM-RoBERTa, DeBERTa-v2/v3 and ALBERT fast tokenizers. This is the library's
Viterbi (``Unigram::encode_optimized``), which differs from SentencePiece's
own (:mod:`edgeclf.tokenizers.sentencepiece`, kept for the ``spiece.model``
path) in the details that decide ties and unknowns:

- scores add up in float64, and a candidate replaces the best path into a
  position only when strictly better, candidates visited by start position,
  then by length (shortest first);
- *every* vocab entry is a candidate, special pieces included (their score
  is usually 0);
- a character no piece starts with costs ``min_score - 10`` as ``unk``, and
  consecutive unknowns fuse into one ``unk`` id.

Words are cached (bounded); a word costs O(length x longest piece) dict
lookups, so a 100,000-character word takes a fraction of a second.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["Unigram"]

CACHE_SIZE = 1 << 16
UNK_PENALTY = 10.0


class Unigram:
    def __init__(self, spec: Mapping[str, Any], cache_size: int = CACHE_SIZE) -> None:
        vocab = spec["vocab"]
        if not vocab:
            raise ValueError("tokenizer.json Unigram: empty vocab")
        if spec.get("byte_fallback"):
            raise ValueError("tokenizer.json Unigram with byte_fallback is not supported")
        self.ids: dict[str, int] = {}
        self.scores: dict[str, float] = {}
        for i, (piece, score) in enumerate(vocab):
            self.ids[piece] = i
            self.scores[piece] = float(score)
        # the library's trie maps each piece to its last id, and scores by that id
        self.scores = {p: float(vocab[i][1]) for p, i in self.ids.items()}
        self.unk_id = spec.get("unk_id")
        self.unk_score = min(float(s) for _, s in vocab) - UNK_PENALTY
        self.max_len = max(len(p) for p in self.ids)
        self._cache: dict[str, tuple[int, ...]] = {}
        self._cache_size = cache_size

    def word_ids(self, word: str) -> tuple[int, ...]:
        ids = self._cache.get(word)
        if ids is None:
            ids = tuple(self._viterbi(word))
            if len(self._cache) >= self._cache_size:
                self._cache = {}
            self._cache[word] = ids
        return ids

    def _viterbi(self, text: str) -> list[int]:
        n = len(text)
        if not n:
            return []
        scores, unk_score, max_len = self.scores, self.unk_score, self.max_len
        best = [0.0] * (n + 1)
        start_of: list[int] = [-1] * (n + 1)
        piece_of: list[str | None] = [None] * (n + 1)
        for i in range(n):
            here = best[i]
            single = False
            for end in range(i + 1, min(n, i + max_len) + 1):
                piece = text[i:end]
                score = scores.get(piece)
                if score is None:
                    continue
                if end == i + 1:
                    single = True
                cand = score + here
                if start_of[end] < 0 or cand > best[end]:
                    best[end], start_of[end], piece_of[end] = cand, i, piece
            if not single:
                cand = unk_score + here
                if start_of[i + 1] < 0 or cand > best[i + 1]:
                    if self.unk_id is None:
                        raise ValueError("tokenizer.json Unigram: unknown character and no unk_id")
                    best[i + 1], start_of[i + 1], piece_of[i + 1] = cand, i, None
        out: list[int] = []
        end = n
        unk_run = False
        ids = self.ids
        while end > 0:
            piece = piece_of[end]
            if piece is None or ids[piece] == self.unk_id:  # unknowns fuse into one unk
                if not unk_run:
                    out.append(self.unk_id)  # type: ignore[arg-type]
                unk_run = True
            else:
                out.append(ids[piece])
                unk_run = False
            end = start_of[end]
        out.reverse()
        return out
