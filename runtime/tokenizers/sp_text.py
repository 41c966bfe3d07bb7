"""SentencePieceTokenizer's text steps 1-3 (see its module docstring): added and
special tokens, lowercasing, ``AlbertTokenizer.preprocess_text`` and
sentencepiece's normalization, up to the ``▁``-escaped text that the unigram
Viterbi in :mod:`edgeclf.tokenizers.sentencepiece` segments. Stdlib only.
"""

from __future__ import annotations

import re
import struct
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

SPACE = "▁"  # U+2581, sentencepiece's escaped space


class _Charsmap:
    """Longest-match lookup in sentencepiece's precompiled charsmap blob.

    The blob is ``uint32 trie_size`` + a Darts-clone double array (uint32
    units) + NUL-terminated replacement strings. Only consulted for
    multi-character rules; traversal is byte-wise, exactly as the C++ does.
    """

    def __init__(self, blob: bytes) -> None:
        (size,) = struct.unpack_from("<I", blob, 0)
        if size % 4 or 4 + size > len(blob):
            raise ValueError("corrupt precompiled charsmap")
        self._units = struct.unpack_from(f"<{size // 4}I", blob, 4)
        self._pool = blob[4 + size :]

    def match(self, key: bytes) -> tuple[int, str]:
        """(bytes matched, replacement) of the longest rule prefixing ``key``."""
        units = self._units
        n = len(units)
        u = units[0]
        pos = (u >> 10) << ((u & 0x200) >> 6)
        best, value = 0, 0
        for k, b in enumerate(key):
            pos ^= b
            if pos >= n:
                break
            u = units[pos]
            if (u & 0x800000FF) != b:
                break
            pos ^= (u >> 10) << ((u & 0x200) >> 6)
            if (u >> 8) & 1:
                if pos >= n:
                    break
                best, value = k + 1, units[pos] & 0x7FFFFFFF
        if not best:
            return 0, ""
        end = self._pool.find(b"\0", value)
        return best, self._pool[value : end if end >= 0 else len(self._pool)].decode("utf-8", "replace")


class TextSteps:
    """Steps 1-3 as a mixin: ``_segments`` (step 1), ``_preprocess`` (2), ``_sp_normalize`` (3)."""

    do_lower_case: bool
    remove_space: bool
    keep_accents: bool
    add_dummy_prefix: bool
    remove_extra_whitespaces: bool
    _added: dict[str, dict[str, Any]]

    def _init_text_steps(
        self,
        lowercase_protect: Sequence[str] | None,
        single_map: Mapping[str, str] | None,
        multi_second: str,
        charsmap: bytes | None,
    ) -> None:
        protect = (
            lowercase_protect
            if lowercase_protect is not None
            else [c for c, t in self._added.items() if t.get("special", True)]
        )
        self._protect = [p for p in protect if p]
        # transformers: re.sub(r"(tok1|tok2|...)|(.+?)", lower the 2nd group); splitting
        # on the same alternation finds the same tokens, and lowercases the rest in runs
        self._protect_re = (
            re.compile("(" + "|".join(map(re.escape, self._protect)) + ")") if self._protect else None
        )
        self._trie: dict[str, Any] = {}
        for content in self._added:
            node = self._trie
            for ch in content:
                node = node.setdefault(ch, {})
            node[""] = 1

        self._single = dict(single_map or {})
        self._single_table = {ord(k): v for k, v in self._single.items()}
        self._second = frozenset(multi_second)
        self._second_re = (
            re.compile("[" + re.escape("".join(sorted(self._second))) + "]") if self._second else None
        )
        self._charsmap = _Charsmap(charsmap) if charsmap and self._second else None
        # Printable ASCII untouched by the charsmap -> skip it for such text.
        printable = [chr(c) for c in range(0x20, 0x7F)]
        self._ascii_identity = all(self._single.get(c, c) == c for c in printable) and not any(
            c.isascii() for c in self._second
        )

    # ----------------------------------------------- step 1: added/special tokens

    def _lower(self, text: str) -> str:
        # transformers lowercases character by character (regex ``.+?``), which
        # differs from str.lower() only for the context-dependent final sigma.
        return text.lower() if "Σ" not in text else "".join(map(str.lower, text))

    def _segments(self, text: str) -> Iterable[tuple[str, int | None]]:
        """(text, None) pieces to tokenize and ("", id) for added tokens, in order."""
        if self.do_lower_case:
            if self._protect_re is not None and any(p in text for p in self._protect):
                parts = self._protect_re.split(text)  # odd indices: the protected tokens
                text = "".join([p if i % 2 else self._lower(p) for i, p in enumerate(parts)])
            else:
                text = self._lower(text)
        # After lowercasing: "<UNK>" becomes the added token "<unk>", as in transformers.
        if not any(c in text for c in self._added):
            yield text, None
            return
        tokens = self._trie_split(text)
        added = self._added
        for i, tok in enumerate(tokens):
            t = added.get(tok)
            if t is None:
                continue
            left = tokens[i - 1] if i > 0 else None
            right = tokens[i + 1] if i < len(tokens) - 1 else None
            if t.get("rstrip") and right:
                tokens[i + 1] = right.lstrip()
            if t.get("lstrip") and left:
                tokens[i - 1] = left.rstrip()
            if t.get("single_word") and left and left[-1] != " ":
                tokens[i - 1] += tok
                tokens[i] = ""
            elif t.get("single_word") and right and right[0] != " ":
                tokens[i + 1] = tok + tokens[i + 1]
                tokens[i] = ""
        for tok in tokens:
            if not tok:
                continue
            t = added.get(tok)
            if t is not None:
                yield "", int(t["id"])
            else:
                yield tok, None

    def _trie_split(self, text: str) -> list[str]:
        """transformers.tokenization_utils.Trie.split, same algorithm (Apache-2.0)."""
        trie = self._trie
        states: dict[int, dict[str, Any]] = {}
        offsets = [0]
        skip = 0
        n = len(text)
        for current, current_char in enumerate(text):
            if skip and current < skip:
                continue
            to_remove = set()
            reset = False
            for start, pointer in states.items():
                if "" in pointer:
                    for lookstart, looktrie_pointer in states.items():
                        if lookstart > start:
                            break
                        elif lookstart < start:
                            lookahead_index = current + 1
                            end = current + 1
                        else:
                            lookahead_index = current
                            end = current
                        next_char = text[lookahead_index] if lookahead_index < n else None
                        if "" in looktrie_pointer:
                            start = lookstart
                            end = lookahead_index
                            skip = lookahead_index
                        while next_char in looktrie_pointer:
                            looktrie_pointer = looktrie_pointer[next_char]
                            lookahead_index += 1
                            if "" in looktrie_pointer:
                                start = lookstart
                                end = lookahead_index
                                skip = lookahead_index
                            if lookahead_index == n:
                                break
                            next_char = text[lookahead_index]
                    offsets.append(start)
                    offsets.append(end)
                    reset = True
                    break
                elif current_char in pointer:
                    states[start] = pointer[current_char]
                else:
                    to_remove.add(start)
            if reset:
                states = {}
            else:
                for start in to_remove:
                    del states[start]
            if current >= skip and current_char in trie:
                states[current] = trie[current_char]
        for start, pointer in states.items():
            if "" in pointer:
                offsets.append(start)
                offsets.append(n)
                break
        offsets.append(n)
        tokens = []
        start = 0
        for end in offsets:
            if start >= end:
                continue
            tokens.append(text[start:end])
            start = end
        return tokens

    # ------------------------------------------- steps 2-3: text normalization

    def _preprocess(self, text: str) -> str:
        """AlbertTokenizer.preprocess_text."""
        if self.remove_space:
            text = " ".join(text.split())
        text = text.replace("``", '"').replace("''", '"')
        if not self.keep_accents and not text.isascii():
            text = unicodedata.normalize("NFKD", text)
            if not text.isascii():
                combining = unicodedata.combining
                text = "".join([c for c in text if not combining(c)])
        if self.do_lower_case:
            text = text.lower()
        return text

    def _charmap_apply(self, text: str) -> str:
        """The precompiled charsmap, longest match first (Normalizer::NormalizePrefix)."""
        if self._ascii_identity and text.isascii() and text.isprintable():
            return text
        second_re = self._second_re
        if second_re is None or self._charsmap is None or second_re.search(text, 1) is None:
            return text.translate(self._single_table)
        # A rule longer than one character needs text[i + 1] in `second`.
        single, second, cmap = self._single, self._second, self._charsmap
        out: list[str] = []
        i, n = 0, len(text)
        while i < n:
            c = text[i]
            if i + 1 < n and text[i + 1] in second:
                head = text[i : i + 32].encode("utf-8")  # nmt_nfkc's longest rule: 4 characters
                nbytes, rep = cmap.match(head)
                if nbytes:
                    out.append(rep)
                    i += len(head[:nbytes].decode("utf-8", "replace"))
                    continue
            out.append(single.get(c, c))
            i += 1
        return "".join(out)

    def _sp_normalize(self, text: str) -> str:
        """SentencePiece Normalizer::Normalize with escaped spaces (▁)."""
        if not text:
            return ""
        text = self._charmap_apply(text)
        if self.remove_extra_whitespaces:
            if "  " in text or text[:1] == " " or text[-1:] == " ":
                text = " ".join([w for w in text.split(" ") if w])
            if not text:  # (the dummy prefix would be stripped as trailing space)
                return ""
        if self.add_dummy_prefix:
            text = " " + text
        text = text.replace(" ", SPACE)
        if self.remove_extra_whitespaces:
            text = text.rstrip(SPACE)
        return text
