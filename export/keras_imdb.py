"""The TensorFlow text-classification tutorial model, trained and exported.

Embedding(10000, 16) -> GlobalAveragePooling1D -> Dense(16, relu) ->
Dense(1, sigmoid); Adam, binary cross-entropy, batch 512, up to 40 epochs
with 10,000 (shuffled) training reviews held out, keeping the best
validation epoch. Reviews go through the runtime's own
:class:`~edgeclf.tokenizers.words.KerasWordTokenizer` and padding, so the
served model sees exactly the arrays it was trained on.

Export uses ``tf2onnx.convert.from_function`` with an explicit input
signature (``from_keras`` fails on Keras 3), checks parity against Keras,
quantizes to int8 and writes a bundle with measured metrics.

    edgeclf export keras-imdb --data ../shared/data/imdb --out runtime/models/keras-imdb
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgeclf._ort import import_onnxruntime
from edgeclf.classifier import pad
from edgeclf.tokenizers.words import KERAS_FILTERS, KerasWordTokenizer

from . import bundle_writer, model_card, require
from .data import load_imdb, shared_data_dir

NUM_WORDS = 10_000
MAX_LENGTH = 256
INPUT_NAME = "input_ids"
OUTPUT_NAME = "probability"
LABELS = ["negative", "positive"]


def load_word_index(path: str | os.PathLike[str] | None = None) -> dict[str, int]:
    """The Keras IMDB word index (word -> rank): a local JSON, else the Keras download."""
    if path is None:
        shared = shared_data_dir()
        if shared is not None and (shared / "keras" / "imdb_word_index.json").is_file():
            path = shared / "keras" / "imdb_word_index.json"
    if path is not None:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    keras = require("keras", "downloading the Keras word index")
    return keras.datasets.imdb.get_word_index()


def vocab_from_word_index(word_index: dict[str, int], num_words: int = NUM_WORDS) -> list[str]:
    """Words whose id (rank + 3) is below ``num_words``, in rank order."""
    ranked = sorted(word_index.items(), key=lambda kv: kv[1])
    return [w for w, r in ranked if r + 3 < num_words]


def vocab_from_texts(texts: list[str], num_words: int = NUM_WORDS) -> list[str]:
    """Fallback without a word index: rank words by frequency in the training texts."""
    from collections import Counter

    tok = KerasWordTokenizer([], max_length=MAX_LENGTH)
    counts: Counter[str] = Counter()
    for t in texts:
        counts.update(tok.words(t))
    return [w for w, _ in counts.most_common(num_words - 4)]


def encode(tok: KerasWordTokenizer, texts: list[str]) -> np.ndarray:
    ids, _ = pad(tok.encode_batch(texts), MAX_LENGTH, tok.pad_id)
    return ids.astype(np.int32)


def build_model(num_words: int = NUM_WORDS) -> Any:
    keras = require("keras", "training the Keras IMDB model")
    model = keras.Sequential(
        [
            keras.Input(shape=(MAX_LENGTH,), dtype="int32", name=INPUT_NAME),
            keras.layers.Embedding(num_words, 16),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def train(
    data: str | os.PathLike[str] | None = None,
    *,
    word_index: str | os.PathLike[str] | None = None,
    epochs: int = 40,
    batch_size: int = 512,
    validation: int = 10_000,
    seed: int = 42,
    limit: int | None = None,
    monitor: str = "val_accuracy",
    verbose: int = 0,
) -> tuple[Any, KerasWordTokenizer, dict[str, Any]]:
    """Train the tutorial model; returns (model, tokenizer, history summary).

    ``limit`` trains on the first ``limit`` shuffled reviews (tests use it).
    """
    keras = require("keras", "training the Keras IMDB model")
    keras.utils.set_random_seed(seed)
    texts, labels = load_imdb("train", data)
    try:
        vocab = vocab_from_word_index(load_word_index(word_index))
        vocab_source = "keras imdb_word_index.json"
    except (OSError, ImportError):
        vocab = vocab_from_texts(texts)
        vocab_source = "training-text frequencies"
    tok = KerasWordTokenizer(vocab, max_length=MAX_LENGTH)
    order = np.random.default_rng(seed).permutation(len(texts))  # CSVs are sorted by label
    if limit is not None:
        order = order[:limit]
        validation = min(validation, len(order) // 3)
    x = encode(tok, [texts[i] for i in order])
    y = np.asarray([labels[i] for i in order], dtype=np.float32)
    x_val, y_val, x_tr, y_tr = x[:validation], y[:validation], x[validation:], y[validation:]

    best: dict[str, Any] = {"epoch": -1, "value": None, "weights": None}
    mode_max = "acc" in monitor

    class KeepBest(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            value = (logs or {}).get(monitor)
            if value is None:
                return
            better = best["value"] is None or (value > best["value"] if mode_max else value < best["value"])
            if better:
                best.update(epoch=epoch, value=float(value), weights=self.model.get_weights())

    model = build_model()
    t0 = time.perf_counter()
    hist = model.fit(
        x_tr,
        y_tr,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=(x_val, y_val),
        callbacks=[KeepBest()],
        verbose=verbose,
    )
    model.set_weights(best["weights"])
    summary = {
        "train_reviews": len(x_tr),
        "validation_reviews": len(x_val),
        "epochs_run": len(hist.history["loss"]),
        "best_epoch": best["epoch"] + 1,
        f"best_{monitor}": best["value"],
        "train_seconds": round(time.perf_counter() - t0, 1),
        "vocab_source": vocab_source,
        "seed": seed,
    }
    return model, tok, summary


def to_onnx(model: Any, path: Path, opset: int = 17) -> Path:
    """Convert with tf2onnx.from_function and fixed input/output names."""
    tf = require("tensorflow", "exporting the Keras model")
    tf2onnx = require("tf2onnx", "exporting the Keras model")
    onnx = require("onnx", "exporting the Keras model")
    spec = (tf.TensorSpec((None, MAX_LENGTH), tf.int32, name=INPUT_NAME),)

    @tf.function(input_signature=spec)
    def serve(input_ids: Any) -> Any:
        return model(input_ids, training=False)

    proto, _ = tf2onnx.convert.from_function(serve, input_signature=spec, opset=opset)
    _rename_io(proto, INPUT_NAME, OUTPUT_NAME)
    proto.producer_name = "edgeclf.export.keras_imdb (tf2onnx)"
    onnx.checker.check_model(proto)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(path))
    return path


def _rename_io(proto: Any, input_name: str, output_name: str) -> None:
    renames = {proto.graph.input[0].name: input_name, proto.graph.output[0].name: output_name}
    for value in (*proto.graph.input, *proto.graph.output):
        value.name = renames.get(value.name, value.name)
    for node in proto.graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]


def parity(model: Any, onnx_path: Path, x: np.ndarray) -> float:
    """Max |keras - onnxruntime| over ``x``."""
    ort = import_onnxruntime()

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    want = model.predict(x, batch_size=512, verbose=0).reshape(-1)
    got = sess.run([OUTPUT_NAME], {INPUT_NAME: x})[0].reshape(-1)
    return float(np.abs(want - got).max())


def export_bundle(
    out: str | os.PathLike[str],
    data: str | os.PathLike[str] | None = None,
    *,
    word_index: str | os.PathLike[str] | None = None,
    epochs: int = 40,
    seed: int = 42,
    limit: int | None = None,
    eval_limit: int | None = None,
    parity_reviews: int = 2000,
    verbose: int = 0,
    log: Any = print,
) -> dict[str, Any]:
    """Train, export, check parity, quantize, evaluate and write the bundle.

    Returns the manifest. Raises if parity or the int8 gate fails.
    """
    from edgeclf.quantize.int8 import quantize_embedding_only

    root = bundle_writer.fresh_dir(out)
    model, tok, summary = train(
        data, word_index=word_index, epochs=epochs, seed=seed, limit=limit, verbose=verbose
    )
    log(f"trained: {summary}")
    vocab_words = sorted(tok._index, key=tok._index.__getitem__)
    (root / "vocab.json").write_text(json.dumps(vocab_words, ensure_ascii=False), encoding="utf-8")

    fp32 = to_onnx(model, root / "model.onnx")
    test_texts, test_labels = _test_split(data, eval_limit, seed)
    x_test = encode(tok, test_texts)
    checks = _check_parity(model, fp32, x_test, parity_reviews, log)
    keras_prob = model.predict(x_test, batch_size=512, verbose=0).reshape(-1)
    checks["keras_test_accuracy"] = float(((keras_prob > 0.5) == np.asarray(test_labels)).mean())

    quantize_embedding_only(fp32, root / "model.int8.onnx")
    manifest = _manifest(root, summary, checks)
    bundle_writer.save(root, manifest)

    source = Path(data) if data not in (None, "download") else (shared_data_dir() or Path("<imdb>")) / "imdb"
    command = f"edgeclf evaluate {root} --data {os.path.relpath(source)}/test.csv.gz" + (
        f" (random {eval_limit} of them, seed {seed})" if eval_limit else ""
    )
    results = bundle_writer.record_metrics(
        root,
        manifest,
        test_texts,
        test_labels,
        dataset=f"IMDB test ({len(test_texts):,} reviews)",
        measured_by=command,
        log=log,
    )
    gate_int8(results)
    return manifest


def _test_split(
    data: str | os.PathLike[str] | None, eval_limit: int | None, seed: int
) -> tuple[list[str], list[int]]:
    """The IMDB test reviews, or a seeded random ``eval_limit`` of them."""
    test_texts, test_labels = load_imdb("test", data)
    if eval_limit is not None:
        rng = np.random.default_rng(seed)
        pick = rng.permutation(len(test_texts))[:eval_limit]
        test_texts = [test_texts[i] for i in pick]
        test_labels = [test_labels[i] for i in pick]
    return test_texts, test_labels


def _check_parity(model: Any, fp32: Path, x_test: np.ndarray, reviews: int, log: Any) -> dict[str, Any]:
    """Keras against onnxruntime on the first ``reviews`` test reviews; raises past 1e-5."""
    diff = parity(model, fp32, x_test[:reviews])
    n = min(reviews, len(x_test))
    log(f"parity keras vs onnxruntime on {n} reviews: max abs diff {diff:.2e}")
    if diff > 1e-5:
        raise RuntimeError(f"ONNX export differs from Keras by {diff:.2e} (> 1e-5)")
    return {"parity": {"reviews": n, "max_abs_diff": diff}}


def _manifest(root: Path, summary: dict[str, Any], checks: dict[str, Any]) -> dict[str, Any]:
    """The keras-imdb manifest with its fp32 and int8 variants (metrics are stamped later)."""
    manifest = bundle_writer.new_manifest(
        root,
        name="keras-imdb",
        task="sentiment",
        labels=LABELS,
        tokenizer_kind="keras-words",
        tokenizer_files={"vocab": "vocab.json"},
        tokenizer_config={
            "start_id": 1,
            "oov_id": 2,
            "index_from": 4,
            "num_words": NUM_WORDS,
            "truncating": "pre",
            "filters": KERAS_FILTERS,
        },
        max_length=MAX_LENGTH,
        inputs=[{"name": INPUT_NAME, "dtype": "int32", "shape": ["batch", MAX_LENGTH]}],
        outputs=[{"name": OUTPUT_NAME, "dtype": "float32", "shape": ["batch", 1]}],
        output_kind="sigmoid",
        padding="max_length",
        description="IMDB movie-review sentiment: the TensorFlow text-classification tutorial model "
        "(Embedding 10000x16, average pooling, Dense 16, Dense 1).",
        model_card=model_card.keras_imdb(),
        extra={"training": summary, **checks},
    )
    bundle_writer.add_variant(
        manifest, root, "fp32", "model.onnx", precision="fp32", description="tf2onnx export, float32"
    )
    bundle_writer.add_variant(
        manifest,
        root,
        "int8",
        "model.int8.onnx",
        default=True,
        precision="int8",
        description="dynamic int8: embedding table (Gather) quantized; Dense layers float, "
        "so a review's score never depends on its batch",
    )
    # CPU only, also under providers="auto" on a GPU machine: measured on an H200, the
    # 16-thread CPU ran this 160 KB model as fast as CUDA or faster (docs/gpu.md)
    manifest["provider_variants"] = {"cpu": "int8"}
    return manifest


def gate_int8(
    results: dict[str, dict[str, Any]], max_drop: float = 0.005, min_agreement: float = 0.985
) -> None:
    fp, q = results["fp32"], results["int8"]
    drop = fp["accuracy"] - q["accuracy"]
    if drop > max_drop or q["agreement_with_fp32"] < min_agreement:
        raise RuntimeError(
            f"int8 gate failed: accuracy {q['accuracy']:.4f} vs fp32 {fp['accuracy']:.4f} "
            f"(max drop {max_drop}), agreement {q['agreement_with_fp32']:.4f} (min {min_agreement})"
        )
