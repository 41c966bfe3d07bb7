"""Temperature scaling (issue 11): fitted on validation data, stored per variant, applied by the runtime."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import edgeclf
from edgeclf import bundle

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
