"""Multi-label heads through every front end: the API, `edgeclf predict` (CSV and JSON Lines), serve.

The model is a real ONNX graph built in the test (tests/multilabel_bundle.py): a bag of cue words
summing one logit per label, so the expected labels follow from the words.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import pytest

import edgeclf
from edgeclf.bundle import BundleError, read_manifest
from edgeclf.cli import main

pytest.importorskip("onnx", reason="builds its model with onnx (pip install 'edgeclf[export]')")

from .multilabel_bundle import LABELS, THRESHOLDS, build_bundle, expected

TEXTS = [
    "A car chase and an explosion.",
    "Funny and hilarious, then tears.",
    "A quiet evening at home.",
    "Grief.",
    "Explosion, chase, funny, grief!",
]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return build_bundle(tmp_path_factory.mktemp("multilabel") / "genres")


def test_the_api_predicts_every_label_over_its_threshold(model):
    clf = edgeclf.load(str(model))
    preds = clf.predict(TEXTS)
    assert [p.labels for p in preds] == [expected(t) for t in TEXTS]
    assert [p.labels for p in preds][:3] == [("action",), ("comedy", "drama"), ()]
    for p in preds:
        probs = list(p.probabilities.values())
        assert p.score == max(probs) and p.label == "|".join(p.labels)
        assert p.label_ids == tuple(LABELS.index(x) for x in p.labels)
        assert all(
            (prob >= t) == (lab in p.labels) for lab, prob, t in zip(LABELS, probs, THRESHOLDS, strict=True)
        )
    proba = clf.predict_proba(TEXTS)
    assert proba.shape == (len(TEXTS), 3) and not (abs(proba.sum(1) - 1) < 1e-3).all()  # not a softmax


def test_csv_and_jsonl_outputs(model, tmp_path):
    src = tmp_path / "in.csv"
    with open(src, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text"])
        w.writerows([[f"t{i}", t] for i, t in enumerate(TEXTS)] + [["empty", ""]])
    out = tmp_path / "out.csv"
    assert main(["predict", str(src), "-m", str(model), "-o", str(out), "-q", "--probabilities"]) == 1
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert list(rows[0]) == ["id", "label", "score", *(f"p_{lab}" for lab in LABELS), "error"]
    assert [r["label"] for r in rows[:-1]] == ["|".join(expected(t)) for t in TEXTS]
    assert rows[2]["label"] == "" and rows[2]["score"] and not rows[2]["error"]  # no label is not an error
    assert rows[-1]["error"] == "row 6 (line 7): empty text"
    for r in rows[:-1]:
        assert float(r["score"]) == max(float(r[f"p_{lab}"]) for lab in LABELS)
    jsonl = tmp_path / "out.jsonl"
    assert main(["predict", str(src), "-m", str(model), "-o", str(jsonl), "-q", "--label-format", "id"]) == 1
    lines = [json.loads(x) for x in jsonl.read_text().splitlines()]
    assert [x["label"] for x in lines[:-1]] == [[LABELS.index(lab) for lab in expected(t)] for t in TEXTS]
    assert lines[-1]["label"] is None and lines[-1]["error"]


def test_serve_answers_a_list_of_labels(model):
    for module in ("starlette", "uvicorn"):
        pytest.importorskip(module, reason="needs the serve extra")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from serve_load import ServerProcess

    from .test_serve import predict

    with ServerProcess("--model", str(model)) as s:
        status, _, body = predict(s.port, {"texts": [*TEXTS, " "], "probabilities": True})
    assert status == 200
    preds = body["predictions"]
    assert [p["label"] for p in preds[:-1]] == [list(expected(t)) for t in TEXTS]
    assert preds[-1] == {
        "label": None,
        "score": None,
        "error": f"text {len(TEXTS)} (0-based index): empty text",
        "probabilities": None,
    }
    assert set(preds[0]["probabilities"]) == set(LABELS)


@pytest.mark.parametrize(
    "head, message",
    [
        ({"kind": "multi_label", "thresholds": [0.5, 0.5]}, "expected 3 numbers"),
        ({"kind": "multi_label", "thresholds": [0.5, 0.5, 1.5]}, "between 0 and 1"),
        ({"kind": "several"}, "head.kind must be"),
    ],
)
def test_a_bad_head_is_refused(model, tmp_path, head, message):
    import shutil

    root = tmp_path / "b"
    shutil.copytree(model, root)
    data = json.loads((root / "manifest.json").read_text())
    data["head"] = head
    (root / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(BundleError, match=message):
        read_manifest(root)
