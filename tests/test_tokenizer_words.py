from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeclf.tokenizers.words import KerasWordTokenizer


@pytest.fixture(scope="module")
def tok(keras_bundle):
    words = json.loads((keras_bundle / "vocab.json").read_text(encoding="utf-8"))
    return KerasWordTokenizer(words, max_length=256)


def test_keras_conventions(tok):
    # Keras word index ranks: the=1, and=2, a=3, br=7 -> ids rank+3; 1 = start
    assert tok.encode("The and a") == [1, 4, 5, 6]
    assert tok.encode("great<br />movie") == [1, tok.encode("great")[1], 10, tok.encode("movie")[1]]


def test_filters_lowercase_and_apostrophes(tok):
    assert tok.encode("DON'T!!! (Really.)") == tok.encode("don't really")
    assert tok.words("Don't stop, it's\tFINE\r\nok") == ["don't", "stop", "it's", "fine", "ok"]


def test_unknown_words_map_to_oov(tok):
    assert tok.encode("zzxqvw-unknownish") == [1, 2, 2]
    assert tok.encode("") == [1]


def test_pre_truncation_keeps_the_end(tok):
    text = " ".join(["bad"] * 300 + ["the", "and"])
    ids = tok.encode(text)
    assert len(ids) == 256
    assert ids[-2:] == [4, 5]
    assert 1 not in ids  # the start token is truncated away, as pad_sequences does
    assert len(tok.encode(" ".join(["bad"] * 255))) == 256
    assert tok.encode(" ".join(["bad"] * 255))[0] == 1


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=600))
def test_any_text_gives_valid_ids(tok, text):
    ids = tok.encode(text)
    assert 1 <= len(ids) <= 256
    assert all(0 < i < tok.vocab_size and i != 3 for i in ids)


def test_unicode_space_literal_is_complete():
    import sys

    from edgeclf.tokenizers.words import _UNICODE_SPACE

    computed = "".join(chr(c) for c in range(128, sys.maxunicode + 1) if chr(c).isspace())
    assert _UNICODE_SPACE.sub("", computed) == ""
    assert all(not _UNICODE_SPACE.match(chr(c)) for c in range(128, 0x3001) if not chr(c).isspace())


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet=st.characters(), max_size=400))
def test_fast_path_equals_the_plain_definition(tok, text):
    assert tok.encode(text) == tok.encode_reference(text)


def test_fast_path_on_tricky_whitespace_and_filters(tok):
    for text in [
        "a\x1cb\x1fc",
        "good\xa0movie",
        "x\u3000y\u2028z",
        "don't\r\nstop",
        "\udcff bad",
        "İstanbul ÉTÉ",
    ]:
        assert tok.encode(text) == tok.encode_reference(text), text


@pytest.mark.shared_data
def test_fast_path_on_all_imdb_test_reviews(tok, shared):
    from edgeclf.export.data import load_imdb

    texts, _ = load_imdb("test", shared / "imdb")
    assert all(tok.encode(t) == tok.encode_reference(t) for t in texts)


def test_long_texts_are_tokenized_from_their_tail_exactly(tok):
    import random

    rng = random.Random(0)
    vocab = ["good", "bad", "film", "x" * 70_000, "plot", "don't", "\xa0", "!!", "é"]
    for _ in range(30):
        text = " ".join(rng.choice(vocab) for _ in range(rng.choice([10, 300, 20_000])))
        assert tok.encode(text) == tok.encode_reference(text)
    assert tok.encode("y" * 100_000 + " good") == tok.encode_reference("y" * 100_000 + " good")
