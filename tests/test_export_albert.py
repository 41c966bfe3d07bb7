"""ALBERT: export of a real trained checkpoint (the project's own, committed in
checkpoints/), faithful to PyTorch, weights stored once, int8 gate, and the
runtime bundle agreeing with PyTorch end to end."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import edgeclf

from .conftest import DATA, ROOT, need

pytestmark = [pytest.mark.export, pytest.mark.slow]

CHECKPOINT = ROOT / "checkpoints" / "albert-imdb"


def texts() -> list[str]:
    with open(DATA / "imdb_sample.csv", encoding="utf-8", newline="") as fh:
        rows = [r["text"] for r in csv.DictReader(fh)]
    return [*rows, "?", "Great!", "A [MASK] of a film", "x " * 700]  # "" is refused, as by every front end


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    need("torch")
    need("transformers")
    need("onnx")
    if not (CHECKPOINT / "model.safetensors").is_file():
        pytest.skip("checkpoints/albert-imdb is not in this checkout")
    from edgeclf.export.albert import export_albert

    out = tmp_path_factory.mktemp("albert") / "bundle"
    manifest = export_albert(
        CHECKPOINT, out, name="albert-test", max_length=256, parity_texts=texts(), log=lambda *_: None
    )
    return out, manifest


def test_the_checkpoints_model_card_is_copied(exported):
    from edgeclf.export import model_card

    _, manifest = exported
    card = model_card.read_for_checkpoint(CHECKPOINT)
    config = manifest["tokenizer"]["config"]
    assert manifest["model_card"] == model_card.reads(card, config, manifest["max_length"])
    assert manifest["model_card"]["training_data"][0]["id"] == "imdb"
    # the checkpoint keeps the end of long reviews: the bundle's tokenizer and card say so
    assert config["truncation_side"] == "left"
    assert manifest["model_card"]["notes"].endswith('Reads the last 254 pieces of a longer text '
                                                    '(tokenizer truncation_side "left"), not the first.')  # fmt: skip


def test_parity_with_pytorch(exported):
    _, manifest = exported
    par = manifest["extra"]["parity"]
    assert par["max_abs_logit_diff"] <= 1e-4
    assert par["label_agreement"] == 1.0
    assert par["texts"] == len(texts()) and par["batch_sizes"] == [1, 3, 8]
    assert par["token_lengths"][-1] == 256  # long inputs were truncated to max_length


def test_shared_weights_are_stored_once(exported):
    out, manifest = exported
    pt = manifest["extra"]["pytorch_weight_bytes"]
    assert (out / "model.onnx").stat().st_size <= 1.1 * pt
    assert (out / "model.int8.onnx").stat().st_size <= 0.3 * pt
    import onnx

    graph = onnx.load(str(out / "model.int8.onnx")).graph
    ops = [n.op_type for n in graph.node]
    assert "Identity" not in ops
    weight_matmuls = [
        n
        for n in graph.node
        if n.op_type == "MatMul" and any(i in {x.name for x in graph.initializer} for i in n.input)
    ]
    assert not weight_matmuls, "every weight MatMul is quantized"


def test_runtime_bundle_matches_pytorch_end_to_end(exported):
    """Runtime tokenizer shim + onnxruntime vs transformers tokenizer + PyTorch."""
    import torch
    from transformers import AlbertForSequenceClassification, AlbertTokenizer

    out, _ = exported
    tok = AlbertTokenizer.from_pretrained(str(CHECKPOINT))
    model = AlbertForSequenceClassification.from_pretrained(str(CHECKPOINT)).eval()
    sample = texts()
    with torch.no_grad():
        want = []
        for t in sample:
            enc = tok(t, truncation=True, max_length=256, return_tensors="pt")
            want.append(torch.softmax(model(**enc).logits, -1)[0].numpy())
    want = np.vstack(want)
    clf = edgeclf.load(out, variant="fp32")
    got = clf.predict_proba(sample)
    np.testing.assert_allclose(got, want, atol=1e-4)
    q = edgeclf.load(out, variant="int8").predict_proba(sample)
    assert (q.argmax(1) == want.argmax(1)).mean() >= 0.85


def test_tokenizer_kind_is_detected(tmp_path):
    from edgeclf.export.albert import detect_tokenizer

    (tmp_path / "spiece.model").write_bytes(b"x")
    assert detect_tokenizer(tmp_path) == "sentencepiece-unigram"
    (tmp_path / "vocab.txt").write_text("[PAD]\n")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "BertTokenizer"}))
    assert detect_tokenizer(tmp_path) == "wordpiece"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no tokenizer files"):
        detect_tokenizer(empty)


def test_export_cli_writes_a_bundle_users_can_run(tmp_path, exported):
    from edgeclf.cli import main

    out = tmp_path / "cli-bundle"
    shutil.copytree(exported[0], out)
    src = tmp_path / "in.csv"
    src.write_text("id,text\n1,A wonderful film.\n2,\n3,Terrible acting and a dull plot.\n", encoding="utf-8")
    assert main(["predict", str(src), "-o", str(tmp_path / "o.csv"), "--model", str(out), "-q"]) == 1
    with open(tmp_path / "o.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["id"] for r in rows] == ["1", "2", "3"] and rows[1]["error"]
    assert Path(out / "manifest.json").is_file()


def test_vocabulary_pruning_is_exact_for_texts_whose_tokens_were_kept(exported, tmp_path):
    """Vocabulary pruning alone (no recovery) must not change a prediction
    whose tokens all survived; other texts still run, their dropped tokens
    reading as unknown."""
    from edgeclf.quantize.prune import prune_into_bundle

    out = tmp_path / "vocab-bundle"
    shutil.copytree(exported[0], out)
    domain = texts()[:12]
    prune_into_bundle(
        CHECKPOINT,
        out,
        heads=None,
        ffn=None,
        layers=None,
        train_texts=domain,
        train_labels=[0] * len(domain),
        name="vocab",
        recovery_steps=0,
        vocab_min_count=1,
        log=lambda *_: None,
    )
    small = edgeclf.load(out, variant="vocab")
    assert small.variant.id_map is not None
    assert small.variant.file.size < 0.5 * edgeclf.load(out, variant="fp32").variant.file.size
    base = edgeclf.load(out, variant="fp32").predict_proba(domain)
    np.testing.assert_allclose(small.predict_proba(domain), base, atol=1e-5)
    other = ["Completely different words: zebra quantum xylophone."]
    assert small.predict_proba(other).shape == (1, 2)


def test_a_saved_pruned_checkpoint_exports_to_the_same_model(exported, tmp_path):
    """`edgeclf prune --save-checkpoint DIR` keeps the pruned PyTorch model: exported on its own it
    gives the pruned variant's answers, and it carries the model card."""
    from edgeclf.export.albert import export_albert
    from edgeclf.quantize.prune import prune_into_bundle

    out, saved = tmp_path / "pruned-bundle", tmp_path / "saved"
    shutil.copytree(exported[0], out)
    domain = texts()[:12]
    prune_into_bundle(
        CHECKPOINT,
        out,
        heads=1,
        ffn=256,
        layers=None,
        train_texts=domain,
        train_labels=[0, 1] * 6,
        recovery_steps=0,
        save_checkpoint=saved,
        log=lambda *_: None,
    )
    assert (saved / "model.safetensors").is_file() and (saved / "model_card.json").is_file()
    again = tmp_path / "again"
    export_albert(saved, again, name="again", max_length=256, int8=False, fp16=False, log=lambda *_: None)
    np.testing.assert_allclose(
        edgeclf.load(again, variant="fp32").predict_proba(domain),
        edgeclf.load(out, variant="pruned").predict_proba(domain),
        atol=1e-5,
    )
    extra = json.loads((again / "manifest.json").read_text())["extra"]
    assert extra["derived_by_pruning"]["to"]["heads"] == 1  # the bundle says how it was made


def test_export_albert_command_measures_into_the_manifest(tmp_path):
    """`edgeclf export albert CHECKPOINT --eval-data ...`, as a user runs it."""
    need("torch")
    if not (CHECKPOINT / "model.safetensors").is_file():
        pytest.skip("checkpoints/albert-imdb is not in this checkout")
    from edgeclf.cli import main

    out = tmp_path / "cli-export"
    rc = main(
        [
            "export",
            "albert",
            str(CHECKPOINT),
            "--out",
            str(out),
            "--name",
            "mine",
            "--max-length",
            "128",
            "--eval-data",
            str(DATA / "imdb_sample.csv"),
            "--eval-limit",
            "8",
        ]
    )
    assert rc == 0
    m = json.loads((out / "manifest.json").read_text())
    assert m["name"] == "mine" and m["tokenizer"]["kind"] == "sentencepiece-unigram"
    assert m["variants"]["int8"]["metrics"]["n"] == 8
    assert m["extra"]["parity"]["texts"] >= 8  # real texts from --eval-data, not only the built-in ones


def test_texts_read_names_every_text_the_pruning_trained_on(tmp_path):
    """`texts_read` replays a pruning run without a model: the texts it names must be exactly the
    ones whose ids reached the model's embeddings during importance scoring and recovery (so a
    validation text it leaves out really was never read by the pruned model)."""
    need("torch")
    need("transformers")
    if not (CHECKPOINT / "model.safetensors").is_file():
        pytest.skip("checkpoints/albert-imdb is not in this checkout")
    import torch

    from edgeclf.export.albert import reference_tokenizer
    from edgeclf.quantize.prune import prune
    from edgeclf.quantize.recovery import Split, texts_read

    tok = reference_tokenizer(CHECKPOINT)
    vocab = json.loads((CHECKPOINT / "config.json").read_text())["vocab_size"]
    xs = [f"Take {k}: {t}" for k in range(4) for t in texts()[:12]]
    ys = [i % 2 for i in range(len(xs))]
    data = Split.of(tok, xs, ys, 48, 3, 4)
    seen: set[tuple[int, ...]] = set()

    def embedded(module: torch.nn.Module, args: tuple) -> None:
        if isinstance(module, torch.nn.Embedding) and module.num_embeddings == vocab:
            seen.update(tuple(t for t in row if t != tok.pad_token_id) for row in args[0].tolist())

    hook = torch.nn.modules.module.register_module_forward_pre_hook(embedded)
    try:
        prune(CHECKPOINT, tmp_path / "p", heads=1, ffn=64, layers=1, calibration=data.calibration,
              train=data.train, recovery_steps=5, batch_size=4, seed=3, log=lambda *_: None)  # fmt: skip
    finally:
        hook.remove()
    read = texts_read(tok, xs, ys, 48, steps=5, batch_size=4, seed=3, calibration=4)
    assert seen == {tuple(tok.encode(xs[i], truncation=True, max_length=48)) for i in read}
    assert 4 < len(read) < len(xs) - data.n_val  # the calibration texts, and some but not all the rest


def test_recovery_learns_from_unlabeled_texts_through_the_teacher(tmp_path):
    """`edgeclf prune --unlabeled-data`: texts with no label still train the pruned model, towards the
    unpruned teacher's answers on them (they are the recovery's only texts here), or towards the
    probabilities another teacher gave (`--unlabeled-teacher`), not the checkpoint's."""
    need("torch")
    need("transformers")
    if not (CHECKPOINT / "model.safetensors").is_file():
        pytest.skip("checkpoints/albert-imdb is not in this checkout")
    import torch

    from edgeclf.export.albert import reference_tokenizer
    from edgeclf.export.albert_loops import tensor_batch
    from edgeclf.quantize.prune import _load, prune

    tok = reference_tokenizer(CHECKPOINT)
    seqs = [tok.encode(t, truncation=True, max_length=64) for t in texts()[:16]]
    ids, mask = tensor_batch(torch, seqs)

    def log_probs(model_dir: Path) -> torch.Tensor:
        with torch.no_grad():
            return torch.log_softmax(_load(model_dir)(input_ids=ids, attention_mask=mask).logits, -1)

    def gap(target: torch.Tensor, student_dir: Path) -> float:  # KL(target || student)
        return float((target.exp() * (target - log_probs(student_dir))).sum(-1).mean())

    teacher = log_probs(CHECKPOINT)
    given = np.tile(np.float32([0.9, 0.1]), (len(seqs), 1))  # another teacher: all negative
    cut = dict(heads=1, ffn=64, layers=1, calibration=(seqs, [0, 1] * 8), log=lambda *_: None)
    fit = dict(train=([], []), unlabeled=seqs, recovery_steps=12, batch_size=8, distill=1.0, lr=1e-3)
    prune(CHECKPOINT, tmp_path / "cut", **cut, recovery_steps=0)
    prune(CHECKPOINT, tmp_path / "recovered", **cut, **fit)
    prune(CHECKPOINT, tmp_path / "given", **cut, **fit, unlabeled_probs=given)
    assert gap(teacher, tmp_path / "recovered") < 0.5 * gap(teacher, tmp_path / "cut")
    target = torch.log(torch.from_numpy(given))
    assert gap(target, tmp_path / "given") < 0.5 * gap(target, tmp_path / "recovered")
    with pytest.raises(ValueError, match="distill"):
        prune(
            CHECKPOINT, tmp_path / "x", **cut, train=([], []), unlabeled=seqs, recovery_steps=2, distill=0.0
        )
