"""Real TensorFlow training, tf2onnx export and int8 quantization on real reviews."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import edgeclf

from .conftest import need

pytestmark = [pytest.mark.export, pytest.mark.slow]


@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory, shared):
    need("tensorflow")
    need("tf2onnx")
    from edgeclf.export.keras_imdb import export_bundle

    out = tmp_path_factory.mktemp("export") / "keras-small"
    manifest = export_bundle(
        out, shared / "imdb", epochs=25, limit=6000, eval_limit=1500, parity_reviews=1000, log=lambda *_: None
    )
    return out, manifest


def test_export_parity_and_manifest(small_bundle):
    out, manifest = small_bundle
    assert manifest["extra"]["parity"]["reviews"] == 1000
    assert manifest["extra"]["parity"]["max_abs_diff"] <= 1e-5
    clf = edgeclf.load(out, variant="fp32")
    assert clf.manifest.outputs[0].name == "probability"
    for name in ("fp32", "int8"):
        m = manifest["variants"][name]["metrics"]
        assert m["n"] == 1500 and m["accuracy"] > 0.7  # 4,000 training reviews, 25 epochs: well above chance


def test_int8_gate_and_size(small_bundle):
    _, manifest = small_bundle
    fp, q = manifest["variants"]["fp32"], manifest["variants"]["int8"]
    assert q["file"]["size"] < fp["file"]["size"] / 3.5
    assert fp["metrics"]["accuracy"] - q["metrics"]["accuracy"] <= 0.005
    assert q["metrics"]["agreement_with_fp32"] >= 0.985


def test_embedding_only_int8_is_batch_independent_unlike_full_int8(small_bundle, tmp_path, shared):
    """Why the recipe quantizes only the Gather: dynamic MatMul quantization
    computes activation scales over the whole batch."""
    import shutil

    from edgeclf.export import bundle_writer
    from edgeclf.export.data import load_imdb
    from edgeclf.quantize.int8 import quantize_weights

    out, _ = small_bundle
    full = tmp_path / "full"
    shutil.copytree(out, full)
    quantize_weights(full / "model.onnx", full / "model.all8.onnx")
    m = bundle_writer.load(full)
    bundle_writer.add_variant(m, full, "all8", "model.all8.onnx")
    bundle_writer.save(full, m)

    texts, _ = load_imdb("test", shared / "imdb")
    texts = texts[::500]

    def batch_effect(bundle, variant):
        clf = edgeclf.load(bundle, variant=variant)
        alone = np.vstack([clf.predict_proba([t]) for t in texts])
        return float(np.abs(clf.predict_proba(texts) - alone).max())

    assert batch_effect(out, "int8") <= 1e-5
    assert batch_effect(full, "all8") > 1e-4


def test_export_without_the_extra_explains_what_to_install(tmp_path):
    code = (
        "import sys; sys.modules['tensorflow'] = None; sys.modules['keras'] = None\n"
        "from edgeclf.cli import main\n"
        f"raise SystemExit(main(['export', 'keras-imdb', '--out', {str(tmp_path / 'x')!r}]))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "pip install 'edgeclf[export]'" in r.stderr


@pytest.mark.shared_data
def test_embedded_bundle_meets_the_accuracy_target_on_all_25000_test_reviews(shared, keras_bundle):
    from edgeclf.export.data import load_imdb
    from edgeclf.export.keras_imdb import gate_int8
    from edgeclf.quantize.evaluate import evaluate_variants

    texts, labels = load_imdb("test", shared / "imdb")
    assert len(texts) == 25_000
    results = evaluate_variants(keras_bundle, texts, labels)
    assert results["fp32"]["accuracy"] >= 0.872
    assert results["int8"]["accuracy"] >= 0.872
    gate_int8(results)
    recorded = edgeclf.load(keras_bundle).manifest.variants
    for name in ("fp32", "int8"):  # the manifest tells the truth
        assert results[name]["accuracy"] == recorded[name].metrics["accuracy"]
