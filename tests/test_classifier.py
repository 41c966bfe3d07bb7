from __future__ import annotations

import threading

import numpy as np
import pytest

import edgeclf
from edgeclf.classifier import InputError, pad
from edgeclf.session import ProviderError

from .conftest import DATA

POSITIVE = "One of the best films I have seen in years: brilliant acting, a wonderful story, superb."
NEGATIVE = "Awful. The worst movie ever made, boring, stupid and a total waste of time."


def sample_texts() -> list[str]:
    import csv

    with open(DATA / "imdb_sample.csv", encoding="utf-8", newline="") as fh:
        return [r["text"] for r in csv.DictReader(fh)]


@pytest.fixture(scope="module", params=["fp32", "int8"])
def clf(request):
    return edgeclf.load("keras-imdb", variant=request.param, providers="cpu")


def test_predicts_obvious_sentiment(clf):
    pos, neg = clf.predict([POSITIVE, NEGATIVE])
    assert (pos.label, neg.label) == ("positive", "negative")
    assert pos.score > 0.8 and neg.score > 0.8
    assert pos.probabilities["positive"] == pytest.approx(pos.score)
    assert sum(pos.probabilities.values()) == pytest.approx(1.0)
    alone = clf.predict(POSITIVE)[0]  # a bare string is one text
    assert alone.label == pos.label and alone.score == pytest.approx(pos.score, abs=1e-6)


def test_real_reviews_match_their_labels_mostly(clf):
    import csv

    with open(DATA / "imdb_sample.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    preds = clf.predict([r["text"] for r in rows])
    right = sum(p.label_id == int(r["label"]) for p, r in zip(preds, rows, strict=True))
    assert right >= len(rows) - 2


def test_a_review_does_not_depend_on_its_batch(clf):
    texts = sample_texts() * 3 + [POSITIVE, NEGATIVE, "meh", "x" * 5000]
    alone = np.vstack([clf.predict_proba([t]) for t in texts])
    rng = np.random.default_rng(0)
    for _ in range(3):
        order = rng.permutation(len(texts))
        together = clf.predict_proba([texts[i] for i in order])
        # same labels; scores equal up to float rounding of the batch-size-specific GEMM kernel
        np.testing.assert_array_equal(together.argmax(1), alone[order].argmax(1))
        np.testing.assert_allclose(together, alone[order], rtol=0, atol=1e-5)


def test_empty_input_and_bad_types(clf):
    assert clf.predict([]) == []
    assert clf.predict_proba([]).shape == (0, 2)
    with pytest.raises(InputError, match=r"text 1 \(0-based index\): no text"):
        clf.predict(["ok", None])
    with pytest.raises(InputError, match=r"text 1 \(0-based index\): expected a string, got int"):
        clf.predict_proba(["ok", 3])


def test_empty_text_is_refused_as_by_every_front_end(clf):
    """The API refuses what the CLI, serve and Spark refuse, naming the 0-based index."""
    for method in (clf.predict, clf.predict_proba):
        with pytest.raises(InputError, match=r"^text 0 \(0-based index\): empty text$") as info:
            method([""])
        assert isinstance(info.value, ValueError) and info.value.index == 0
        with pytest.raises(InputError, match=r"^text 2 \(0-based index\): empty text$"):
            method(["fine", "good", " \n\t"])


def test_max_chars_is_enforced():
    clf = edgeclf.load("keras-imdb", max_chars=100)
    with pytest.raises(
        InputError, match=r"text 0 \(0-based index\): text has 101 characters, over max_chars 100"
    ):
        clf.predict(["a" * 101])


def test_threads_share_one_classifier():
    clf = edgeclf.load("keras-imdb")
    texts = [*sample_texts(), POSITIVE, NEGATIVE]
    serial = clf.predict_proba(texts)
    errors: list[BaseException] = []
    barrier = threading.Barrier(16)

    def worker(k: int) -> None:
        try:
            barrier.wait()
            for i in range(60):
                j = (k + i) % len(texts)
                got = clf.predict_proba(texts[j:] + texts[:j])
                np.testing.assert_array_equal(got, np.roll(serial, -j, axis=0))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_cuda_without_gpu_is_an_error_not_a_fallback():
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with pytest.raises(ProviderError, match="'cuda' is not available"):
        edgeclf.load("keras-imdb", providers="cuda")
    assert edgeclf.load("keras-imdb", providers="auto").providers == ["CPUExecutionProvider"]


def test_threads_option_and_bad_values():
    assert edgeclf.load("keras-imdb", threads=1).predict(POSITIVE)[0].label == "positive"
    with pytest.raises(ValueError):
        edgeclf.load("keras-imdb", threads=0)
    with pytest.raises(ValueError):
        edgeclf.load("keras-imdb", batch_size=0)


def test_pad_right_aligns_and_masks():
    ids, mask = pad([[5, 6, 7], [8]], None, 0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert mask.tolist() == [[True, True, True], [True, False, False]]
    ids, _ = pad([[1]], 4, 9)
    assert ids.tolist() == [[1, 9, 9, 9]]
    with pytest.raises(ValueError):
        pad([[1, 2, 3]], 2, 0)


class _GatedSession:
    """The real session, holding its first ``run`` until the test opens the gate."""

    def __init__(self, inner) -> None:
        self.inner, self.inside, self.gate, self.runs = inner, threading.Event(), threading.Event(), 0

    def run(self, *args, **kwargs):
        self.runs += 1
        if self.runs == 1:
            self.inside.set()
            assert self.gate.wait(60), "the test never opened the gate"
        return self.inner.run(*args, **kwargs)


def test_close_lets_a_running_prediction_finish():
    """close() between two sub-batches of a call on another thread: that call still answers."""
    clf = edgeclf.load("keras-imdb", batch_size=1)  # one session.run per text
    texts = [POSITIVE, NEGATIVE, "A fine film."]
    want = clf.predict_proba(texts)
    gated = clf.session = _GatedSession(clf.session)
    got: list[object] = []
    worker = threading.Thread(target=lambda: got.append(_call(clf.predict_proba, texts)))
    worker.start()
    assert gated.inside.wait(60), "the prediction never reached the session"
    clf.close()  # the worker is inside its first of three runs
    gated.gate.set()
    worker.join(60)
    assert gated.runs == 3 and len(got) == 1
    assert not isinstance(got[0], BaseException), got[0]
    np.testing.assert_array_equal(got[0], want)
    with pytest.raises(edgeclf.ClosedError):  # calls that start after close() are refused
        clf.predict_proba(texts)


def _call(fn, *args):
    try:
        return fn(*args)
    except BaseException as exc:  # handed to the test thread
        return exc
