"""The dynamic batcher on a real Classifier (standard library only: runs without the serve extra)."""

from __future__ import annotations

import numpy as np
import pytest

import edgeclf
from edgeclf.serve.batcher import Batcher, Closed

TEXTS = [
    f"review {i}: {'a wonderful, moving film' if i % 2 else 'a dull and pointless mess'}" for i in range(40)
]


@pytest.fixture(scope="module")
def clf():
    return edgeclf.load("keras-imdb", batch_size=64)


def test_requests_merge_up_to_max_batch_and_each_gets_its_own_rows(clf):
    b = Batcher(clf.predict_proba, max_batch=16, max_wait_s=0.5)
    try:
        futures = [b.submit([t]) for t in TEXTS]  # 40 one-text requests within microseconds
        got = np.concatenate([f.result(30) for f in futures])
    finally:
        b.close()
    assert np.abs(got - clf.predict_proba(TEXTS)).max() < 1e-6
    assert (b.stats.requests, b.stats.texts, b.stats.runs) == (40, 40, 3)  # 16 + 16 + 8


def test_a_request_larger_than_max_batch_runs_whole_and_alone(clf):
    b = Batcher(clf.predict_proba, max_batch=8, max_wait_s=0.2)
    try:
        small, big = b.submit(TEXTS[:3]), b.submit(TEXTS[:20])
        assert small.result(30).shape == (3, 2) and big.result(30).shape == (20, 2)
    finally:
        b.close()
    assert b.stats.runs == 2


def test_without_batching_every_request_is_its_own_run(clf):
    b = Batcher(clf.predict_proba, max_batch=64, max_wait_s=0.5, enabled=False)
    try:
        futures = [b.submit([t]) for t in TEXTS[:10]]
        for f in futures:
            f.result(30)
    finally:
        b.close()
    assert b.stats.runs == 10


def test_a_failing_run_fails_its_requests_only_and_the_worker_lives_on(clf):
    b = Batcher(clf.predict_proba, max_batch=64, max_wait_s=0.0)
    try:
        bad = b.submit(["fine", 42])  # the classifier's own InputError
        with pytest.raises(edgeclf.InputError, match="expected a string"):
            bad.result(30)
        assert b.submit(["still working"]).result(30).shape == (1, 2)
    finally:
        b.close()


def test_close_answers_what_is_queued_then_refuses(clf):
    b = Batcher(clf.predict_proba, max_batch=4, max_wait_s=0.3)
    futures = [b.submit([t]) for t in TEXTS[:10]]
    b.close(timeout=30)
    assert all(f.done() and f.result().shape == (1, 2) for f in futures)
    with pytest.raises(Closed):
        b.submit(["too late"])
