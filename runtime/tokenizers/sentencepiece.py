"""ALBERT's SentencePiece unigram tokenizer in pure Python (stdlib only).

``encode(text)`` returns the ids of transformers' slow ``AlbertTokenizer``
(which the models were trained with), i.e.
``AlbertTokenizer.encode(text, truncation=True, max_length=max_length)``,
without the ``sentencepiece`` or ``transformers`` packages at inference.
The text steps (special tokens, preprocessing, the nmt_nfkc charsmap) are
:mod:`edgeclf.tokenizers.sp_text`; this module is the Viterbi over the piece
scores, the digit-comma re-split and the truncation.

Two things shape the code: Viterbi runs once per distinct word (boundaries
at ``▁`` and, where the vocabulary allows, at letter / non-letter changes),
its results kept in two-generation caches that threads may share; and
sentencepiece adds scores in float32 along the whole text, so words whose
segmentations nearly tie are re-decided with the exact float32 running score
where rounding could flip them. docs/tokenizers.md describes every step, the
exactness argument, the deliberate differences and the measured speed.
"""

from __future__ import annotations

import binascii
import json
import math
import re
import struct
import sys
from array import array
from collections.abc import Mapping, Sequence
from typing import Any

from . import WHOLE_TAIL_CHARS, read_ids
from .sp_text import SPACE, TextSteps

__all__ = ["SentencePieceTokenizer"]

# ModelProto.SentencePiece.Type
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

#: cache entry: (ids, total score, safe bound on |running total|, node scores or None
#: when they are just the scores of ``ids``); see SentencePieceTokenizer._chunk_entry
_Entry = tuple[tuple[int, ...], float, float, "tuple[float, ...] | None"]

_F32 = struct.Struct("<f")
_SURROGATES = re.compile("[\ud800-\udfff]")
# Safety factor on the float32 rounding bound (see _chunk_entry): 2**22, not the
# exact 2**23, so the float64 estimate of the running total never matters.
_SAFE = float(1 << 22)


def _f32(x: float) -> float:
    """Round a float to float32 (sentencepiece's score arithmetic)."""
    return _F32.unpack(_F32.pack(x))[0]


class SentencePieceTokenizer(TextSteps):
    """ALBERT-style SentencePiece unigram tokenizer (see the module docstring)."""

    kind = "sentencepiece-unigram"

    def __init__(
        self,
        pieces: Sequence[str],
        scores: Sequence[float],
        types: Sequence[int],
        *,
        max_length: int = 512,
        cls_id: int = 2,
        sep_id: int = 3,
        pad_id: int = 0,
        unk_id: int = 1,
        added_tokens: Sequence[Mapping[str, Any]] = (),
        lowercase_protect: Sequence[str] | None = None,
        do_lower_case: bool = True,
        remove_space: bool = True,
        keep_accents: bool = False,
        add_dummy_prefix: bool = True,
        remove_extra_whitespaces: bool = True,
        single_map: Mapping[str, str] | None = None,
        multi_second: str = "",
        charsmap: bytes | None = None,
        prefixes: Sequence[str] | None = None,
        cache_size: int = 1 << 15,
    ) -> None:
        if max_length < 2:
            raise ValueError("max_length must be >= 2 ([CLS] and [SEP])")
        if not len(pieces) == len(scores) == len(types):
            raise ValueError("pieces, scores and types differ in length")
        if USER_DEFINED in types or BYTE in types:
            raise ValueError("user-defined and byte-fallback pieces are not supported")
        self.max_length = max_length
        self.cls_id, self.sep_id, self.pad_id, self.unk_id = cls_id, sep_id, pad_id, unk_id
        self.vocab_size = len(pieces)
        self.do_lower_case, self.remove_space, self.keep_accents = do_lower_case, remove_space, keep_accents
        self.add_dummy_prefix = add_dummy_prefix
        self.remove_extra_whitespaces = remove_extra_whitespaces
        self.cache_size = cache_size

        self._init_vocab(pieces, scores, types, unk_id, added_tokens, prefixes)
        #: pre-tokenized words (read_ids): str.split's whitespace becomes a forced ▁ boundary
        self.cut_words = re.compile(r"\S+") if self._word_split and add_dummy_prefix else None
        #: texts read whole when their end is kept: a suffix tokenized alone starts its float32
        #: running score at 0, not at the dropped part's, and may split a tie word the other way
        self.whole_tail_chars = WHOLE_TAIL_CHARS
        # word and chunk caches, two generations each (see _word_miss)
        self._cache: dict[str, _Entry] = {}
        self._cache_old: dict[str, _Entry] = {}
        self._chunks: dict[str, _Entry] = {}
        self._chunks_old: dict[str, _Entry] = {}
        self._chunk_re: re.Pattern[str] | bool | None = False  # False: not decided yet, see _chunking

        self._init_text_steps(lowercase_protect, single_map, multi_second, charsmap)

    def _init_vocab(
        self,
        pieces: Sequence[str],
        scores: Sequence[float],
        types: Sequence[int],
        unk_id: int,
        added_tokens: Sequence[Mapping[str, Any]],
        prefixes: Sequence[str] | None,
    ) -> None:
        """The Viterbi candidates, the token -> id table and whether words can be cached alone."""
        # Viterbi candidates: NORMAL pieces only (UNUSED are skipped, CONTROL and
        # UNKNOWN are not in sentencepiece's trie at all).
        if len(set(pieces)) != len(pieces):
            raise ValueError("duplicate pieces")
        normal = {
            p: (i, float(s))
            for i, (p, s, t) in enumerate(zip(pieces, scores, types, strict=True))
            if t == NORMAL
        }
        if not normal:
            raise ValueError("no normal pieces")
        self._normal = normal
        self._score_of = [float(s) for s in scores]
        self._maxlen = max(map(len, normal))
        self._unk_score = _f32(min([s for _, s in normal.values()]) - 10.0)
        self._unk_node = (unk_id, self._unk_score)
        self._table: dict[str, Any] | None = None  # built on the first cache miss
        self._prefixes = prefixes  # proper prefixes of normal pieces, precomputed by the converter
        # One string of all normal pieces for C-speed checks of the whole vocabulary.
        joined = "\n".join(normal)
        self._joined = joined if joined.count("\n") == len(normal) - 1 else None
        # PieceToId overlaid with the added tokens (convert_tokens_to_ids).
        token_to_id = dict(zip(pieces, range(len(pieces)), strict=True))
        self._added = {str(t["content"]): dict(t) for t in added_tokens if t.get("content")}
        for content, t in self._added.items():
            token_to_id[content] = int(t["id"])
        self._token_to_id = token_to_id
        # Per-word caching needs a forced boundary before every ▁: "▁" must be a
        # piece of its own (so no unknown run crosses it) and no piece may hold ▁
        # after its first character.
        if self._joined is not None:
            inner = joined.count(SPACE) - joined.count("\n" + SPACE) - joined.startswith(SPACE)
        else:
            inner = sum(SPACE in p[1:] for p in normal)
        self._word_split = SPACE in normal and inner == 0

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_files(
        cls, files: Mapping[str, bytes], config: Mapping[str, Any], max_length: int
    ) -> SentencePieceTokenizer:
        """Build from bundle files: ``pieces`` (JSON, see edgeclf.export.spm_convert)
        and ``charsmap`` (the raw precompiled charsmap, absent for identity normalization)."""
        model = json.loads(files["pieces"].decode("utf-8"))
        norm = model.get("normalizer", {})
        if norm.get("escape_whitespaces", True) is not True or norm.get("treat_whitespace_as_suffix"):
            raise ValueError("only escape_whitespaces=true, treat_whitespace_as_suffix=false is supported")
        if "scores_f32le" in model:
            scores = array("f", binascii.a2b_base64(model["scores_f32le"]))
            if sys.byteorder != "little":
                scores.byteswap()
        else:
            scores = model["scores"]
        return cls(
            model["pieces"],
            scores,
            model["types"],
            max_length=max_length,
            cls_id=int(config.get("cls_id", 2)),
            sep_id=int(config.get("sep_id", 3)),
            pad_id=int(config.get("pad_id", 0)),
            unk_id=int(config.get("unk_id", model.get("unk_id", 1))),
            added_tokens=config.get("added_tokens", ()),
            lowercase_protect=config.get("lowercase_protect"),
            do_lower_case=bool(config.get("do_lower_case", True)),
            remove_space=bool(config.get("remove_space", True)),
            keep_accents=bool(config.get("keep_accents", False)),
            add_dummy_prefix=bool(norm.get("add_dummy_prefix", True)),
            remove_extra_whitespaces=bool(norm.get("remove_extra_whitespaces", True)),
            single_map=norm.get("single", {}),
            multi_second=norm.get("multi_second", ""),
            charsmap=files.get("charsmap"),
            prefixes=model.get("prefixes"),
        )

    # --------------------------------------------------------------- public API

    def encode(self, text: str) -> list[int]:
        """``[CLS] ids [SEP]`` truncated to ``max_length`` (AlbertTokenizer.encode)."""
        return self.wrap(read_ids(self, text, self.max_length - 2, "right"))

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def wrap(self, ids: Sequence[int]) -> list[int]:
        """``[CLS] ids [SEP]``."""
        return [self.cls_id, *ids, self.sep_id]

    def tokenize_ids(self, text: str) -> list[int]:
        """Ids without [CLS]/[SEP] and without truncation."""
        return self._ids(text, -1)

    def _ids(self, text: str, limit: int) -> list[int]:
        """Ids of ``text``, stopping once at least ``limit`` exist (``limit < 0``: never)."""
        ids: list[int] = []
        if not text.isascii() and _SURROGATES.search(text):
            text = _SURROGATES.sub("\ufffd", text)
        for segment, token_id in self._segments(text):
            if token_id is not None:
                ids.append(token_id)
            else:
                self._tokenize_into(segment, ids, limit)
            if 0 <= limit <= len(ids):
                break
        return ids

    # ------------------------------------------------ steps 4-5: segmentation

    def _tokenize_into(self, segment: str, ids: list[int], limit: int) -> None:
        """AlbertTokenizer._tokenize(segment) as ids, appended to ``ids``.

        Stops once ``limit`` ids exist (``limit < 0``: never).
        """
        s = self._sp_normalize(self._preprocess(segment))
        if not s:
            return
        if not self._word_split:  # no forced boundaries: one lattice over the whole text
            self._exact_words([s], 0, ids, limit)
            return
        words = s.split(SPACE)
        if words[0]:  # no dummy prefix: the first word has no ▁ and is not cached
            self._exact_words(words, 0, ids, limit)
            return
        get = self._cache.get
        extend = ids.extend
        total = 0.0  # float64 estimate of sentencepiece's float32 running score
        for k, w in enumerate(words):
            if not k:
                continue
            e = get(w)
            if e is None:
                e = self._word_miss(w)
            if -total >= e[2]:
                # A near-tie this deep into the text: carry the exact float32
                # running score from here on.
                self._exact_words(words, k, ids, limit)
                return
            extend(e[0])
            total += e[1]
            if 0 <= limit <= len(ids):
                return

    def _word_miss(self, w: str) -> _Entry:
        """Two-generation cache: when the current dict is full it becomes the old
        one and a new dict starts; entries found in the old one move over. So
        frequent words survive a rotation (a cheap LRU approximation), memory
        stays below 2 x cache_size entries, and every change is one assignment
        (safe without a lock under the GIL)."""
        e = self._cache_old.get(w) or self._word_entry(w)
        if len(self._cache) >= self.cache_size:
            self._cache_old, self._cache = self._cache, {}
        self._cache[w] = e
        return e

    def _exact_words(self, words: list[str], k: int, ids: list[int], limit: int) -> None:
        """Words ``k..`` of a normalized text with sentencepiece's exact float32
        running score; words before ``k`` (already in ``ids``) only feed the score.

        ``words`` is ``s.split("▁")``; a word with index > 0 gets its ▁ back.
        Cached segmentations are reused where the score gap of their decisions is
        safely above float32 rounding at the current running score.
        """
        buf = array("f", [0.0])
        score = 0.0
        get = self._cache.get
        for idx, w in enumerate(words):
            if idx == 0:
                if w:  # whole text (no word split) or a first word without ▁ (no dummy prefix)
                    nodes, score, _ = self._lattice(w, score, True)
                    ids.extend(self._post(self._pieces(w, nodes)))
                continue
            e = get(w) or self._word_miss(w)
            if idx < k:
                for sc in self._node_scores(e):
                    buf[0] = score + sc
                    score = buf[0]
                continue
            if -score < e[2]:
                ids.extend(e[0])
                for sc in self._node_scores(e):
                    buf[0] = score + sc
                    score = buf[0]
            else:
                word = SPACE + w
                nodes, score, _ = self._lattice(word, score, True)
                ids.extend(self._post(self._pieces(word, nodes)))
            if 0 <= limit <= len(ids):
                break

    def _ensure_table(self) -> dict[str, Any]:
        """piece -> (id, score), other prefixes of pieces -> 0 (stop when absent)."""
        table = self._table
        if table is None:
            prefixes = self._prefixes
            if prefixes is None:  # 30 ms for 16k pieces; the converter stores them
                prefixes = (p[:k] for p in self._normal for k in range(1, len(p)))
            table = dict.fromkeys(prefixes, 0)
            table.update(self._normal)
            self._table = table
        return table

    def _lattice(
        self, w: str, base: float, exact: bool
    ) -> tuple[list[tuple[int, int, int, float]], float, float]:
        """Best path through ``w`` starting from the running score ``base``.

        Same visiting order and strict ``>`` as sentencepiece's EncodeOptimized,
        so ties go the same way. Returns (nodes as (start, end, id, score),
        final score, margin): ``margin`` is the smallest |candidate - incumbent|
        over all comparisons, in float64 (``exact=False``; meaningless with
        ``exact=True``, where every sum is rounded to float32 as in
        sentencepiece, which is what makes that result exact at any ``base``).
        A candidate for position i+1 is either the one-character piece at i or
        the unknown node, and longer pieces from i end beyond i+1, so taking the
        one-character case first does not change the order of comparisons at
        any position.
        """
        get = self._ensure_table().get
        unk = self._unk_node
        n = len(w)
        best = [-math.inf] * (n + 1)  # -inf: the first candidate always wins
        best[0] = base
        back = [0] * (n + 1)
        node = [unk] * (n + 1)
        margin = math.inf
        buf = array("f", [0.0])
        for i in range(n):
            b = best[i]
            e = get(w[i])
            j = i + 1
            s = e[1] if e else unk[1]
            if exact:
                buf[0] = s + b
                c = buf[0]
            else:
                c = s + b
            d = c - best[j]
            if d > 0:
                best[j], back[j], node[j] = c, i, e or unk
            else:
                d = -d
            if d < margin:
                margin = d
            if e is None:
                continue
            j += 1
            while j <= n:
                e = get(w[i:j])
                if e is None:
                    break
                if e:
                    if exact:
                        buf[0] = e[1] + b
                        c = buf[0]
                    else:
                        c = e[1] + b
                    d = c - best[j]
                    if d > 0:
                        best[j], back[j], node[j] = c, i, e
                    else:
                        d = -d
                    if d < margin:
                        margin = d
                j += 1
        nodes = []
        j = n
        while j > 0:
            i = back[j]
            pid, score = node[j]
            nodes.append((i, j, pid, score))
            j = i
        nodes.reverse()
        return nodes, best[n], margin

    def _pieces(self, w: str, nodes: list[tuple[int, int, int, float]]) -> list[str]:
        """Piece strings with runs of unknown nodes merged (PopulateSentencePieceText)."""
        unk_id = self.unk_id
        out: list[str] = []
        prev_unk = False
        for i, j, pid, _ in nodes:
            is_unk = pid == unk_id
            if is_unk and prev_unk:
                out[-1] += w[i:j]
            else:
                out.append(w[i:j])
            prev_unk = is_unk
        return out

    def _post(self, pieces: list[str]) -> list[int]:
        """AlbertTokenizer._tokenize's digit-comma rule, then convert_tokens_to_ids."""
        t2i, unk = self._token_to_id, self.unk_id
        out: list[int] = []
        for piece in pieces:
            if len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit():
                cur = self._sp_encode_pieces(piece[:-1].replace(SPACE, ""))
                if cur and piece[0] != SPACE and cur[0][0] == SPACE:
                    if len(cur[0]) == 1:
                        cur = cur[1:]
                    else:
                        cur[0] = cur[0][1:]
                cur.append(piece[-1])
                out.extend(t2i.get(p, unk) for p in cur)
            else:
                out.append(t2i.get(piece, unk))
        return out

    def _sp_encode_pieces(self, text: str) -> list[str]:
        """sentencepiece EncodeAsPieces(text): normalize + exact Viterbi, no ALBERT steps."""
        s = self._sp_normalize(text)
        if not s:
            return []
        nodes, _, _ = self._lattice(s, 0.0, True)
        return self._pieces(s, nodes)

    def _word_entry(self, w: str) -> _Entry:
        """Cache entry for ``▁w``: (ids, total score, safe bound, node scores).

        Built from the word's letter / non-letter chunks when the vocabulary
        allows it (see _chunking): IMDB's ``film.<br`` and ``/>the`` then
        reuse ``▁film``, ``.<``, ``br``, ``/>`` and ``the``. A chunk at offset
        ``r`` (score of the chunks before it) is safe while |running total| +
        |r| stays below its own bound.
        """
        word = SPACE + w
        chunk_re = self._chunk_re if self._chunk_re is not False else self._chunking()
        chunks = chunk_re.findall(word) if chunk_re is not None else None
        if not chunks or len(chunks) == 1:
            return self._chunk_entry(word)
        get = self._chunks.get
        ids: list[int] = []
        entries = []
        total = 0.0
        limit = math.inf
        for c in chunks:
            e = get(c)
            if e is None:
                e = self._chunks_old.get(c) or self._chunk_entry(c)
                if len(self._chunks) >= self.cache_size:
                    self._chunks_old, self._chunks = self._chunks, {}
                self._chunks[c] = e
            if e[2] + total < limit:
                limit = e[2] + total
            ids.extend(e[0])
            entries.append(e)
            total += e[1]
        if all(e[3] is None for e in entries):
            return tuple(ids), total, limit, None
        return tuple(ids), total, limit, tuple([s for e in entries for s in self._node_scores(e)])

    def _chunk_entry(self, word: str) -> _Entry:
        """(ids, total score, safe bound, node scores) of a text between forced boundaries.

        float32 rounding moves a path score by at most one half-ulp of the
        magnitude M per addition, so by n * M * 2**-24 over n characters; two
        candidates compare as in float64 while their gap (``margin``) exceeds
        twice that. M <= |running total| + n * |unk score|, so the float64
        result is exact while |running total| stays below the bound returned
        here (with a factor-2 safety, see _SAFE). Exact ties (``e`` + ``ee`` vs
        ``ee`` + ``e``) get a negative bound: always decided in float32.
        """
        nodes, total, margin = self._lattice(word, 0.0, False)
        n = len(word)
        ids = tuple(self._post(self._pieces(word, nodes)))
        limit = margin * _SAFE / n + n * self._unk_score if margin != math.inf else math.inf
        if ids == tuple([nd[2] for nd in nodes]) and self.unk_id not in ids:
            return ids, total, limit, None  # node scores = scores of the ids: not stored
        return ids, total, limit, tuple([nd[3] for nd in nodes])

    def _node_scores(self, e: _Entry) -> Sequence[float]:
        """The Viterbi node scores behind a cache entry, in order."""
        if e[3] is not None:
            return e[3]
        score_of = self._score_of
        return [score_of[i] for i in e[0]]

    def _chunking(self) -> re.Pattern[str] | None:
        """Regex cutting a ``▁word`` at letter / non-letter changes, if that is safe.

        Safe when no piece mixes [a-z] with other characters (after its
        leading ▁): then no piece spans such a change, so every path has a
        boundary there; and every letter is a piece, so no run of unknown
        characters (merged into one ``<unk>``) can cross a chunk border.
        """
        ok = all(c in self._normal for c in "abcdefghijklmnopqrstuvwxyz")
        if ok and self._joined is not None:
            bare = self._joined.replace("\n" + SPACE, "\n").removeprefix(SPACE)
            ok = re.search("[a-z][^a-z\n]|[^a-z\n][a-z]", bare) is None
        elif ok:
            mixed = re.compile("[a-z][^a-z]|[^a-z][a-z]")
            ok = not any(mixed.search(p, 1 if p[0] == SPACE else 0) for p in self._normal)
        self._chunk_re = re.compile(f"{SPACE}?[a-z]+|{SPACE}?[^a-z{SPACE}]+|{SPACE}") if ok else None
        return self._chunk_re
