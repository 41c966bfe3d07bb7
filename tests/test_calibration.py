"""Temperature scaling: fitted on validation data, stored per variant, applied by the runtime."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import edgeclf
from edgeclf import bundle

from .conftest import benchmark_module

TEXTS = ["A moving, beautifully acted film.", "Dull, long and badly written.", "It was fine."]


def _with_temperature(tmp_path, value):
    src = bundle.open_bundle("albert-imdb").root
    dst = tmp_path / "b"
    shutil.copytree(src, dst)
    m = json.loads((dst / "manifest.json").read_text(encoding="utf-8"))
    m["variants"][m["default_variant"]]["temperature"] = value
    (dst / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    return dst


def test_the_manifest_temperature_divides_the_logits(tmp_path):
    plain = edgeclf.load("albert-imdb", providers="cpu", temperature=1.0)
    logits = np.log(plain.predict_proba(TEXTS))  # log-probabilities = logits up to a constant per row
    hot = edgeclf.load(_with_temperature(tmp_path, 2.5), providers="cpu")
    assert hot.temperature == 2.5
    z = logits / 2.5
    expected = np.exp(z - z.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(hot.predict_proba(TEXTS), expected, atol=1e-5)
    # labels never change: the temperature only rescales confidence
    assert (hot.predict_proba(TEXTS).argmax(1) == plain.predict_proba(TEXTS).argmax(1)).all()
    # an explicit temperature wins over the manifest's
    assert (
        edgeclf.load(_with_temperature(tmp_path / "x", 2.5), providers="cpu", temperature=1.0).temperature
        == 1.0
    )


@pytest.mark.parametrize("bad", [0, -1, "2", True, 1000])
def test_a_bad_temperature_is_a_bundle_error(tmp_path, bad):
    with pytest.raises(bundle.BundleError, match="temperature"):
        bundle.open_bundle(_with_temperature(tmp_path, bad))


def test_the_temperature_is_kept_only_where_validation_says_it_helps():
    """The decision to store T reads validation texts only: cross-fitted, never the test ECE."""
    mt = benchmark_module("model_table")
    rng = np.random.default_rng(1)
    n = 2000
    margin = rng.normal(0, 2, n)  # a calibrated score: P(y=1) = sigmoid(margin)
    y = (rng.random(n) < 1 / (1 + np.exp(-margin))).astype(int)
    calibrated = np.stack([np.zeros(n), margin], 1)
    overconfident = calibrated * 4.0
    assert mt.temperature_helps(overconfident, y)
    assert 3.0 < mt.fit_temperature(overconfident, y) < 5.0
    underconfident = calibrated * 0.3
    assert mt.temperature_helps(underconfident, y)
    assert 0.2 < mt.fit_temperature(underconfident, y) < 0.4
    # scores that are calibrated already: either no temperature, or one that changes nothing much
    assert not mt.temperature_helps(calibrated, y) or 0.9 < mt.fit_temperature(calibrated, y) < 1.1
