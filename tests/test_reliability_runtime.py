"""One classifier under 16 threads; resource limits; memory over many predictions."""

from __future__ import annotations

import pytest

import edgeclf
from edgeclf.classifier import InputError

from . import hostile


def test_16_threads_x_1000_predictions_equal_the_serial_results() -> None:
    """Single texts per call on both sides: the same kernel, so bit-for-bit equal."""
    result = hostile.threads_vs_serial(threads=16, per_thread=1000)
    assert result["errors"] == []
    assert result["calls"] == 16_000 and result["mismatches"] == 0, result


def test_max_chars_and_batch_size_limits() -> None:
    clf = edgeclf.load("keras-imdb", providers="cpu", max_chars=1000, batch_size=3)
    with pytest.raises(
        InputError, match=r"text 2 \(0-based index\): text has 1,001 characters, over max_chars 1,000"
    ) as info:
        clf.predict(["fine", "good", "x" * 1001])
    assert info.value.index == 2
    # a batch size smaller than the input only splits the work: same results as one big batch
    texts = [t[:300] for t in hostile.reviews()[:10]]
    big = edgeclf.load("keras-imdb", providers="cpu", batch_size=256)
    assert clf.predict_proba(texts).argmax(1).tolist() == big.predict_proba(texts).argmax(1).tolist()
    for bad in (0, -1):
        with pytest.raises(ValueError, match="batch_size must be >= 1"):
            edgeclf.load("keras-imdb", batch_size=bad)


def test_no_memory_growth_over_a_million_predictions() -> None:
    """RSS after 10% of the calls vs at the end, in a fresh process.

    1,000,000 short texts in batches of 1,000: 11-23 s on 2 cores (measured,
    with and without a training run beside it), so it runs by default rather
    than behind the ``slow`` marker.
    """
    result = hostile.prediction_memory(1_000_000, batch=1000)
    assert result["predictions"] == 1_000_000
    assert result["growth_mb"] < 16, result
