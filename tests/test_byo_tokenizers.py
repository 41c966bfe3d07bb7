"""The tokenizer.json runtime tokenizers against transformers' fast tokenizers, family by family.

Each family's tokenizer is trained on real IMDB / Weibo texts and saved the
way its fast tokenizer class saves it (tests/byo_checkpoints.py); the runtime
class must give the same ids as ``AutoTokenizer.from_pretrained(dir)`` with
``truncation=True`` on test texts it never saw and on a hostile set, keeping
either end of long texts. The full test sets run in
benchmarks/byo_tokenizer_exactness.py.
"""

from __future__ import annotations

import csv
import gzip
import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.byo_checkpoints import FAMILIES, _tokenizer_dir, training_texts
from tests.conftest import need

#: emoji and ZWJ sequences, combining marks, full-width forms, RTL text, control characters, NUL, long words
HOSTILE = [
    "",
    " ",
    "\n\t  \r\n",
    "👨‍👩‍👧‍👦 family, 🏳️‍🌈 flag, ❤️ heart, 👍🏽 thumbs, 🇫🇷🇯🇵 flags, 1️⃣ keycap, 🧑🏿‍🚀",
    "e\u0301 n\u0303 a\u0308\u0301 Ａ\u0301 \u0301lone mark, Zalgo: Z\u0351\u0364\u0307a\u0310l\u0315g\u0301o",
    "ｆｕｌｌ－ｗｉｄｔｈ　ＡＢＣ　１２３！？　ｶﾀｶﾅ ﾊﾟﾋﾟ",
    "مرحبا بالعالم! שָׁלוֹם עולם \u200f123\u200e mixed العربية text",
    "ctl\x00nul\x01\x07\x1b\x1c\x1d\x1e\x1f\x7f\x85 zero\u200b\u200c\u200d\u2060\ufeff widths\u2028\u2029",
    "tab\tnew\nline\r\nform\x0cfeed\x0bvt   many    spaces  ",
    "ΣΑΣ ΌΣΟΣ İstanbul straße ǅemal ﬁ ﬀ ẞ",
    "``quoted'' \"double\" 'single' [MASK] <mask> [CLS] [SEP] </s> <s> <unk> [UNK] <pad>",
    "中文文本，没有空格。日本語のテキスト한국어 텍스트 ฉันรักภาษาไทย",
    "Ⅻ ½ ² ① ㈱ ㎏ ℃ № ™ ﬃ",
    "\ud7ff\ue000\uf8ff\U000f0000 private use \U0010fffd",
    "a" * 100_000,
    "é" * 100_000,
    "😀" * 20_000,
    ("word " * 30_000).strip(),
]


@pytest.fixture(scope="session")
def byo_work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory per test session for the fixtures' tokenizers and checkpoints.

    A fixed name under the session's base directory: test modules that import
    these fixtures share what the first one built (the builders reuse it).
    """
    work = tmp_path_factory.getbasetemp() / "byo"
    work.mkdir(exist_ok=True)
    return work


@pytest.fixture(scope="session")
def byo_texts(shared: Path) -> dict[str, list[str]]:
    need("tokenizers")
    need("transformers")
    with gzip.open(shared / "imdb" / "test.csv.gz", "rt", encoding="utf-8", newline="") as fh:
        reviews = [r["text"] for _, r in zip(range(150), csv.DictReader(fh), strict=False)]
    with open(shared / "zh-rumor" / "weibo_test.csv", encoding="utf-8", newline="") as fh:
        posts = [r["text"] for _, r in zip(range(100), csv.DictReader(fh), strict=False)]
    return {"train": training_texts(shared), "test": reviews + posts}


@pytest.fixture(scope="session")
def family_tokenizers(byo_work: Path, byo_texts: dict[str, list[str]]) -> dict[str, Path]:
    """family -> a directory with its saved fast tokenizer (trained once per session)."""
    t0 = time.perf_counter()
    dirs = {
        f: _tokenizer_dir(kind, f, byo_texts["train"], byo_work, 1200) for f, (kind, _) in FAMILIES.items()
    }
    print(f"trained {len(dirs)} tokenizers in {time.perf_counter() - t0:.1f} s")
    return dirs


def _pair(directory: Path, side: str, max_length: int) -> tuple[Any, Any]:
    import transformers

    from edgeclf.tokenizers.hf_json import HFJsonTokenizer

    reference = transformers.AutoTokenizer.from_pretrained(str(directory), truncation_side=side)
    spec = json.loads(reference.backend_tokenizer.to_str())
    mine = HFJsonTokenizer(spec, max_length=max_length, truncation_side=side, pad_id=reference.pad_token_id)
    return reference, mine


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_ids_equal_the_fast_tokenizer(
    family: str, side: str, family_tokenizers: dict[str, Path], byo_texts: dict[str, list[str]]
) -> None:
    reference, mine = _pair(family_tokenizers[family], side, 64)
    for text in [*byo_texts["test"], *HOSTILE]:
        want = reference(text, truncation=True, max_length=64)["input_ids"]
        assert mine.encode(text) == want, (family, side, text[:100])
    untruncated = reference(byo_texts["test"][0], add_special_tokens=False)["input_ids"]
    assert mine.tokenize_ids(byo_texts["test"][0]) == untruncated


def test_the_bundle_tokenizer_is_built_by_kind(family_tokenizers: dict[str, Path]) -> None:
    """Through the runtime's registry, as a bundle loads it, left truncation without KeepEnd."""
    import transformers

    from edgeclf.tokenizers import build
    from edgeclf.tokenizers.hf_json import HFJsonTokenizer

    directory = family_tokenizers["roberta"]
    data = json.loads((directory / "tokenizer.json").read_text(encoding="utf-8"))
    files = {"tokenizer": json.dumps(data).encode()}
    tok = build("hf-tokenizer-json", files, {"truncation_side": "left", "pad_id": 1}, 16)
    assert isinstance(tok, HFJsonTokenizer) and tok.pad_id == 1
    reference = transformers.AutoTokenizer.from_pretrained(str(directory), truncation_side="left")
    text = "The beginning is cut away; only the last pieces of this sentence stay in the encoding."
    assert tok.encode(text) == reference(text, truncation=True, max_length=16)["input_ids"]


def test_lone_surrogates_are_refused(family_tokenizers: dict[str, Path]) -> None:
    """The fast tokenizer cannot take them (Rust strings are UTF-8); the runtime says so."""
    reference, mine = _pair(family_tokenizers["bert-uncased"], "right", 64)
    with pytest.raises(TypeError):  # "TextInputSequence must be str": it is not valid UTF-8
        reference("bad \udc80 byte")
    with pytest.raises(ValueError, match="lone surrogate"):
        mine.encode("bad \udc80 byte")


def _spec(**parts: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "added_tokens": [],
        "normalizer": None,
        "pre_tokenizer": {"type": "WhitespaceSplit"},
        "post_processor": None,
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"[UNK]": 0, "a": 1}},
    }
    spec.update(parts)
    return spec


@pytest.mark.parametrize(
    "part, value, named",
    [
        ("model", {"type": "WordLevel", "vocab": {}, "unk_token": "x"}, "WordLevel"),
        ("normalizer", {"type": "ByteLevel"}, "ByteLevel"),
        ("pre_tokenizer", {"type": "Digits", "individual_digits": True}, "Digits"),
        ("post_processor", {"type": "Unknown"}, "Unknown"),
        ("pre_tokenizer", {"type": "Split", "pattern": {"Regex": r"\p{Lu}"}, "behavior": "Isolated"}, "Lu"),
    ],
)
def test_unsupported_parts_are_refused_by_name(part: str, value: dict[str, Any], named: str) -> None:
    from edgeclf.tokenizers.hf_json import HFJsonTokenizer, UnsupportedPart

    with pytest.raises(UnsupportedPart, match=named):
        HFJsonTokenizer(_spec(**{part: value}))


def test_a_long_text_costs_what_its_kept_words_cost(family_tokenizers: dict[str, Path]) -> None:
    """Whitespace-separated pipelines declare ``cut_words``: 2 MB of text reads only the kept end."""
    for family in ("bert-uncased", "roberta", "xlm-roberta"):
        reference, mine = _pair(family_tokenizers[family], "left", 64)
        assert mine.cut_words is not None, family
        text = "a good film, " * 160_000
        t0 = time.perf_counter()
        got = mine.encode(text)
        assert time.perf_counter() - t0 < 0.5
        assert got == reference(text[-4000:], truncation=True, max_length=64)["input_ids"]
