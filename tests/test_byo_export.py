"""``edgeclf export transformers``: every supported family, end to end, from checkpoints built here.

Each family's checkpoint is a random tiny ``*ForSequenceClassification``
(hidden 32, 2 layers) with a tokenizer trained on real texts
(tests/byo_checkpoints.py), saved with ``save_pretrained``. The export must
match PyTorch (the exporter checks <= 1e-4 and refuses otherwise), and the
bundle, loaded by the runtime alone, must give PyTorch's probabilities for
real texts of several lengths in batches of several sizes, in every variant.
"""

from __future__ import annotations

import csv
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.byo_checkpoints import FAMILIES, build_checkpoint
from tests.conftest import need, run_cli
from tests.test_byo_tokenizers import byo_texts, byo_work  # noqa: F401  (session fixtures)

pytestmark = pytest.mark.export


@pytest.fixture(scope="session")
def byo_bundles(byo_work: Path, byo_texts: dict[str, list[str]]) -> dict[str, tuple[Path, Path]]:  # noqa: F811
    """family -> (checkpoint, bundle); plus "roberta-multi", a three-label multi-label head."""
    need("torch")
    need("onnx")
    from edgeclf.export.transformers import export_transformers

    t0 = time.perf_counter()
    out: dict[str, tuple[Path, Path]] = {}
    parity = byo_texts["test"][:12] + byo_texts["test"][-4:]
    for family in [*FAMILIES, "roberta-multi"]:
        base = family.removesuffix("-multi")
        multi = family != base
        ckpt = build_checkpoint(
            base, byo_texts["train"], byo_work, labels=3 if multi else 2, multi_label=multi
        )
        bundle = byo_work / "bundles" / family
        if not (bundle / "manifest.json").is_file():
            export_transformers(ckpt, bundle, parity_texts=parity, log=lambda _s: None)
        out[family] = (ckpt, bundle)
    print(f"built and exported {len(out)} checkpoints in {time.perf_counter() - t0:.1f} s")
    return out


def _pytorch_probabilities(ckpt: Path, texts: list[str], max_length: int, multi: bool) -> np.ndarray:
    import torch
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(str(ckpt))
    model = transformers.AutoModelForSequenceClassification.from_pretrained(str(ckpt)).eval()
    rows = []
    for text in texts:  # one at a time: no padding in the reference
        enc = tok(text, truncation=True, max_length=max_length, return_tensors="pt")
        with torch.no_grad():
            logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        rows.append(torch.sigmoid(logits) if multi else torch.softmax(logits, dim=-1))
    return torch.cat(rows).numpy()


@pytest.mark.parametrize("family", [*FAMILIES, "roberta-multi"])
def test_bundle_gives_pytorchs_probabilities(
    family: str,
    byo_bundles: dict[str, tuple[Path, Path]],
    byo_texts: dict[str, list[str]],  # noqa: F811
) -> None:
    import edgeclf

    ckpt, bundle = byo_bundles[family]
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["extra"]["parity"]["max_abs_logit_diff"] <= 1e-4
    assert manifest["tokenizer"]["kind"] == "hf-tokenizer-json"
    assert set(manifest["variants"]) == {"fp32", "fp16", "int8", "int8-dynamic"}
    assert manifest["provider_variants"]["cpu"] == "int8"
    config = json.loads((ckpt / "config.json").read_text(encoding="utf-8"))
    assert list(manifest["labels"]) == [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
    multi = family.endswith("-multi")
    by_length = sorted((t for t in byo_texts["test"] if t.strip()), key=len)
    texts = [*by_length[:: len(by_length) // 9], by_length[-1], "Bad.", "中文"]
    want = _pytorch_probabilities(ckpt, texts, manifest["max_length"], multi)
    for batch_size in (1, 8):
        clf = edgeclf.load(bundle, variant="fp32", providers="cpu", batch_size=batch_size)
        assert np.abs(clf.predict_proba(texts) - want).max() <= 1e-4, (family, batch_size)
    for variant, tolerance in (("fp16", 5e-3), ("int8", 0.1), ("int8-dynamic", 0.1)):
        got = edgeclf.load(bundle, variant=variant, providers="cpu").predict_proba(texts)
        assert np.abs(got - want).max() <= tolerance, (family, variant)
    # the default int8 is row-wise: a text scores the same alone as in a padded batch of others
    int8 = edgeclf.load(bundle, variant="int8", providers="cpu", batch_size=8)
    alone = np.concatenate([int8.predict_proba([t]) for t in texts])
    assert np.abs(int8.predict_proba(texts) - alone).max() <= 1e-5, family


def test_multi_label_predictions_and_tuned_thresholds(
    byo_bundles: dict[str, tuple[Path, Path]],
    byo_work: Path,  # noqa: F811
    byo_texts: dict[str, list[str]],  # noqa: F811
) -> None:
    import edgeclf
    from edgeclf.export.transformers import export_transformers
    from edgeclf.export.transformers_eval import read_eval

    ckpt, bundle = byo_bundles["roberta-multi"]
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["head"] == {"kind": "multi_label", "thresholds": [0.5, 0.5, 0.5]}
    clf = edgeclf.load(bundle, variant="fp32", providers="cpu")
    texts = [t for t in byo_texts["test"] if t.strip()][:20]
    for pred, row in zip(clf.predict(texts), clf.predict_proba(texts), strict=False):
        assert pred.labels == tuple(name for name, p in zip(clf.labels, row, strict=False) if p >= 0.5)
    # --eval-data: labels by name, joined by |; the thresholds are tuned per label on it
    data = byo_work / "multi.csv"
    with open(data, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "labels"])
        for i, text in enumerate(texts):
            w.writerow([text, "|".join(n for k, n in enumerate(clf.labels) if (i >> k) & 1)])
    eval_texts, eval_labels = read_eval(str(data), clf.labels, multi=True)
    assert eval_labels[3] == (0, 1) and eval_labels[0] == ()
    tuned = byo_work / "bundles" / "roberta-multi-tuned"
    export_transformers(
        ckpt, tuned, eval_texts=eval_texts, eval_labels=eval_labels, fp16=False, log=lambda _s: None
    )
    head = json.loads((tuned / "manifest.json").read_text(encoding="utf-8"))["head"]
    assert len(head["thresholds"]) == 3 and all(0.05 <= t <= 0.95 for t in head["thresholds"])
    metrics = json.loads((tuned / "manifest.json").read_text(encoding="utf-8"))["variants"]["int8"]["metrics"]
    assert metrics["n"] == 20 and 0 <= metrics["micro_f1"] <= 1


def _edit_config(src: Path, dst: Path, **changes: Any) -> Path:
    shutil.copytree(src, dst, dirs_exist_ok=True)
    config = json.loads((dst / "config.json").read_text(encoding="utf-8"))
    config.update(changes)
    (dst / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return dst


def test_unsupported_families_heads_and_tokenizers_are_refused(
    byo_bundles: dict[str, tuple[Path, Path]],
    byo_work: Path,  # noqa: F811
) -> None:
    from edgeclf.export.transformers import export_transformers

    ckpt = byo_bundles["bert-uncased"][0]
    out = byo_work / "refused"
    gpt = _edit_config(ckpt, byo_work / "as-gpt2", model_type="gpt2")
    with pytest.raises(ValueError, match="model_type 'gpt2' is not supported; supported: albert, bert"):
        export_transformers(gpt, out)
    regression = _edit_config(
        ckpt, byo_work / "as-regression", problem_type="regression", id2label={"0": "score"}, num_labels=1
    )
    with pytest.raises(ValueError, match="regression head"):
        export_transformers(regression, out)
    word_level = _edit_config(ckpt, byo_work / "word-level")
    spec = json.loads((word_level / "tokenizer.json").read_text(encoding="utf-8"))
    spec["model"] = {"type": "WordLevel", "vocab": spec["model"]["vocab"], "unk_token": "[UNK]"}
    (word_level / "tokenizer.json").write_text(json.dumps(spec), encoding="utf-8")
    with pytest.raises(
        ValueError, match="model 'WordLevel' is not supported; supported: WordPiece BPE Unigram"
    ):
        export_transformers(word_level, out)
    assert not out.exists()


def test_cli_export_then_predict(
    byo_bundles: dict[str, tuple[Path, Path]],
    byo_work: Path,  # noqa: F811
) -> None:
    """``edgeclf export transformers`` (in this process: transformers imports once), then the runtime's CLI."""
    from edgeclf.export.cli import main

    ckpt = byo_bundles["deberta-v2"][0]
    out = byo_work / "cli-bundle"
    assert main(["transformers", str(ckpt), "--out", str(out), "--no-fp16", "--max-length", "64"]) == 0
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["max_length"] == 64 and set(manifest["variants"]) == {"fp32", "int8", "int8-dynamic"}
    rows = byo_work / "rows.csv"
    rows.write_text("id,text\n1,A fine film.\n2,Terrible. 糟糕\n", encoding="utf-8")
    done = run_cli("predict", str(rows), "-m", str(out))
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    lines = list(csv.DictReader(done.stdout.decode().splitlines()))
    assert [r["id"] for r in lines] == ["1", "2"]
    assert {r["label"] for r in lines} <= {"label_a", "label_b"}


def test_edgeclf_quantize_on_every_familys_bundle(
    byo_bundles: dict[str, tuple[Path, Path]],
    byo_work: Path,  # noqa: F811
    byo_texts: dict[str, list[str]],  # noqa: F811
) -> None:
    """``edgeclf quantize`` adds the project's default int8 to any family's bundle, and it runs."""
    import edgeclf
    from edgeclf.quantize.tool import main

    texts = [t for t in byo_texts["test"] if t.strip()][:6]
    for family, (_, bundle) in byo_bundles.items():
        copy = byo_work / "quantized" / family
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(bundle, copy)
        assert main([str(copy), "--name", "int8-again"]) == 0
        want = edgeclf.load(copy, variant="fp32", providers="cpu").predict_proba(texts)
        got = edgeclf.load(copy, variant="int8-again", providers="cpu").predict_proba(texts)
        assert np.abs(got - want).max() <= 0.1, family
