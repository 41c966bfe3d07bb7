"""Tokenizer fuzzing over all of Unicode, lone surrogates included.

Every tokenizer in ``hostile.TOKENIZERS`` (keras-words, wordpiece,
sentencepiece-unigram) must, for any Python ``str``: never raise, return ids
inside its vocabulary, and never more than ``max_length`` of them. Entries
whose module does not exist yet, or that have no files to build from, skip
with the reason; they join by themselves once they do.

Two tests per tokenizer:

- ``test_generated_text``: ``$EDGECLF_FUZZ_EXAMPLES`` strings (default
  100,000) built with numpy from fixed seeds (tests/hostile.py
  ``fuzz_texts``), fast enough for every CI run. Nightly:
  ``EDGECLF_FUZZ_EXAMPLES=5000000 python -m pytest tests/test_reliability_tokenizers.py``.
- ``test_hypothesis_text``: hypothesis strings over the full code point
  range plus special characters (1% of the count, at least 200), which
  shrink a failure to a minimal string.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from . import hostile

N = hostile.fuzz_examples()
KINDS = [kind for kind, _, _ in hostile.TOKENIZERS]
_BUILT: dict[str, Any] = {}


@pytest.fixture(scope="module", params=KINDS)
def tok(request: pytest.FixtureRequest) -> Any:
    kind = request.param
    if kind not in _BUILT:
        try:
            _BUILT[kind] = hostile.make_tokenizer(kind)
        except hostile.Unavailable as exc:
            _BUILT[kind] = exc
    if isinstance(_BUILT[kind], hostile.Unavailable):
        pytest.skip(f"{kind}: {_BUILT[kind]}")
    return _BUILT[kind]


SEED = 20_240_601


@functools.lru_cache(maxsize=1)
def _texts() -> list[str]:
    return list(hostile.fuzz_texts(N, seed=SEED))


def test_generated_text(tok: Any) -> None:
    seed = SEED
    # the same strings for every tokenizer: generated once when they fit in memory (CI), streamed nightly
    texts = _texts() if N <= 200_000 else hostile.fuzz_texts(N, seed=seed)
    count, failures = hostile.fuzz_tokenizer(tok, texts)
    assert count == N
    assert failures == [], f"{getattr(tok, 'kind', tok)}: reproduce with fuzz_texts({N}, seed={seed})"


_chars = st.one_of(
    st.characters(exclude_categories=()),  # every code point, surrogates included
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=()),  # lone surrogates
    st.sampled_from(hostile.SPECIALS),
)


@settings(
    max_examples=max(200, N // 100),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(parts=st.lists(_chars, max_size=300))
def test_hypothesis_text(tok: Any, parts: list[str]) -> None:
    text = "".join(parts)
    ids = tok.encode(text)
    assert hostile.check_encoding(tok, text, ids, hostile.vocab_bound(tok)) is None
    assert tok.encode_batch([text, text]) == [ids, ids]


def test_surrogates_and_specials_explicitly(tok: Any) -> None:
    bound = hostile.vocab_bound(tok)
    for text in [
        "\ud800",
        "\udfff",
        "a\udc80b",
        "\ud83d\ude00",
        "\U0010ffff" * 600,
        "",
        " " * 10_000,
        *hostile.SPECIALS,
    ]:
        assert hostile.check_encoding(tok, text, tok.encode(text), bound) is None, repr(text)


def test_fuzz_strings_cover_the_whole_range() -> None:
    """The generator itself: surrogates, astral code points, long texts, reproducible."""
    texts = list(hostile.fuzz_texts(20_000, seed=1))
    assert texts == list(hostile.fuzz_texts(20_000, seed=1))
    joined = "".join(texts)
    assert any("\ud800" <= c <= "\udfff" for c in joined)
    assert max(map(ord, joined)) > 0x100000
    assert max(map(len, texts)) > 1000 and "" in texts


class _Broken:
    """A tokenizer with the bugs the fuzzer must catch: UTF-8 encoding (raises on
    lone surrogates), no truncation, ids past the vocabulary."""

    kind = "broken"
    max_length = 64
    vocab_size = 1000
    pad_id = 0

    def encode(self, text: str) -> list[int]:
        return [b for b in text.encode("utf-8")] + [1000] * (text.count("!"))

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]


def test_the_fuzzer_catches_a_broken_tokenizer() -> None:
    count, failures = hostile.fuzz_tokenizer(_Broken(), hostile.fuzz_texts(5000, seed=3))
    assert count == 5000
    text = " ".join(failures)
    assert "UnicodeEncodeError" in text and "> max_length" in text and "outside [0, 1000)" in text
