"""Structural and vocabulary pruning of the bring-your-own families, on tiny checkpoints.

Faithfulness is what can fail here: a pruned model must compute what the
unpruned one computes minus exactly what was removed. So each family is cut
with nothing removed (logits identical), and with pieces made worthless
first (a head's or a neuron's output weights zeroed, or, in pre-LN
ModernBERT, a whole top layer made the identity): removing them keeps the
logits, in memory and after ``save_pretrained`` + ``from_pretrained``.
Vocabulary pruning is exact for texts whose pieces were all kept, through
the real runtime, on every family's bundle.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import need

STRUCTURAL = ["bert-uncased", "distilbert", "roberta", "xlm-roberta", "electra", "deberta-v2", "modernbert"]


@pytest.fixture(scope="session")
def work(tmp_path_factory: pytest.TempPathFactory, shared: Path) -> tuple[Path, list[str]]:
    need("transformers")
    need("torch")
    byo = pytest.importorskip("tests.byo_checkpoints")
    return tmp_path_factory.mktemp("byo-prune"), byo.training_texts(shared, n=600)


@pytest.fixture(scope="session")
def checkpoint(work: tuple[Path, list[str]]):
    built: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in built:
            built[family] = pytest.importorskip("tests.byo_checkpoints").build_checkpoint(family, *work[::-1])
        return built[family]

    return get


def _logits(model, ids):
    import torch

    with torch.no_grad():
        return model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.numpy()


def _reloaded(model, tmp: Path):
    import transformers

    model.save_pretrained(str(tmp))
    return transformers.AutoModelForSequenceClassification.from_pretrained(str(tmp)).eval()


@pytest.mark.parametrize("family", STRUCTURAL)
def test_pruning_removes_exactly_what_it_names(family: str, checkpoint, tmp_path: Path) -> None:
    import torch
    import transformers

    from edgeclf.quantize import prune_families as pf

    load = transformers.AutoModelForSequenceClassification.from_pretrained
    model = load(str(checkpoint(family))).eval()
    fam = pf.family_of(model.config)
    ids = torch.randint(5, model.config.vocab_size, (3, 17), generator=torch.Generator().manual_seed(1))
    ref = _logits(model, ids)
    layers = pf._get(model, fam.layers)
    n_ffn = pf._get(layers[0], fam.ffn_out).in_features

    # nothing removed: rebuilt FFNs and all layers give identical logits
    pf.prune_ffn(model, fam, [list(range(n_ffn))] * len(layers))
    pf.drop_layers(model, fam, len(layers))
    np.testing.assert_array_equal(_logits(model, ids), ref)

    # worthless neurons (zero output weights) and heads removed: same logits, also after reloading
    with torch.no_grad():
        for layer in layers:
            pf._get(layer, fam.ffn_out).weight[:, :7] = 0
        if fam.prunes_heads:
            head = model.config.hidden_size // model.config.num_attention_heads
            for layer in layers:
                pf._get(layer, fam.attn_out).weight[:, head : 2 * head] = 0  # head 1
    ref = _logits(model, ids)
    pf.prune_ffn(model, fam, [list(range(7, n_ffn))] * len(layers))
    if fam.prunes_heads:
        pf.prune_heads(model, fam, {i: [1] for i in range(len(layers))})
        assert pf.shape(model, fam)["heads"] == model.config.num_attention_heads - 1
    else:
        with pytest.raises(ValueError, match=fam.name.split("/")[0]):
            pf.prune_heads(model, fam, {0: [1]})
    np.testing.assert_allclose(_logits(model, ids), ref, atol=1e-5)
    np.testing.assert_allclose(_logits(_reloaded(model, tmp_path / "a"), ids), ref, atol=1e-5)

    # a top layer that is the identity (pre-LN: zero attention and FFN outputs) removed: same logits
    if family == "modernbert":
        with torch.no_grad():
            top = layers[-1]
            for lin in (top.attn.Wo, top.mlp.Wo):
                lin.weight.zero_()
        ref = _logits(model, ids)
        pf.drop_layers(model, fam, len(layers) - 1)
        np.testing.assert_allclose(_logits(_reloaded(model, tmp_path / "b"), ids), ref, atol=1e-5)


def test_prune_checkpoint_ranks_recovers_and_saves(checkpoint, tmp_path: Path) -> None:
    """The whole cut on BERT: importance ranks, recovery runs, the saved checkpoint reloads to the pruned model."""
    import transformers

    from edgeclf.quantize import prune_families as pf

    src = checkpoint("bert-uncased")
    tok = transformers.AutoTokenizer.from_pretrained(str(src))
    texts = ["a fine film", "dull and slow, avoid", "great acting", "the worst plot ever"] * 8
    seqs = [tok.encode(t) for t in texts]
    labels = [i % 2 for i in range(len(texts))]
    out = tmp_path / "pruned"
    report = pf.prune_checkpoint(
        src, out, heads=1, ffn=32, layers=1, calibration=(seqs, labels), train=(seqs, labels),
        val=(seqs[:8], labels[:8]), recovery_steps=3, batch_size=8, log=lambda s: None,
    )  # fmt: skip
    assert report["to"] == {"heads": 1, "ffn": 32, "layers": 1, "vocab": report["from"]["vocab"]}
    assert report["recovery"]["steps"] == 3
    config = json.loads((out / "config.json").read_text())
    assert config["num_hidden_layers"] == 1 and config["intermediate_size"] == 32
    assert (out / "tokenizer.json").is_file() and (out / "pruning.json").is_file()
    model = transformers.AutoModelForSequenceClassification.from_pretrained(str(out))
    assert pf.shape(model, pf.family_of(model.config)) == report["to"]


def test_refusals_name_what_was_found(checkpoint, tmp_path: Path) -> None:
    import transformers

    from edgeclf.quantize import prune_families as pf

    model = transformers.AutoModelForSequenceClassification.from_pretrained(str(checkpoint("deberta-v2")))
    with pytest.raises(ValueError, match="DeBERTa-v2/v3 attention heads cannot be pruned"):
        pf.cut(model, heads=1, ffn=None, layers=None, calibration=([[1, 2]], [0]))
    with pytest.raises(ValueError, match="between 1 and 2"):
        pf.cut(model, heads=None, ffn=None, layers=5, calibration=([[1, 2]], [0]))
    model.config.model_type = "funnel"
    with pytest.raises(ValueError, match="cannot prune model_type 'funnel'"):
        pf.family_of(model.config)


def _exporter_available() -> bool:
    return importlib.util.find_spec("edgeclf.export.transformers") is not None


#: every model type once (bert-cased differs from bert-uncased only in its tokenizer's case)
ALL = [*STRUCTURAL, "albert"]
#: end to end through the CLI: each pruning code path once (BERT-like heads, DistilBERT's own module names,
#: no heads + post-LN, no heads + GLU, XLM-R's ids read by the graph); RoBERTa and ELECTRA share BERT's path
END_TO_END = ["bert-uncased", "distilbert", "xlm-roberta", "deberta-v2", "modernbert"]


@pytest.fixture(scope="session")
def bundle(checkpoint, work: tuple[Path, list[str]]):
    """family -> its bundle (fp32 + int8, no fp16), exported once per session by the real exporter."""
    if importlib.util.find_spec("edgeclf.export.transformers") is None:
        pytest.skip("needs edgeclf.export.transformers")
    from edgeclf.export.transformers import export_transformers

    built: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in built:
            out = work[0] / f"bundle-{family}"
            export_transformers(
                checkpoint(family),
                out,
                max_length=64,
                parity_texts=work[1][:12],
                fp16=False,
                log=lambda s: None,
            )
            built[family] = out
        return built[family]

    return get


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("family", ALL)
def test_vocabulary_pruning_is_exact_for_kept_pieces(family: str, bundle, work, tmp_path: Path) -> None:
    import edgeclf
    from edgeclf.quantize.vocab_prune import prune_bundle

    root = _copy(bundle(family), tmp_path / "b")
    texts = work[1]
    seen, unseen = texts[:40], texts[-200:]
    import onnx

    from edgeclf.quantize.vocab_prune import reads_ids

    # RoBERTa-style position ids compare the ids with padding: the graph must be seen reading them
    assert reads_ids(onnx.load(str(root / "model.onnx"))) == (family in ("roberta", "xlm-roberta"))
    report = prune_bundle(root, seen, log=lambda s: None)
    rows, kept = report["variants"]["vocab"]["rows"]
    assert kept < rows and report["variants"]["vocab-int8"]["rows"] == [rows, kept]
    for old, new in (("fp32", "vocab"), ("int8", "vocab-int8")):
        with edgeclf.load(root, variant=old) as a, edgeclf.load(root, variant=new) as b:
            np.testing.assert_array_equal(a.predict_proba(seen), b.predict_proba(seen))
            ids = a.tokenizer.encode(unseen[0])
            mapped = b._id_map[np.asarray(ids)]
            assert mapped.max() < kept and b.predict_proba(unseen[:3]).shape == (3, 2)
    # a piece no kept text used reads as the unknown token's row
    from edgeclf.quantize.vocab_prune import special_ids, unk_id

    with edgeclf.load(root, variant="vocab") as b:
        used = {i for t in seen for i in b.tokenizer.encode(t)}
        low = set(range(b.tokenizer.pad_id + 1)) if family.endswith("roberta") else set()
        dropped = next(i for i in range(rows) if i not in used | special_ids(b.tokenizer) | low)
        assert b._id_map[dropped] == b._id_map[unk_id(b.tokenizer)]


def _train_csv(texts: list[str], path: Path) -> Path:
    import csv

    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        for i, t in enumerate(texts):
            w.writerow([t, i % 2])
    return path


@pytest.mark.parametrize("family", END_TO_END)
def test_prune_cli_quantize_predict(family: str, checkpoint, bundle, work, tmp_path: Path) -> None:
    """edgeclf prune (structure + vocabulary) into the family's bundle, edgeclf quantize, then predict."""
    import edgeclf
    from edgeclf.quantize.prune_cli import main as prune_main
    from edgeclf.quantize.tool import main as quantize_main

    root = _copy(bundle(family), tmp_path / "b")
    data = _train_csv(work[1][:120], tmp_path / "train.csv")
    heads = [] if family in ("deberta-v2", "modernbert") else ["--heads", "1"]
    args = [str(checkpoint(family)), "--bundle", str(root), *heads, "--ffn", "40", "--layers", "1"]
    assert (
        prune_main([*args, "--vocab-min-count", "1", "--train-data", str(data), "--recovery-steps", "2"]) == 0
    )
    manifest = json.loads((root / "manifest.json").read_text())
    to = manifest["extra"]["pruning"]["pruned"]["to"]
    assert (to["ffn"], to["layers"]) == (40, 1) and to["heads"] == (2 if heads == [] else 1)
    assert manifest["variants"]["pruned-int8"]["id_map"]["path"] == "model.pruned.idmap.i32"
    assert quantize_main([str(root), "--source", "pruned", "--name", "pruned-q"]) == 0
    texts = work[1][:20]
    with edgeclf.load(root, variant="pruned-int8") as a, edgeclf.load(root, variant="pruned-q") as b:
        assert [p.label for p in a.predict(texts)] == [p.label for p in b.predict(texts)]
