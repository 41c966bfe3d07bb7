"""The Keras IMDB word tokenizer, fast enough not to dominate inference.

Conventions of ``keras.datasets.imdb`` and the TensorFlow text-classification
tutorial: lowercase, Keras' default filter characters become spaces (the
apostrophe is kept, so ``don't`` is one word, as in the Keras word index),
split on whitespace, then id = frequency rank + 3 for the ``num_words - 4``
most frequent words (0 pad, 1 start, 2 unknown, 3 unused). Sequences are
``[1] + ids``, truncated 'pre' (the *end* of a long review is kept, as
``pad_sequences`` does by default) and padded 'post' to ``max_length``.

One deliberate difference from ``text_to_word_sequence``: we split on any
whitespace, not only spaces, so a ``\\r`` or a no-break space separates words.

Speed: the whole step is C-level string methods plus one ``map(dict.get)``;
only the last ``max_length`` words of a review are split off and looked up.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from itertools import repeat
from typing import Any

KERAS_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'
#: every non-ASCII character that str.split() treats as whitespace
#: (a literal: computing it scans all of Unicode, too slow for import time; a test checks it)
UNICODE_SPACES = "\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_UNICODE_SPACE = re.compile(f"[{UNICODE_SPACES}]")
#: characters looked at first for long texts (see KerasWordTokenizer.encode)
_TAIL = 1 << 16


class KerasWordTokenizer:
    kind = "keras-words"
    pad_id = 0

    def __init__(
        self,
        words: Sequence[str],
        *,
        max_length: int = 256,
        start_id: int = 1,
        oov_id: int = 2,
        index_from: int = 4,
        filters: str = KERAS_FILTERS,
    ) -> None:
        if max_length < 1:
            raise ValueError("max_length must be >= 1")
        self.max_length = max_length
        self.start_id = start_id
        self.oov_id = oov_id
        self.vocab_size = index_from + len(words)
        self._index = {w: i for i, w in enumerate(words, start=index_from)}
        self._table = str.maketrans({c: " " for c in filters})
        # The fast path works on UTF-8 bytes: a 256-entry translate table and
        # bytes.split() are several times faster than their str versions.
        ascii_filters = "".join(c for c in filters if ord(c) < 128)
        spaces = "".join(chr(c) for c in range(128) if chr(c).isspace() and not bytes([c]).isspace())
        self._btable = bytes.maketrans((ascii_filters + spaces).encode(), b" " * len(ascii_filters + spaces))
        self._bindex = {w.encode("utf-8", "surrogatepass"): i for w, i in self._index.items()}
        self._other_filters = (
            re.compile("[" + re.escape("".join(c for c in filters if ord(c) >= 128)) + "]")
            if any(ord(c) >= 128 for c in filters)
            else None
        )

    @classmethod
    def from_files(
        cls, files: Mapping[str, bytes], config: Mapping[str, Any], max_length: int
    ) -> KerasWordTokenizer:
        words = json.loads(files["vocab"].decode("utf-8"))
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise ValueError("keras-words vocab must be a JSON list of words in rank order")
        return cls(
            words,
            max_length=max_length,
            start_id=int(config.get("start_id", 1)),
            oov_id=int(config.get("oov_id", 2)),
            index_from=int(config.get("index_from", 4)),
            filters=str(config.get("filters", KERAS_FILTERS)),
        )

    def words(self, text: str) -> list[str]:
        return text.lower().translate(self._table).split()

    def encode(self, text: str) -> list[int]:
        """Same result as mapping :meth:`words` through the vocabulary, faster.

        Only the end of a review survives 'pre' truncation, so a long text is
        first tokenized from its last ``_TAIL`` characters; if those already
        hold more than ``max_length`` words, the (possibly cut) first word is
        not among the kept ones and the result is exact. A 10 MB text then
        costs what a 64 KB one does.
        """
        n = self.max_length
        get, oov = self._bindex.get, repeat(self.oov_id)
        if len(text) > _TAIL:
            words = self._words_fast(text[-_TAIL:], n)
            if len(words) > n:  # more than n words in the tail: the cut first word is not kept
                return list(map(get, words[1:], oov))
        words = self._words_fast(text, n)
        if len(words) > n:  # rsplit left everything before the last n words as one element
            return list(map(get, words[1:], oov))
        if len(words) == n:  # 'pre' truncation of [start] + ids drops the start token too
            return list(map(get, words, oov))
        ids = [self.start_id]
        ids.extend(map(get, words, oov))
        return ids

    def _words_fast(self, text: str, last: int) -> list[bytes]:
        """The words of ``text``; past ``last`` of them, the first element is the unsplit rest
        (``rsplit``: the words before the last ``max_length`` are never looked up, so they
        need not become objects)."""
        low = text.lower()
        if not low.isascii():
            # str.split() also splits on non-ASCII whitespace; bytes.split() does not
            low = _UNICODE_SPACE.sub(" ", low)
            if self._other_filters is not None:
                low = self._other_filters.sub(" ", low)
        return low.encode("utf-8", "surrogatepass").translate(self._btable).rsplit(None, last)

    def encode_reference(self, text: str) -> list[int]:
        """The plain definition, kept for tests that check :meth:`encode` against it."""
        words = self.words(text)
        ids = [self.start_id, *(self._index.get(w, self.oov_id) for w in words)]
        return ids[-self.max_length :]

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]
