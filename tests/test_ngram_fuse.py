"""The fused n-gram head (export/ngram_fuse.py), grafted onto the embedded Chinese ALBERT.

Real parts: the bundle's own tokenizer and int8 model file, onnxruntime, scikit-learn;
the head is fitted on a few dozen short texts, so the module runs in seconds.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgeclf.bundle import embedded_root, open_bundle

from .conftest import need

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

FAKE = [
    "紧急扩散！喝这种水会致癌，赶快转给家人",
    "震惊！明天全市停水停电三天，速转",
    "转发就送手机，官方认证，仅限今天",
]
REAL = [
    "市气象台发布暴雨蓝色预警，请注意出行安全",
    "今天下午市政府召开新闻发布会通报疫情防控",
    "地铁二号线延长线今日正式开通运营",
]


@pytest.fixture(scope="module")
def fitted():
    need("onnx")
    need("sklearn")
    import edgeclf
    from edgeclf.export import ngram_head as ng

    clf = edgeclf.load("albert-zh-rumor", variant="int8", providers="cpu", temperature=1.0)
    tok = clf.tokenizer
    texts = [t + suffix for t in FAKE + REAL for suffix in ("", "！", "。大家注意", "，转需")]
    labels = [1] * (len(FAKE) * 4) + [0] * (len(REAL) * 4)
    special = {tok.cls_id, tok.sep_id, tok.pad_id}
    head = ng.fit_head(
        tok.encode_batch(texts), labels, special, ng.HeadSpec(max_n=3, min_df=1, max_ngrams=300)
    )
    return clf, head, special


def _session(path: Path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _run(session, seqs):
    from edgeclf.classifier import pad

    ids, mask = pad(seqs, None)
    return session.run(["logits"], {"input_ids": ids, "attention_mask": mask.astype(np.int64)})[0]


def test_the_graph_computes_the_blend_of_transformer_and_head(fitted, tmp_path):
    from edgeclf.export import ngram_fuse as nf
    from edgeclf.export import ngram_head as ng

    clf, head, special = fitted
    assert len(head.ngrams) == 300 and max(len(g) for g in head.ngrams) == 3
    src = open_bundle("albert-zh-rumor").path(clf.variant.file)
    blend = ng.Blend(a=0.5, b=2.0, c=-0.25)
    fused = nf.graft(src, tmp_path / "fused.onnx", head, blend)
    texts = ["喝这种水会致癌，快转给家人！", "市政府今天召开新闻发布会", "转发就送手机"]
    seqs = clf.tokenizer.encode_batch(texts)
    transformer = _run(_session(src), seqs)
    want = blend.logits(transformer, head.margin(seqs, special))
    got = _run(_session(fused), seqs)
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert np.abs(head.margin(seqs, special)).max() > 0.1  # the head is not silent on these texts


def test_the_head_alone_matches_scikit_learn(fitted):
    """The numpy margin (the graph's reference) is scikit-learn's TF-IDF + LR on the kept n-grams."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from edgeclf.export import ngram_head as ng

    clf, head, special = fitted
    seqs = clf.tokenizer.encode_batch(["喝这种水会致癌", "地铁今日正式开通运营，请注意安全"])
    names = [" ".join(map(str, g)) for g in head.ngrams]
    vec = TfidfVectorizer(
        analyzer=lambda s: [" ".join(map(str, g)) for g in ng.ngrams_of(s, 3, special)],
        vocabulary=names,
        sublinear_tf=True,
        lowercase=False,
    )
    vec.idf_ = head.scale.astype(np.float64)
    want = vec.transform(seqs) @ head.coef.astype(np.float64) + head.intercept
    np.testing.assert_allclose(head.margin(seqs, special), want, atol=1e-5)


def test_padding_and_batch_company_never_change_a_score(fitted, tmp_path):
    from edgeclf.export import ngram_fuse as nf
    from edgeclf.export import ngram_head as ng

    clf, head, _ = fitted
    src = open_bundle("albert-zh-rumor").path(clf.variant.file)
    fused = _session(nf.graft(src, tmp_path / "fused.onnx", head, ng.Blend(a=0.0, b=1.0, c=0.0)))
    short = clf.tokenizer.encode("紧急扩散！喝这种水会致癌")
    longer = clf.tokenizer.encode("今天下午市政府召开新闻发布会通报疫情防控，" * 5)
    alone = _run(fused, [short])
    padded = _run(fused, [short, longer])[:1]
    np.testing.assert_allclose(padded, alone, atol=1e-6)
    # the head reads the mask, not the padding id: real ids under a zero mask count for nothing
    ids = np.array([short + longer[1:-1]], dtype=np.int64)
    mask = (np.arange(ids.shape[1]) < len(short)).astype(np.int64)[None, :]
    head_only = _session(nf.standalone(tmp_path / "alone.onnx", head))
    masked = head_only.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]
    np.testing.assert_allclose(masked, _run(head_only, [short]), atol=1e-6)


def test_a_vocabulary_pruned_variant_is_grafted_through_its_id_map(fitted, tmp_path):
    """The runtime remaps ids before the graph: the grafted pool must be remapped the same way."""
    import edgeclf
    from edgeclf.export import bundle_writer
    from edgeclf.export import ngram_fuse as nf
    from edgeclf.export import ngram_head as ng

    _, head, special = fitted
    root = tmp_path / "bundle"
    shutil.copytree(embedded_root() / "albert-zh-rumor", root)
    b = open_bundle(root)
    var = b.manifest.variants["vocab-int8"]
    id_map = np.frombuffer(b.read_verified(var.id_map), dtype="<i4").astype(np.int64)
    blend = ng.Blend(a=0.0, b=1.0, c=0.0)  # the head alone: its reference is the unmapped numpy margin
    nf.graft(b.path(var.file), root / "model.fused.onnx", head, blend, id_map=id_map)
    man = bundle_writer.load(root)
    bundle_writer.add_variant(man, root, "fused", "model.fused.onnx", id_map=var.id_map.path)
    bundle_writer.save(root, man)
    clf = edgeclf.load(root, variant="fused", providers="cpu", temperature=1.0)
    texts = ["紧急扩散！喝这种水会致癌", "地铁二号线今日开通"]
    z = head.margin(clf.tokenizer.encode_batch(texts), special)
    want = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(clf.predict_proba(texts)[:, 1], want, atol=1e-4)


def test_the_head_alone_is_a_model_the_runtime_serves(fitted, tmp_path):
    """The head without the transformer, as a bundle variant: the runtime's probabilities are the
    numpy margin's sigmoid, so a text's label comes from its n-grams alone."""
    import edgeclf
    from edgeclf.export import bundle_writer
    from edgeclf.export import ngram_fuse as nf

    _, head, special = fitted
    root = tmp_path / "bundle"
    shutil.copytree(embedded_root() / "albert-zh-rumor", root)
    nf.standalone(root / "model.ngram.onnx", head)
    man = bundle_writer.load(root)
    bundle_writer.add_variant(man, root, "ngram", "model.ngram.onnx")
    bundle_writer.save(root, man)
    clf = edgeclf.load(root, variant="ngram", providers="cpu", temperature=1.0)
    texts = ["震惊！明天全市停水停电", "市气象台发布暴雨预警"]
    z = head.margin(clf.tokenizer.encode_batch(texts), special)
    np.testing.assert_allclose(clf.predict_proba(texts)[:, 1], 1 / (1 + np.exp(-z)), atol=1e-5)
    assert [p.label for p in clf.predict(texts)] == ["fake", "real"]


def test_the_model_file_gives_back_its_head_and_blend(fitted, tmp_path):
    from edgeclf.export import ngram_fuse as nf
    from edgeclf.export import ngram_head as ng

    clf, head, special = fitted
    blend = ng.Blend(a=0.25, b=1.5, c=0.1)
    src = open_bundle("albert-zh-rumor").path(clf.variant.file)
    back, back_blend = nf.read_head(nf.graft(src, tmp_path / "fused.onnx", head, blend))
    assert back_blend == ng.Blend(a=np.float32(0.25), b=np.float32(1.5), c=np.float32(0.1))
    seqs = clf.tokenizer.encode_batch(["喝这种水会致癌", "地铁今日正式开通运营"])
    np.testing.assert_allclose(back.margin(seqs, special), head.margin(seqs, special), atol=1e-5)
    assert nf.read_head(nf.standalone(tmp_path / "alone.onnx", head))[1] is None


def test_presence_features_scaled_by_naive_bayes_ratios_run_in_the_graph(fitted, tmp_path):
    """``features="nb"``: each n-gram present counts once, scaled by |log-count ratio|; the graph,
    the numpy reference and an independent scikit-learn computation agree."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.preprocessing import normalize

    from edgeclf.export import ngram_fuse as nf
    from edgeclf.export import ngram_head as ng

    clf, _, special = fitted
    texts = [t + s for t in FAKE + REAL for s in ("", "！", "。大家注意", "，转需")]
    labels = np.array([1] * (len(FAKE) * 4) + [0] * (len(REAL) * 4))
    seqs = clf.tokenizer.encode_batch(texts)
    head = ng.fit_head(seqs, labels, special, ng.HeadSpec(max_n=2, min_df=1, features="nb"))  # all kept
    assert not head.sublinear
    vec = CountVectorizer(
        analyzer=lambda s: [" ".join(map(str, g)) for g in ng.ngrams_of(s, 2, special)],
        vocabulary=[" ".join(map(str, g)) for g in head.ngrams],
        binary=True,
        lowercase=False,
    )
    seen = vec.transform(seqs).toarray()
    p, q = seen[labels == 1].sum(0) + 1, seen[labels == 0].sum(0) + 1
    ratio = np.abs(np.log((p / p.sum()) / (q / q.sum())))
    probe = clf.tokenizer.encode_batch(["喝这种水会致癌，快转给家人！喝这种水", "地铁今日正式开通运营"])
    want = normalize(vec.transform(probe).toarray() * ratio) @ head.coef + head.intercept
    np.testing.assert_allclose(head.scale, ratio, rtol=1e-5)
    np.testing.assert_allclose(head.margin(probe, special), want, atol=1e-5)
    src = open_bundle("albert-zh-rumor").path(clf.variant.file)
    fused = nf.graft(src, tmp_path / "fused.onnx", head, ng.Blend(a=0.0, b=1.0, c=0.0))
    got = _run(_session(fused), probe)
    np.testing.assert_allclose(got[:, 1] - got[:, 0], want, atol=1e-4)
    assert nf.read_head(fused)[0].sublinear is False


def test_the_vocabulary_pruner_refuses_a_graph_that_reads_ids_itself(fitted, tmp_path):
    """A fused head keys n-grams by token id: pruning the vocabulary after grafting would
    silently remap them."""
    import onnx

    from edgeclf.export import ngram_fuse as nf
    from edgeclf.export import ngram_head as ng
    from edgeclf.quantize.vocab_prune import embedding_initializers

    clf, head, _ = fitted
    src = open_bundle("albert-zh-rumor").path(clf.variant.file)
    assert embedding_initializers(onnx.load(str(src)))  # the plain graph is prunable
    fused = nf.graft(src, tmp_path / "fused.onnx", head, ng.Blend(a=0.5, b=1.0, c=0.0))
    with pytest.raises(ValueError, match="prune the vocabulary first"):
        embedding_initializers(onnx.load(str(fused)))


def test_texts_shorter_than_the_longest_n_gram_score_as_the_reference(fitted, tmp_path):
    """A 3-gram head over [CLS] [SEP] (no 2- or 3-gram) and one-character texts, alone and padded."""
    from edgeclf.export import ngram_fuse as nf

    clf, head, special = fitted
    alone = _session(nf.standalone(tmp_path / "alone.onnx", head))
    tok = clf.tokenizer
    seqs = [[tok.cls_id, tok.sep_id], tok.encode("转"), tok.encode("转发就送手机")]
    want = head.margin(seqs, special)
    for batch in ([s] for s in seqs):
        got = _run(alone, batch)
        np.testing.assert_allclose(got[:, 1] - got[:, 0], head.margin(batch, special), atol=1e-5)
    got = _run(alone, seqs)
    np.testing.assert_allclose(got[:, 1] - got[:, 0], want, atol=1e-5)
