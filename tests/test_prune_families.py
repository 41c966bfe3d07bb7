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

from tests.byo_checkpoints import build_checkpoint, training_texts
from tests.conftest import need

STRUCTURAL = ["bert-uncased", "distilbert", "roberta", "xlm-roberta", "electra", "deberta-v2", "modernbert"]


@pytest.fixture(scope="session")
def work(tmp_path_factory: pytest.TempPathFactory, shared: Path) -> tuple[Path, list[str]]:
    need("transformers")
    need("torch")
    return tmp_path_factory.mktemp("byo-prune"), training_texts(shared, n=600)


@pytest.fixture(scope="session")
def checkpoint(work: tuple[Path, list[str]]):
    built: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in built:
            built[family] = build_checkpoint(family, work[1], work[0])
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
