"""WordPiece shim == transformers' slow ``BertTokenizer``, id for id.

Three layers, so a fresh clone still checks exactness:

* golden ids (``tests/data/zh/golden_ids.json``, written by the slow reference)
  for 50 real Weibo posts and the edge cases, checked without transformers;
* live comparisons with ``BertTokenizer`` (needs the ``[export]`` extra):
  sample posts, edge cases, configurations, a hypothesis property test, and
  a check that the golden file is still what the reference says;
* the full zh-rumor corpus (``../shared/data``, ``slow``).

Regenerate the golden file after a deliberate change with
``python tests/test_tokenizer_wordpiece.py --write-golden``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeclf.tokenizers import build
from edgeclf.tokenizers.wordpiece import WordPieceTokenizer, load_vocab

ZH = Path(__file__).resolve().parent / "data" / "zh"
VOCAB = ZH / "vocab.txt"
SAMPLE = ZH / "weibo_sample.csv"
GOLDEN = ZH / "golden_ids.json"
VOCAB_SIZE = 21128
CLS, SEP, UNK, MASK = 101, 102, 100, 103

#: everything the brief and the code's comments worry about, in one list
EDGE_CASES: list[str] = [
    "",
    " ",
    " \t\r\n\u3000\xa0 ",
    "\x00",
    "\x00\x01\x02\x7f\x85\u200b\u200e\ufeff",
    "\ufffd\ufffd坏字\ufffd符",
    "中文English混合123abc456",
    "iPhone12Pro 售价6999元，约合US$1,000.50！",
    "ＡＢＣ全角字母ａｂｃ１２３，全角标点：！？（）【】《》“”‘’",
    "半角标点,.!?()[]<>{}$^`~|\\/@#%&*+=-_'\"",
    "表情😀👍🏻❤️🇨🇳 颜文字(*^▽^*) [蜡烛][泪][哈哈]",
    "链接 http://t.cn/zOXAaic 和 https://weibo.com/u/1234567?from=page_100505&wvr=6#home",
    "@张三 @Li_Si2010 回复@王五:你好",
    "#转发求证# #郭美美# #Breaking News#",
    "a" * 100,
    "a" * 101,
    "超长词" + "x" * 150 + " 结束",
    "[MASK]",
    "今天[MASK]很好",
    "Today is [MASK] and [UNK] [CLS] [SEP] [PAD]",
    "[mask] [Mask] [MASK[MASK]] [MA\x00SK]",
    "Café naïve résumé ÉCOLE Ångström",
    "e\u0301 combining vs é precomposed, Å vs A\u030a",
    "ΟΔΥΣΣΕΥΣ Σ σ ς",
    "İstanbul ıi ß ẞ ﬁ ﬂ",
    "Привет мир! Ελληνικά",
    "한국어 テスト カタカナ ひらがな 中文",
    "line\u2028separator\u2029paragraph\x1cfile\x1dgroup",
    "tabs\tand\nnew\r\nlines",
    "数字１２３４５ 123,456.78 ٣٤٥ ①②③",
    "unaffable UNAFFABLE running jumped",
    "compat 兀 CJK \uf900\uf901 \U0002f800 ext-b \U00020000\U0002a6d6",
    "punct‐–—…※§¶·•‰′″",
    "a" + "\u0301" * 5,
    "\u0301\u0308",
    "##",
    "## ##abc abc##",
]


def read_posts(path: Path) -> list[str]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return [row["text"] for row in csv.DictReader(fh)]


@cache
def shim(lower: bool = True, max_length: int = 512, **kw) -> WordPieceTokenizer:
    return WordPieceTokenizer(
        load_vocab(VOCAB.read_bytes()), max_length=max_length, do_lower_case=lower, **kw
    )


def reference(lower: bool = True, **kw):
    pytest.importorskip("transformers", reason="needs transformers (pip install 'edgeclf[export]')")
    return _reference(lower, tuple(sorted(kw.items())))


@cache
def _reference(lower: bool, kw: tuple):
    from transformers import BertTokenizer

    return BertTokenizer(str(VOCAB), do_lower_case=lower, **dict(kw))


def ref_encoder(ref, max_length: int) -> Callable[[str], list[int]]:
    return lambda text: ref.encode(text, truncation=True, max_length=max_length)


def mismatches(
    texts: list[str], ours: Callable[[str], list[int]], theirs: Callable[[str], list[int]]
) -> list:
    return [(t, ours(t), theirs(t)) for t in texts if ours(t) != theirs(t)]


# -- golden ids: exactness without transformers -------------------------------


def golden_cases() -> dict:
    """What the reference says for the committed posts and the edge cases."""
    posts = read_posts(SAMPLE)
    out: dict = {"vocab_md5": "3b5b76c4aef48ecf8cb3abaafe960f09", "max_length": 100000, "cases": {}}
    for lower in (True, False):
        ref = _reference(lower, ())
        out["cases"][f"do_lower_case={lower}"] = [
            {"text": t, "ids": ref.encode(t, truncation=True, max_length=100000)} for t in posts + EDGE_CASES
        ]
    return out


def write_golden() -> None:
    """One case per line, so a diff shows which text changed."""
    data = golden_cases()
    lines = [f'{{"vocab_md5": "{data["vocab_md5"]}", "max_length": {data["max_length"]}, "cases": {{']
    for i, (key, cases) in enumerate(data["cases"].items()):
        lines.append(f"{json.dumps(key)}: [")
        lines += [
            json.dumps(c, ensure_ascii=False) + ("," if j < len(cases) - 1 else "")
            for j, c in enumerate(cases)
        ]
        lines.append("]" + ("," if i < len(data["cases"]) - 1 else ""))
    lines.append("}}")
    GOLDEN.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_golden_ids_without_transformers():
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert hashlib.md5(VOCAB.read_bytes()).hexdigest() == golden["vocab_md5"]
    n = 0
    for key, cases in golden["cases"].items():
        tok = shim(key.endswith("True"), golden["max_length"])
        bad = [c["text"] for c in cases if tok.encode(c["text"]) != c["ids"]]
        assert bad == [], key
        n += len(cases)
    assert n == 2 * (50 + len(EDGE_CASES))


def test_golden_file_is_what_the_reference_says():
    reference()
    assert json.loads(GOLDEN.read_text(encoding="utf-8")) == golden_cases()


def test_known_ids():
    tok = shim()
    assert tok.encode("") == [CLS, SEP]
    assert tok.encode("今天[MASK]很好") == [CLS, 791, 1921, MASK, 2523, 1962, SEP]
    assert tok.encode("a" * 101) == [CLS, UNK, SEP]
    assert tok.encode("\x00\ufffd\u200b") == [CLS, SEP]
    assert tok.tokenize("unaffable") == ["u", "##na", "##ff", "##able"]
    assert tok.tokenize("Café ΟΔΟΣ") == ["cafe", "ο", "##δ", "##ο", "##σ"]  # no final sigma, accents stripped
    assert shim(False).tokenize("Café") == ["[UNK]"]  # cased: 'C' is not in this uncased vocab


# -- live comparison with BertTokenizer ---------------------------------------


@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("max_length", [512, 64, 3])
def test_sample_posts_match_reference(lower, max_length):
    posts = read_posts(SAMPLE)
    assert len(posts) == 50
    bad = mismatches(posts, shim(lower, max_length).encode, ref_encoder(reference(lower), max_length))
    assert bad == []


@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("max_length", [512, 8])
def test_edge_cases_match_reference(lower, max_length):
    bad = mismatches(EDGE_CASES, shim(lower, max_length).encode, ref_encoder(reference(lower), max_length))
    assert bad == []


@pytest.mark.parametrize("max_length", [3, 8, 64])
def test_left_truncation_keeps_the_end_like_transformers(max_length):
    """``truncation_side: left`` (via the registry) == ``BertTokenizer(..., truncation_side="left")``."""
    from edgeclf.tokenizers import build

    tok = build("wordpiece", {"vocab": VOCAB.read_bytes()}, {"truncation_side": "left"}, max_length)
    ref = reference(True, truncation_side="left")
    texts = [*EDGE_CASES, *read_posts(SAMPLE)]
    assert mismatches(texts, tok.encode, ref_encoder(ref, max_length)) == []
    assert mismatches(texts, tok.encode, ref_encoder(reference(True), max_length)) != []  # the side matters


@pytest.mark.parametrize(
    "kw",
    [
        {"strip_accents": False},
        {"strip_accents": True},
        {"tokenize_chinese_chars": False},
        {"never_split": ("mask", "abc!", "[foo]")},
        {"additional_special_tokens": ("[unused1]", "[unused12]")},
    ],
    ids=str,
)
@pytest.mark.parametrize("lower", [True, False])
def test_configurations_match_reference(lower, kw):
    texts = [
        *EDGE_CASES,
        "mask abc! ABC! [foo] x[foo]",
        "[unused1]x[UNUSED12] [unused123]",  # lowercasing can create a special token
        *read_posts(SAMPLE)[:10],
    ]
    ours = shim(lower, 512, **kw).encode
    assert mismatches(texts, ours, ref_encoder(reference(lower, **kw), 512)) == []


def test_max_input_chars_per_word_matches_reference():
    reference()
    from transformers import BertTokenizer

    ref = BertTokenizer(str(VOCAB))  # a private instance: the attribute is not an __init__ argument
    ref.wordpiece_tokenizer.max_input_chars_per_word = 5
    tok = shim(True, 512, max_input_chars_per_word=5)
    texts = ["abcde abcdef 中文 hello world", *EDGE_CASES]
    assert mismatches(texts, tok.encode, ref_encoder(ref, 512)) == []


def _mixed_text() -> st.SearchStrategy[str]:
    vocab_words = [w for w in VOCAB.read_text(encoding="utf-8").split("\n") if w][::97]
    chunks = st.one_of(
        st.text(alphabet=st.characters(codec="utf-8"), max_size=20),
        st.text(alphabet="aZ9 \t\n\x00\ufffd\u200b\u3000ΣσÉé\u0301中文。，！[]#@$^`~-_'\"😀", max_size=20),
        st.sampled_from(["[MASK]", "[UNK]", "[CLS]", "[SEP]", "[PAD]", "[mask]", "http://t.cn/x", "#话题#"]),
        st.sampled_from(vocab_words),
    )
    return st.lists(chunks, max_size=12).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_mixed_text(), lower=st.booleans(), max_length=st.sampled_from([3, 4, 16, 512]))
def test_property_valid_ids_and_equal_to_reference(text, lower, max_length):
    ids = shim(lower, max_length).encode(text)  # never raises
    assert ids[0] == CLS and ids[-1] == SEP and 2 <= len(ids) <= max_length
    assert all(0 <= i < VOCAB_SIZE for i in ids)
    assert ids == reference(lower).encode(text, truncation=True, max_length=max_length)


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("lower", [True, False])
def test_full_zh_rumor_corpus_matches_reference(shared, lower):
    files = sorted((shared / "zh-rumor").glob("*.csv"))
    assert files, "no zh-rumor CSVs"
    posts = [t for f in files for t in read_posts(f)]
    assert len(posts) > 7000
    ref = reference(lower)
    full = shim(lower, 100000)
    bad = mismatches(posts, full.encode, ref_encoder(ref, 100000))
    assert bad == [], f"{len(bad)} of {len(posts)} posts differ; first: {bad[0][0]!r}"
    bad = mismatches(posts, shim(lower, 128).encode, ref_encoder(ref, 128))
    assert bad == []


# -- construction, vocab parsing, behaviour -----------------------------------


def test_build_from_manifest_pieces():
    config = {
        "do_lower_case": True,
        "tokenize_chinese_chars": True,
        "strip_accents": None,
        "never_split": None,
    }
    tok = build("wordpiece", {"vocab": VOCAB.read_bytes()}, config, 32)
    assert isinstance(tok, WordPieceTokenizer)
    assert (tok.pad_id, tok.max_length, tok.vocab_size) == (0, 32, VOCAB_SIZE)
    posts = read_posts(SAMPLE)
    assert tok.encode_batch(posts[:5]) == [shim(True, 32).encode(t) for t in posts[:5]]
    assert all(len(ids) <= 32 for ids in tok.encode_batch(posts))


def test_load_vocab_follows_transformers_quirks(tmp_path):
    raw = "\ufeff[PAD]\r\n[UNK]\ra\n a \nb\u2028c\nd\n\na\n[CLS]\n[SEP]\n[MASK]".encode()
    ours = load_vocab(raw)
    assert ours["\ufeff[PAD]"] == 0 and ours["a"] == 7 and ours[" a "] == 3 and ours["b\u2028c"] == 4
    assert ours[""] == 6 and ours["[MASK]"] == 10
    pytest.importorskip("transformers")
    from transformers.models.bert.tokenization_bert import load_vocab as ref_load

    (tmp_path / "v.txt").write_bytes(raw)
    assert ours == dict(ref_load(str(tmp_path / "v.txt")))


def test_rejects_bad_configuration():
    vocab = VOCAB.read_bytes()
    with pytest.raises(ValueError, match="missing from the vocab"):
        WordPieceTokenizer({"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "[PAD]": 3})
    with pytest.raises(ValueError, match="max_length"):
        WordPieceTokenizer.from_files({"vocab": vocab}, {}, 2)  # BertTokenizer would not truncate at all
    with pytest.raises(ValueError, match="do_basic_tokenize"):
        WordPieceTokenizer.from_files({"vocab": vocab}, {"do_basic_tokenize": False}, 8)
    with pytest.raises(ValueError, match="vocab"):
        WordPieceTokenizer.from_files({}, {}, 8)
    with pytest.raises(ValueError, match="special token"):
        WordPieceTokenizer.from_files({"vocab": vocab}, {"unk_token": ""}, 8)


def test_config_accepts_serialised_added_tokens():
    config = {"mask_token": {"__type": "AddedToken", "content": "[MASK]", "lstrip": False}}
    tok = WordPieceTokenizer.from_files({"vocab": VOCAB.read_bytes()}, config, 16)
    assert tok.encode("a[MASK]") == [CLS, 143, MASK, SEP]


def test_tiny_cache_stays_correct():
    posts = read_posts(SAMPLE) + EDGE_CASES
    small = WordPieceTokenizer(load_vocab(VOCAB.read_bytes()), max_length=512, cache_size=3)
    assert [small.encode(t) for t in posts] == [shim().encode(t) for t in posts]
    assert len(small._cache) <= 3


def test_threads_share_one_tokenizer():
    tok = WordPieceTokenizer(load_vocab(VOCAB.read_bytes()), max_length=128, cache_size=64)
    posts = read_posts(SAMPLE) * 4
    expected = [shim(True, 128).encode(t) for t in posts]
    results: dict[int, list] = {}

    def work(k: int) -> None:
        results[k] = tok.encode_batch(posts)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results[k] == expected for k in range(4))


def test_module_imports_only_the_standard_library():
    script = (
        "import sys; before = set(sys.modules)\n"
        "import edgeclf.tokenizers.wordpiece\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print(sorted(new - {'edgeclf'} - set(sys.stdlib_module_names)))\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


if __name__ == "__main__" and sys.argv[1:] == ["--write-golden"]:
    write_golden()
    print(f"wrote {GOLDEN}")


@pytest.mark.parametrize("side", ["left", "right"])
def test_a_long_text_is_read_only_as_far_as_the_model_can_use(side):
    """The cut (edgeclf.tokenizers.read_ids) gives transformers' ids on posts run together
    (no spaces: every ideograph is a word) up to 4x a 64-piece window and beyond, with words
    that yield no pieces; a 500 kB post reads its kept side only."""
    from edgeclf.tokenizers import read_ids

    ref = reference(True, truncation_side=side)
    tok = build("wordpiece", {"vocab": VOCAB.read_bytes()}, {"truncation_side": side}, 64)
    inner = getattr(tok, "inner", tok)
    posts = read_posts(SAMPLE)
    vanish = "\x00 \u200b " * 2000
    texts = ["".join(posts[:k]) for k in (1, 2, 4, 8)]
    texts += ["好 " + vanish, vanish + "好", "a\x1cb " * 300, EDGE_CASES[-1] + " ".join(EDGE_CASES) * 3]
    for text in texts:
        assert tok.encode(text) == ref_encoder(ref, 64)(text), text[:40]
        whole = ref.encode(text, add_special_tokens=False)
        want = whole[-186:] if side == "left" else whole[:186]
        assert read_ids(inner, text, 186, side) == want, text[:40]
    seen: list[int] = []
    orig = inner.tokenize_ids
    inner.tokenize_ids = lambda text: (seen.append(len(text)), orig(text))[1]
    big = "".join(posts) * 105
    assert len(big) > 500_000
    ids = tok.encode(big)
    assert max(seen) < 10_000, "read far more than the model uses"
    whole = orig(big)
    assert ids == inner.wrap(whole[-62:] if side == "left" else whole[:62])
