"""The embedded ALBERT bundles through the runtime alone (no torch, no transformers)."""

from __future__ import annotations

import csv
import itertools
import subprocess
import sys
import threading

import numpy as np
import pytest

import edgeclf
from edgeclf.classifier import DEFAULT_BATCH_TOKENS

from .conftest import DATA, run_cli

POSITIVE = "One of the best films I have seen in years: brilliant acting, a wonderful story, superb."
NEGATIVE = "Awful. The worst movie ever made, boring, stupid and a total waste of time."


def imdb_sample() -> tuple[list[str], list[int]]:
    with open(DATA / "imdb_sample.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [r["text"] for r in rows], [int(r["label"]) for r in rows]


def weibo_sample() -> list[dict[str, str]]:
    with open(DATA / "zh" / "weibo_sample.csv", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def albert():
    return edgeclf.load("albert-imdb")


def test_albert_imdb_classifies_real_reviews(albert):
    texts, labels = imdb_sample()
    preds = albert.predict([*texts, POSITIVE, NEGATIVE])
    assert preds[-2].label == "positive" and preds[-1].label == "negative"
    right = sum(p.label_id == y for p, y in zip(preds, labels, strict=False))
    assert right >= len(labels) - 3
    m = albert.manifest
    assert m.tokenizer.kind == "sentencepiece-unigram" and m.padding == "longest"
    assert m.variants["int8"].metrics["accuracy"] > 0.88  # all 25,000 IMDB test reviews
    assert m.extra["measured_not_shipped"]["fp32"]["metrics"]["accuracy"] > 0.87  # every 5th review
    assert (
        m.provider_variants == {"cuda": "fp16", "cpu": "ngram-int8"}
        and m.variants["fp16"].precision == "fp16"
    )


def test_length_grouping_keeps_input_order_and_long_texts_truncate(albert):
    texts, _ = imdb_sample()
    mixed = [texts[0], "Great!", texts[1] * 20, "?", "Bad.", texts[2]]
    batched = albert.predict_proba(mixed)
    alone = np.vstack([albert.predict_proba([t]) for t in mixed])
    # dynamic int8 quantizes activations per batch, so scores move slightly with the batch; labels hold
    assert (batched.argmax(1) == alone.argmax(1)).all()
    assert np.abs(batched - alone).max() < 0.05
    assert len(albert.tokenizer.encode(texts[1] * 20)) == 256


def test_batches_bound_texts_and_padded_tokens_and_answer_like_one_text_at_a_time(albert):
    texts, _ = imdb_sample()
    texts = [*texts, "Bad.", "Great!", "x " * 700, *[t[:200] for t in texts]]
    ids = albert.tokenizer.encode_batch(texts)
    assert (albert.batch_size, albert.batch_tokens) == (64, DEFAULT_BATCH_TOKENS)
    for size, budget in [(64, 2048), (64, 300), (3, None), (64, None), (5, 1)]:
        albert.batch_size, albert.batch_tokens = size, budget
        batches = albert.batches(ids)
        assert sorted(i for b in batches for i in b) == list(range(len(ids)))  # each text once
        lengths = [len(ids[i]) for b in batches for i in b]
        assert lengths == sorted(lengths)  # shortest first: little padding
        for b in batches:
            longest = max(len(ids[i]) for i in b)
            assert len(b) <= size and (budget is None or len(b) == 1 or len(b) * longest <= budget)
        for b, nxt in itertools.pairwise(batches):  # greedy: the next text did not fit
            assert len(b) == size or (budget is not None and (len(b) + 1) * len(ids[nxt[0]]) > budget)
    albert.batch_size, albert.batch_tokens = 64, 2048  # 256-token reviews go 8 at a time, short ones more
    assert sorted({len(b) for b in albert.batches(ids)})[-1] > 8 and [8] in [
        [len(b)] for b in albert.batches(ids) if max(len(ids[i]) for i in b) == 256
    ]
    albert.batch_size, albert.batch_tokens = 64, DEFAULT_BATCH_TOKENS
    one_by_one = albert.__class__.__new__(albert.__class__)
    one_by_one.__dict__.update(albert.__dict__, batch_size=1)
    np.testing.assert_allclose(albert.predict_proba(texts), one_by_one.predict_proba(texts), atol=2e-2)
    assert (albert.predict_proba(texts).argmax(1) == one_by_one.predict_proba(texts).argmax(1)).mean() > 0.98


def test_the_token_limit_is_a_cpu_default_and_explicit_values_win():
    from edgeclf.classifier import resolve_batch_tokens

    assert resolve_batch_tokens("auto", "CPUExecutionProvider") == DEFAULT_BATCH_TOKENS
    assert resolve_batch_tokens("auto", "CUDAExecutionProvider") is None  # GPUs want big batches
    assert resolve_batch_tokens(512, "CUDAExecutionProvider") == 512
    assert resolve_batch_tokens(None, "CPUExecutionProvider") is None
    for bad in (0, -1, "many", 2.5):
        with pytest.raises(ValueError, match="batch_tokens"):
            edgeclf.load("albert-imdb", batch_tokens=bad)
    assert edgeclf.load("albert-imdb", providers="cpu").batch_tokens == DEFAULT_BATCH_TOKENS
    assert edgeclf.load("albert-imdb", batch_tokens=None).batch_tokens is None


def test_max_length_option_truncates_further():
    short = edgeclf.load("albert-imdb", max_length=64)
    assert len(short.tokenizer.encode("word " * 500)) == 64
    with pytest.raises(ValueError, match="max_length"):
        edgeclf.load("albert-imdb", max_length=100_000)
    with pytest.raises(ValueError, match="padding"):
        edgeclf.load("keras-imdb", max_length=64)


def test_albert_threads_agree_with_serial(albert):
    texts, _ = imdb_sample()
    serial = [albert.predict_proba([t]) for t in texts]
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for i in range(12):
                j = (k + i) % len(texts)
                np.testing.assert_array_equal(albert.predict_proba([texts[j]]), serial[j])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_zh_rumor_bundle_on_real_posts():
    clf = edgeclf.load("albert-zh-rumor")
    assert clf.labels == ("real", "fake") and clf.manifest.tokenizer.kind == "wordpiece"
    rows = [r for r in weibo_sample() if r["text"].strip()]
    preds = clf.predict([r["text"] for r in rows])
    right = sum(p.label_id == int(r["label"]) for p, r in zip(preds, rows, strict=True))
    assert right / len(rows) > 0.7
    assert clf.manifest.variants["int8"].metrics["accuracy"] >= 0.80


def test_zh_rumor_cli_with_bom_and_gb18030(tmp_path):
    rows = weibo_sample()[:6]
    body = "id,text\n" + "".join(f'{r["id"]},"{r["text"]}"\n' for r in rows)
    for name, data, extra in (
        ("bom.csv", b"\xef\xbb\xbf" + body.encode("utf-8"), []),
        ("gbk.csv", body.encode("gb18030"), ["--encoding", "gb18030"]),
    ):
        src = tmp_path / name
        src.write_bytes(data)
        r = run_cli("predict", str(src), "--model", "albert-zh-rumor", *extra)
        out = list(csv.DictReader(r.stdout.decode("utf-8").splitlines()))
        assert [o["id"] for o in out] == [r["id"] for r in rows]
        for o, row in zip(out, rows, strict=True):
            assert (o["label"] in ("real", "fake")) == bool(row["text"].strip())
        assert r.returncode == (1 if any(not row["text"].strip() for row in rows) else 0)


def test_albert_bundles_load_no_heavy_module():
    code = (
        "import sys, edgeclf\n"
        "for name in ('albert-imdb', 'albert-zh-rumor'):\n"
        "    edgeclf.load(name).predict(['good', '很好'])\n"
        "bad = [m for m in ('torch', 'transformers', 'sentencepiece', 'tokenizers', 'onnx', 'google.protobuf') "
        "if m in sys.modules]\n"
        "print('HEAVY', bad)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "HEAVY []" in r.stdout, r.stderr
