"""SentencePiece unigram shim == transformers' slow ``AlbertTokenizer``, id for id.

The model is the project's real one (tests/data/albert/spiece.model: 16,000
pieces trained on IMDB, ALBERT ids), converted by ``edgeclf.export.spm_convert``
into the runtime's files; the reference is ``AlbertTokenizer`` on the same
``spiece.model``. Both need the ``[export]`` extra (sentencepiece,
transformers); without it these tests skip. The full IMDB test set needs
``../shared/data`` and is ``slow``.
"""

from __future__ import annotations

import math
import pickle
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeclf.tokenizers import build
from edgeclf.tokenizers.sentencepiece import SentencePieceTokenizer

from .conftest import DATA, need

SPIECE = DATA / "albert" / "spiece.model"
VOCAB_SIZE = 16000
CLS, SEP, UNK, MASK = 2, 3, 1, 4

#: review-like text to push the running score far from 0 (float32 ties)
FILLER = "this movie was not very good but the acting of the main actor was great and i liked it. "
#: words whose best segmentations tie exactly (same pieces in another order)
TIE_WORDS = [
    "******************spoiler********************spoiler********************",
    "aaaaaaaaaaaahhhhhhhhhhhhhh!!!!!!!!!!!!!!!!",
    "down!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
    '"zzzzzzzzzzzzzzzzzz"!',
    "reeeeeeaaaaaaalllly",
]

EDGE_CASES: list[str] = [
    "",
    " ",
    "   \t\n\r\n  ",
    "\u3000\xa0\u2028\u2029\x1c\x1d\x85",
    "a",
    "This movie was GREAT, 10/10!",
    "  leading and trailing whitespace  ",
    "tabs\tand\nnew\r\nlines\x0bvertical\x0cfeed and\xa0NBSP\u202fnarrow\u3000ideographic",
    # `` and '' quotes (ALBERT folds them to ")
    "He said ``hello'' and 'bye' and \"ok\" ``` '''' `single` ''",
    "''''''``````",
    # digits with commas (AlbertTokenizer._tokenize's re-split)
    "1,000,000 and 9,9 and 12, 3, x9, a1,b 1995, 2,5 ,9, 10,000,",
    "٣,٤ ५, ①, ²,",
    # accents / combining marks
    "Café naïve résumé ÉCOLE Ångström façade coöperate",
    "e\u0301 combining vs é, A\u030a vs Å, a\u0301\u0301\u0301, \u0301\u0308 alone",
    # cased specials and contexts
    "ΟΔΟΣ ΟΔΥΣΣΕΥΣ Σ σ ς 𝚺𝚺 ΣΑ",
    "İstanbul ıi ß ẞ ﬁ ﬂ ǅ Kelvin\u212a Ω\u2126",
    # CJK, Hangul (nmt_nfkc recomposes jamo), other scripts
    "日本語のテキスト カタカナ ひらがな 中文字",
    "한국어 텍스트 \u1112\u1161\u11ab\u1100\u1173\u11af 조합",
    "Привет мир! Ελληνικά العربية עברית ไทย",
    # emoji, symbols
    "emoji 😀😀 👍🏽 \U0001f468\u200d\U0001f469 🇨🇳 ☃ ♥ ❤️",
    "fractions ½ ¼ ¾ ① ② ™ © ® ℃ № ㎏ ㍿",
    # full-width and compatibility characters
    "ＡＢＣ全角ａｂｃ１２３，！？（）【】",
    "ｶﾀｶﾅ halfwidth ﾟﾞ",
    # control characters
    "\x00",
    "a\x00b\x00\x00c",
    "control\x01\x02\x03\x07\x08\x0e\x1f\x7f\x80\x8f\x9f chars",
    "zero\u200bwidth\u200cjoin\u200dx\u2060y\ufeffz\u00adsoft",
    "\ufffd\ufffe\uffff \U0010ffff \U000f0000",
    # sentencepiece's space symbol in the input
    "▁",
    "▁▁a▁ ▁b▁",
    "a ▁ b",
    # special tokens inside text ([MASK] is lstrip=True)
    "[MASK]",
    "a [MASK] b",
    "a[MASK]b",
    "a   [MASK]   b",
    "\n[MASK]\n",
    "[MASK][MASK] [MASK]",
    "[CLS] x [SEP] y [CLS]",
    "[CLS]x[SEP]",
    "<unk> <pad> <UNK> <Pad> [mask] [Mask] [cls]",
    "[MASK[MASK]] [MA\x00SK] [[CLS]] <<unk>>",
    "ΣΣ [MASK] ΟΔΟΣ",
    "``[MASK]'' 9,[SEP]9,",
    # html and IMDB-isms
    "Great film!<br /><br />The end.<br/>",
    "******************spoiler******************** --- !!! ??? ...",
    # long words and runs
    "a" * 300,
    "supercalifragilisticexpialidocious" * 20,
    "x" * 2000 + " end",
    "9," * 200,
]


@pytest.fixture(scope="module")
def reference():
    need("sentencepiece")
    need("transformers")
    from transformers import AlbertTokenizer

    return AlbertTokenizer(str(SPIECE))


@pytest.fixture(scope="module")
def converted(tmp_path_factory, reference) -> tuple[Path, dict[str, str], dict]:
    from edgeclf.export.spm_convert import convert, reference_settings

    out = tmp_path_factory.mktemp("spm")
    files, config = convert(SPIECE, out, **reference_settings(reference))
    return out, files, config


def make(converted, max_length: int = 512, **kwargs) -> SentencePieceTokenizer:
    out, files, config = converted
    data = {k: (out / v).read_bytes() for k, v in files.items()}
    tok = SentencePieceTokenizer.from_files(data, config, max_length)
    for k, v in kwargs.items():
        setattr(tok, k, v)
    return tok


@pytest.fixture(scope="module")
def shim(converted) -> SentencePieceTokenizer:
    return make(converted)


def ref_ids(reference, text: str, max_length: int | None = 512) -> list[int]:
    if max_length is None:
        return reference.encode(text, add_special_tokens=False)
    return reference.encode(text, truncation=True, max_length=max_length)


# --------------------------------------------------------------------- files


def test_converted_files_and_config(converted):
    out, files, config = converted
    assert set(files) == {"pieces", "charsmap"}
    assert (out / files["charsmap"]).stat().st_size > 100_000  # the nmt_nfkc blob
    assert (out / files["pieces"]).stat().st_size < 1_000_000
    assert (config["cls_id"], config["sep_id"], config["pad_id"], config["unk_id"]) == (CLS, SEP, 0, UNK)
    mask = next(t for t in config["added_tokens"] if t["content"] == "[MASK]")
    assert mask["id"] == MASK and mask["lstrip"] and not mask["rstrip"]


def test_build_through_registry(converted):
    out, files, config = converted
    data = {k: (out / v).read_bytes() for k, v in files.items()}
    tok = build("sentencepiece-unigram", data, config, 128)
    assert isinstance(tok, SentencePieceTokenizer)
    assert (tok.pad_id, tok.max_length, tok.vocab_size) == (0, 128, VOCAB_SIZE)
    assert tok.encode("") == [CLS, SEP]
    assert tok.encode_batch(["", "a [MASK]"])[1][-2:] == [MASK, SEP]


# ----------------------------------------------------------------- exactness


@pytest.mark.parametrize("text", EDGE_CASES, ids=range(len(EDGE_CASES)))
def test_edge_cases_match_reference(shim, reference, text):
    assert shim.tokenize_ids(text) == ref_ids(reference, text, None)
    assert shim.encode(text) == ref_ids(reference, text)


@pytest.mark.parametrize("max_length", [3, 5, 16, 64])
def test_truncation_keeps_cls_and_sep(converted, reference, max_length):
    tok = make(converted, max_length)
    for text in [FILLER * 20, "9,9," * 40, "[MASK] " * 50, "", "a"]:
        ids = tok.encode(text)
        assert ids == ref_ids(reference, text, max_length)
        assert ids[0] == CLS and ids[-1] == SEP and len(ids) <= max_length


@pytest.mark.parametrize("max_length", [2, 3, 5, 16, 64, 256])
def test_left_truncation_keeps_the_end_like_transformers(converted, max_length):
    """``truncation_side: left`` in the config == ``AlbertTokenizer(..., truncation_side="left")``."""
    from transformers import AlbertTokenizer

    ref = AlbertTokenizer(str(SPIECE), truncation_side="left")
    out, files, config = converted
    data = {k: (out / v).read_bytes() for k, v in files.items()}
    tok = build("sentencepiece-unigram", data, {**config, "truncation_side": "left"}, max_length)
    assert (tok.max_length, tok.pad_id, tok.truncation_side) == (max_length, 0, "left")
    # the tie words end long texts: their split depends on the float32 running score of all before
    texts = [FILLER * 20 + " ".join(TIE_WORDS), "9,9," * 40, "[MASK] " * 50, FILLER + "[CLS] end", "", "a"]
    for text in texts:
        ids = tok.encode(text)
        want = ref.encode(text, truncation=True, max_length=max_length) if max_length > 2 else [CLS, SEP]
        assert ids == want, text[:40]
        assert ids[0] == CLS and ids[-1] == SEP and len(ids) <= max_length
    if max_length >= 5:
        long = tok.encode(FILLER * 20 + "the very last words")
        assert long[-4:-1] == tok.inner.tokenize_ids("the very last words")[-3:]  # the end survives
    assert tok.encode_batch(texts[:2]) == [tok.encode(t) for t in texts[:2]]
    assert pickle.loads(pickle.dumps(tok)).encode(texts[0]) == tok.encode(texts[0])


def test_truncation_side_is_checked(converted):
    out, files, config = converted
    data = {k: (out / v).read_bytes() for k, v in files.items()}
    with pytest.raises(ValueError, match="truncation_side must be one of"):
        build("sentencepiece-unigram", data, {**config, "truncation_side": "middle"}, 16)
    # the Keras word tokenizer keeps the end by its own rule and has no untruncated ids
    with pytest.raises(ValueError, match="cannot truncate from the left"):
        build("keras-words", {"vocab": b'["the"]'}, {"truncation_side": "left"}, 16)


def test_max_length_two_is_cls_sep(converted):
    # transformers logs an error and does not truncate at all here; we keep the limit
    assert make(converted, 2).encode(FILLER) == [CLS, SEP]
    with pytest.raises(ValueError):
        make(converted, 1)


def test_float32_running_score_is_emulated(converted, shim, reference):
    """sentencepiece sums piece scores in float32 over the whole text, so an
    exact tie inside one word is broken differently depending on how far into
    the text the word is. Per-word results in float64 get some of these wrong."""
    float64_only = make(converted)
    orig = float64_only._word_entry
    float64_only._word_entry = lambda w: (*orig(w)[:2], math.inf, orig(w)[3])
    differ = 0
    for word in TIE_WORDS:
        for k in range(0, 120, 7):
            text = FILLER * k + word + " the end"
            want = ref_ids(reference, text, None)
            assert shim.tokenize_ids(text) == want
            differ += float64_only.tokenize_ids(text) != want
    assert differ > 0, "no case needed float32 emulation: the test lost its point"


def test_one_megabyte_text(shim, reference):
    words = (FILLER + "Café ``quoted'' 1,000, [MASK] <br /><br />日本語 😀 ").split(" ")
    text = " ".join(words[i % len(words)] for i in range(250_000))[:1_000_000]
    assert len(text) == 1_000_000
    assert shim.encode(text) == ref_ids(reference, text)
    head = text[:100_000]
    assert shim.tokenize_ids(head) == ref_ids(reference, head, None)


def test_small_cache_and_threads_change_nothing(converted, reference):
    texts = [*EDGE_CASES, *(FILLER * k + w for k in (1, 30, 90) for w in TIE_WORDS)]
    want = [ref_ids(reference, t) for t in texts]
    tiny = make(converted, cache_size=8)
    assert [tiny.encode(t) for t in texts] == want
    shared = make(converted, cache_size=64)
    results: dict[int, list[list[int]]] = {}

    def work(n: int) -> None:
        results[n] = [shared.encode(t) for t in (texts[n:] + texts[:n])]

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n, got in results.items():
        assert got == want[n:] + want[:n]


def test_lone_surrogates_do_not_raise(shim, reference):
    # sentencepiece cannot even receive these; we read them as U+FFFD
    text = "a\ud800b \udfff c\udc80"
    ids = shim.encode(text)
    assert ids == ref_ids(
        reference, text.replace("\ud800", "\ufffd").replace("\udfff", "\ufffd").replace("\udc80", "\ufffd")
    )


SPECIAL_BITS = [
    "[MASK]", "[CLS]", "[SEP]", "<unk>", "<pad>", "[mask]", "<UNK>", "``", "''", "9,", ",", "1,0",
    " ", "  ", "\t", "\n", "\xa0", "\u3000", "▁", "Σ", "ς", "é", "e\u0301", "\u0301", "ß", "ﬁ",
    "\x00", "\x01", "\x7f", "\u200b", "\ufeff", "😀", "日本", "한", "\u1100\u1161", "ｶ", "ﾞ",
    "!!!!", "****", "zz", "aaaa", "movie", "the", "<br />", "'s", "n't",
]  # fmt: skip

texts = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8"), max_size=80),
    st.lists(
        st.one_of(st.sampled_from(SPECIAL_BITS), st.text(alphabet=st.characters(codec="utf-8"), max_size=6)),
        max_size=30,
    ).map("".join),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_property_same_as_reference(shim, reference, text):
    ids = shim.encode(text)
    assert ids[0] == CLS and ids[-1] == SEP and len(ids) <= shim.max_length
    assert all(0 <= i < VOCAB_SIZE for i in ids)
    assert ids == ref_ids(reference, text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_property_never_raises(shim, text):  # any str, surrogates included
    ids = shim.encode(text)
    assert ids[0] == CLS and ids[-1] == SEP and all(0 <= i < VOCAB_SIZE for i in ids)


def test_added_tokens_like_transformers(tmp_path):
    """Overlapping added tokens, lstrip/rstrip/single_word, special or not,
    normalized or not: split, stripped and lowercased as PreTrainedTokenizer.tokenize does."""
    import random

    need("sentencepiece")
    need("transformers")
    from transformers import AddedToken, AlbertTokenizer

    from edgeclf.export.spm_convert import convert, reference_settings

    ref = AlbertTokenizer(str(SPIECE))
    ref.add_tokens(
        [
            AddedToken("movie star", lstrip=True, rstrip=True),
            "abc",
            "abcd",
            "bcd",
            AddedToken("<X>", single_word=True, normalized=False),
        ]
    )
    ref.add_special_tokens({"additional_special_tokens": [AddedToken("<EXTRA>", rstrip=True)]})
    files, config = convert(SPIECE, tmp_path, **reference_settings(ref))
    tok = make((tmp_path, files, config))
    bits = ["movie star", "Movie Star", "abc", "ABCD", "bcd", "xabcde", "<X>", "<x>", " ", "  ", "a"]
    bits += ["[MASK]", "<EXTRA>", "<extra>", "Σ", "\n", "9,"]
    rng = random.Random(0)
    for _ in range(1500):
        text = "".join(rng.choice(bits) for _ in range(rng.randint(0, 12)))
        assert tok.encode(text) == ref.encode(text, truncation=True, max_length=512), text


# Variants of the real model (normalizer flags, no "▁" piece): the code paths
# other SentencePiece models take (no dummy prefix, no whitespace folding, no
# per-word cache).
VARIANTS = {
    "no-dummy-prefix": lambda m: m.normalizer_spec.__setattr__("add_dummy_prefix", False),
    "keep-extra-whitespace": lambda m: m.normalizer_spec.__setattr__("remove_extra_whitespaces", False),
    "no-space-piece": lambda m: m.pieces[
        next(i for i, p in enumerate(m.pieces) if p.piece == "▁")
    ].__setattr__("type", 5),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_model_variants(tmp_path, reference, variant):
    from transformers import AlbertTokenizer

    from edgeclf.export.spm_convert import convert, load_model_proto, reference_settings

    model = load_model_proto(SPIECE)
    VARIANTS[variant](model)
    path = tmp_path / "spiece.model"
    path.write_bytes(model.SerializeToString())
    ref = AlbertTokenizer(str(path), remove_space=variant != "keep-extra-whitespace")
    files, config = convert(path, tmp_path / "out", **reference_settings(ref))
    tok = make((tmp_path / "out", files, config))
    for text in [*EDGE_CASES, FILLER * 30 + TIE_WORDS[0], "  two  spaces  ", " 　 x   "]:
        assert tok.encode(text) == ref.encode(text, truncation=True, max_length=512), text


# ------------------------------------------------------------------ export


def test_checkpoint_conversion_follows_its_settings(tmp_path, reference):
    from transformers import AlbertTokenizer

    from edgeclf.export.spm_convert import KIND, tokenizer_files_for_checkpoint

    cases = [
        ("default", {}),
        ("cased", {"do_lower_case": False, "keep_accents": True}),
        ("keep-end", {"truncation_side": "left"}),
    ]
    for name, kwargs in cases:
        ckpt = tmp_path / name
        AlbertTokenizer(str(SPIECE), **kwargs).save_pretrained(str(ckpt))
        out = tmp_path / f"{name}-out"
        kind, files, config = tokenizer_files_for_checkpoint(ckpt, out)
        assert kind == KIND and all((out / p).is_file() for p in files.values())
        assert config["do_lower_case"] == kwargs.get("do_lower_case", True)
        assert config.get("truncation_side", "right") == kwargs.get("truncation_side", "right")
        ref = AlbertTokenizer.from_pretrained(str(ckpt))
        data = {k: (out / v).read_bytes() for k, v in files.items()}
        for max_length in (512, 12):
            tok = build(kind, data, config, max_length)
            for text in EDGE_CASES[:40]:
                assert tok.encode(text) == ref.encode(text, truncation=True, max_length=max_length), text


# ------------------------------------------------------------------ IMDB


@pytest.mark.slow
@pytest.mark.shared_data
def test_all_imdb_test_reviews(shared, converted, shim, reference):
    from edgeclf.export.data import load_imdb

    texts, _ = load_imdb("test", shared / "imdb")
    assert len(texts) == 25_000
    bad = [i for i, t in enumerate(texts) if shim.tokenize_ids(t) != ref_ids(reference, t, None)]
    assert bad == [], f"{len(bad)} of {len(texts)} reviews differ, first: {bad[:10]}"
    tok = make(converted, 256)
    bad = [i for i, t in enumerate(texts[:2000]) if tok.encode(t) != ref_ids(reference, t, 256)]
    assert bad == []
    from transformers import AlbertTokenizer

    left = AlbertTokenizer(str(SPIECE), truncation_side="left")
    out, files, config = converted
    data = {k: (out / v).read_bytes() for k, v in files.items()}
    tok = build("sentencepiece-unigram", data, {**config, "truncation_side": "left"}, 256)
    want = lambda t: left.encode(t, truncation=True, max_length=256)  # noqa: E731
    assert [i for i, t in enumerate(texts[:2000]) if tok.encode(t) != want(t)] == []


def _long_cases(ties: bool = True) -> list[str]:
    """Texts up to 4x a 64-piece window and beyond: float32 tie words at the kept end or start,
    words that yield no pieces (combining marks, zero-width spaces), specials, digit commas."""
    tie = " ".join(TIE_WORDS)
    vanish = "\u0301 " * 3000
    return [
        *((FILLER * k + tie for k in (1, 4, 8, 16)) if ties else ()),
        tie + " " + FILLER * 12,
        "great film " + vanish,
        vanish + "great film",
        "\u200b " * 500 + FILLER * 10 + "\u200b " * 500,
        FILLER * 10 + "[MASK] " * 40 + "9,9, " * 30,
        "x" * 3000 + " " + FILLER * 5,
    ]


def _spy(inner) -> list[int]:
    """Record the length of every text the tokenizer's core reads."""
    seen: list[int] = []
    orig = inner._ids
    inner._ids = lambda text, limit: (seen.append(len(text)), orig(text, limit))[1]
    return seen


@pytest.mark.parametrize("side", ["left", "right"])
def test_a_long_text_is_read_only_as_far_as_the_model_can_use(converted, side):
    """The cut (edgeclf.tokenizers.read_ids) gives transformers' ids; a 500 kB text reads its end only."""
    from transformers import AlbertTokenizer

    from edgeclf.tokenizers import read_ids

    ref = AlbertTokenizer(str(SPIECE), truncation_side=side)
    out, files, config = converted
    data = {k: (out / v).read_bytes() for k, v in files.items()}
    tok = build("sentencepiece-unigram", data, {**config, "truncation_side": side}, 64)
    inner = getattr(tok, "inner", tok)
    for cut_everything in (False, True):
        if cut_everything:  # the cut itself on the left too: exact where no tie word is at the end
            inner.whole_tail_chars = 0
        for text in _long_cases(ties=not cut_everything or side == "right"):
            assert tok.encode(text) == ref.encode(text, truncation=True, max_length=64), text[:40]
            whole = ref.encode(text, add_special_tokens=False)
            want = whole[-186:] if side == "left" else whole[:186]  # what 3 windows of 62 read
            assert read_ids(inner, text, 186, side) == want, text[:40]
    seen = _spy(inner)
    big = (FILLER * 6000 if side == "left" else "the very start " + FILLER * 6000) + "the very end"
    ids = tok.encode(big)
    assert max(seen) < 10_000, "read far more than the model uses"
    inner._ids = type(inner)._ids.__get__(inner)
    whole = inner.tokenize_ids(big)
    assert ids == inner.wrap(whole[-62:] if side == "left" else whole[:62])


def test_an_end_tokenized_alone_can_split_a_tie_word_otherwise(converted, reference):
    """Why SentencePiece reads a text whole when its end is kept (up to whole_tail_chars): the
    float32 running score starts at 0 for the end alone and splits some tie words differently."""
    from edgeclf.tokenizers import read_ids

    tok = make(converted, 256)
    texts = [FILLER * k + " ".join(TIE_WORDS) for k in (16, 32)]
    want = [ref_ids(reference, t, None)[-254:] for t in texts]
    assert [read_ids(tok, t, 254, "left") for t in texts] == want
    tok.whole_tail_chars = 0
    assert [read_ids(tok, t, 254, "left") for t in texts] != want
