"""edgeclf on a real Spark (local[2]): the same labels and scores as the local API, row by row.

One SparkSession for the module (a JVM start is most of the cost); the
Python workers are real forked pyspark workers fed by Arrow, exactly as on a
cluster. Needs ``pip install 'edgeclf[spark]'`` and Java 17; CI installs both.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import edgeclf
from edgeclf.bundle import embedded_root

if importlib.util.find_spec("pyspark") is None or importlib.util.find_spec("pyarrow") is None:
    pytest.skip("needs pip install 'edgeclf[spark]' (pyspark, pandas, pyarrow)", allow_module_level=True)
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip(
        "needs a Java runtime for Spark (apt-get install openjdk-17-jre-headless)", allow_module_level=True
    )

from edgeclf.integrations.spark import predict, text_error, worker_stats


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable  # workers import this checkout's edgeclf
    session = (
        SparkSession.builder.master("local[2]")
        .appName("edgeclf-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def bad_rows(long_text: str) -> list[tuple[str, str | None]]:
    return [("bad-null", None), ("bad-empty", ""), ("bad-blank", " \t\n "), ("bad-long", long_text)]


def imdb(shared: Path, n: int) -> list[dict[str, str]]:
    from edgeclf.export.data import read_csv_rows

    return read_csv_rows(shared / "imdb" / "test.csv.gz")[:n]


def test_imdb_reviews_match_the_local_api_row_by_row(spark, shared):
    """2,000 real reviews + bad rows, 4 partitions, 300-row Arrow batches, default keras-imdb int8."""
    rows = imdb(shared, 2000)
    max_chars = 5000  # real reviews over it become error rows, as with `edgeclf predict --max-chars 5000`
    data = [(r["id"], r["text"], r["label"]) for r in rows]
    data += [(i, t, "x") for i, t in bad_rows("great " * 1000)]
    df = spark.createDataFrame(data, "id string, text string, true_label string").repartition(4)
    stats = worker_stats(spark)
    got = predict(df, max_chars=max_chars, arrow_batch_rows=300, stats=stats).collect()

    assert len(got) == len(data)
    assert sorted(r.id for r in got) == sorted(d[0] for d in data)  # no row dropped or duplicated
    by_id = {r.id: r for r in got}
    for rid, text, true_label in data:  # every input column passes through untouched
        assert (by_id[rid].text, by_id[rid].true_label) == (text, true_label)

    clf = edgeclf.load("keras-imdb", batch_size=256)
    good = [d for d in data if text_error(d[1], max_chars) is None]
    too_long = [d[0] for d in data if d[1] and len(d[1]) > max_chars]
    assert len(too_long) >= 5 and "bad-long" in too_long  # real reviews among them
    probs = clf.predict_proba([d[1] for d in good])
    for (rid, _, _), p in zip(good, probs, strict=True):
        r = by_id[rid]
        j = int(p.argmax())
        assert r.error is None and r.label == clf.labels[j], rid
        # scores agree to float32 rounding: onnxruntime takes a different kernel for a batch of one
        # text (measured: 2.4e-6), which ends an Arrow batch whose good rows are 256k + 1
        assert abs(r.score - float(p[j])) <= 5e-6, (rid, r.score, float(p[j]))
    for rid, text, _ in data:
        if text_error(text, max_chars) is not None:
            r = by_id[rid]
            assert (r.label, r.score, r.error) == (None, None, text_error(text, max_chars))
    assert by_id["bad-null"].error == "no text"
    assert by_id["bad-blank"].error == "empty text"
    assert by_id["bad-long"].error == "text has 6,000 characters, over max_chars 5,000"

    # the bundle was loaded once per Python worker process, not once per batch or task
    per_worker = stats.value
    assert sum(w["rows"] for w in per_worker.values()) == len(data)
    assert all(w["loads"] == 1 for w in per_worker.values()), per_worker
    assert sum(w["tasks"] for w in per_worker.values()) == 4 > len(per_worker)  # workers ran several tasks
    assert sum(w["batches"] for w in per_worker.values()) >= 8


def test_weibo_posts_through_albert_exactly_as_the_local_api(spark, shared):
    """The 602 Weibo test posts (16 empty) with albert-zh-rumor, probabilities on.

    One text per ONNX run on both sides: an int8 ALBERT quantizes activations per
    batch, so a score depends on the texts that share its batch, in the local API too.
    """
    from edgeclf.export.data import read_csv_rows

    rows = read_csv_rows(shared / "zh-rumor" / "weibo_test.csv")
    data = [(r["id"], r["text"] or None if i % 2 else r["text"]) for i, r in enumerate(rows)]
    df = spark.createDataFrame(data, "id string, text string").repartition(3)
    got = predict(df, "albert-zh-rumor", id_col="id", batch_size=1, probabilities=True).collect()
    assert [c for c in got[0].asDict()] == ["id", "label", "score", "probabilities", "error"]
    assert sorted(r.id for r in got) == sorted(d[0] for d in data)

    clf = edgeclf.load("albert-zh-rumor", batch_size=1)
    good = [d for d in data if d[1] and d[1].strip()]
    assert len(data) - len(good) == 16
    by_id = {r.id: r for r in got}
    for (rid, _), pred in zip(good, clf.predict([d[1] for d in good]), strict=True):
        r = by_id[rid]
        assert (r.label, r.score, r.probabilities, r.error) == (
            pred.label,
            pred.score,
            pred.probabilities,
            None,
        )
    errors = sorted(r.error for r in got if r.error is not None)
    assert len(errors) == 16 and set(errors) <= {"empty text", "no text"}


def test_directory_bundle_is_shipped_and_verified_on_the_executors(spark, tmp_path):
    src = tmp_path / "my-bundle"
    shutil.copytree(embedded_root() / "keras-imdb", src)
    texts = ["A moving, beautifully acted film.", "Dull, and far too long.", "An odd one."]
    rows = [(str(i), t) for i, t in enumerate(texts)]
    df = spark.createDataFrame(rows, "id string, text string").coalesce(1)  # one batch, as in the local call
    want = edgeclf.load("keras-imdb").predict(texts)
    got = predict(df, str(src)).orderBy("id").collect()
    assert [(r.label, r.score) for r in got] == [(p.label, p.score) for p in want]

    # a changed model file in a shipped copy: refused by the executor's checksum check
    bad = tmp_path / "bad-bundle"
    shutil.copytree(src, bad)
    model = bad / "model.int8.onnx"
    blob = bytearray(model.read_bytes())
    blob[-10] ^= 0xFF
    model.write_bytes(bytes(blob))
    with pytest.raises(Exception, match="checksum mismatch"):
        predict(df, str(bad)).collect()

    # shared storage (ship=False): the manifest changed after the driver read it
    shared_copy = tmp_path / "shared-bundle"
    shutil.copytree(src, shared_copy)
    lazy = predict(df, str(shared_copy), ship=False)
    manifest = json.loads((shared_copy / "manifest.json").read_text())
    manifest["description"] += " (edited)"
    (shared_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(Exception, match="differs from the driver's"):
        lazy.collect()


def test_a_multi_label_model_joins_its_labels(spark, tmp_path):
    pytest.importorskip("onnx", reason="builds its model with onnx (pip install 'edgeclf[export]')")
    from .multilabel_bundle import build_bundle, expected

    model = build_bundle(tmp_path / "genres")
    texts = ["A car chase and an explosion.", "Funny, then tears.", "A quiet evening.", ""]
    df = spark.createDataFrame([(str(i), t) for i, t in enumerate(texts)], "id string, text string")
    got = predict(df, str(model), probabilities=True).orderBy("id").collect()
    assert [r.label for r in got[:3]] == ["|".join(expected(t)) for t in texts[:3]]
    assert got[1].label == "comedy|drama" and got[2].label == "" and got[3].error == "empty text"
    assert got[0].score == max(got[0].probabilities.values())


def test_long_texts_reaches_the_executors_classifier(spark):
    df = spark.createDataFrame([("1", "A fine film.")], "id string, text string")
    with pytest.raises(ValueError, match="long_texts must be one of truncate, windows"):
        predict(df, long_texts="pieces")
    # keras-imdb reads a fixed window: the executor's load refuses windows, so the option got there
    with pytest.raises(Exception, match="needs a transformer bundle"):
        predict(df, "keras-imdb", long_texts="windows").collect()


def test_bad_arguments_fail_on_the_driver(spark):
    df = spark.createDataFrame([("1", "fine", 3)], "id string, text string, n int")
    with pytest.raises(ValueError, match="no 'body' column"):
        predict(df, text_col="body")
    with pytest.raises(ValueError, match="'n' is int, not string"):
        predict(df, text_col="n")
    with pytest.raises(ValueError, match="already has a 'label' column"):
        predict(df.withColumnRenamed("n", "label"))
    with pytest.raises(edgeclf.BundleError, match="fp64"):
        predict(df, variant="fp64")


def test_spark_predict_command_csv_to_parquet(spark, tmp_path, capsys):
    """`edgeclf spark-predict` (through edgeclf.cli.main, in this process's Spark session to save a
    JVM start): CSV with quoted newlines and doubled quotes, no id column, bad rows."""
    import pandas as pd

    from edgeclf.cli import main

    src = tmp_path / "in.csv"
    src.write_text(
        'text,extra\n"A moving, beautifully acted film.",1\n,2\n"Dull, ""boring""\nand far too long.",3\n'
        '"     ",4\nThe finest hour of cinema.,5\n',
        encoding="utf-8",
    )
    out = tmp_path / "out.parquet"
    argv = ["spark-predict", str(src), "-o", str(out), "--master", "local[2]"]
    assert main(argv) == 1  # written, with error rows
    assert "5 rows" in capsys.readouterr().err
    got = pd.read_parquet(out).sort_values("id")
    assert list(got.columns) == ["id", "label", "score", "error"]
    assert got["id"].tolist() == [1, 2, 3, 4, 5]  # numbered in file order, as `edgeclf predict` does
    assert got["error"].tolist()[1] == "no text" and got["error"].tolist()[3] == "empty text"
    texts = [
        "A moving, beautifully acted film.",
        'Dull, "boring"\nand far too long.',
        "The finest hour of cinema.",
    ]
    clf = edgeclf.load("keras-imdb")
    want = clf.predict_proba(texts)
    good = got[got["error"].isna()]
    assert good["label"].tolist() == [clf.labels[int(p.argmax())] for p in want]
    assert np.abs(good["score"].to_numpy() - want.max(axis=1)).max() <= 5e-6

    assert main(argv) == 2  # never overwrites without --overwrite
    assert "exists" in capsys.readouterr().err
    parquet_in = tmp_path / "in.parquet"
    pd.DataFrame({"id": ["a", "b"], "text": ["Superb.", None]}).to_parquet(parquet_in)
    assert main(["spark-predict", str(parquet_in), "-o", str(tmp_path / "o2"), "--probabilities"]) == 1
    got = pd.read_parquet(tmp_path / "o2").sort_values("id")
    assert got["id"].tolist() == ["a", "b"] and got["error"].tolist()[1] == "no text"
    assert set(dict(got["probabilities"].iloc[0])) == {"negative", "positive"}  # a Parquet map


def test_spark_predict_without_the_extra_names_it(tmp_path):
    script = (
        "import sys; sys.modules['pyspark'] = None\n"
        "from edgeclf.cli import main\n"
        f"sys.exit(main(['spark-predict', {str(tmp_path / 'x.csv')!r}, '-o', {str(tmp_path / 'o')!r}]))\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "pip install 'edgeclf[spark]'" in r.stderr


def test_rows_are_numbered_in_read_order_across_partitions(spark):
    from edgeclf.integrations.spark_cli import with_row_numbers

    df = spark.range(0, 1000, numPartitions=4).withColumnRenamed("id", "x")
    got = with_row_numbers(df, "id").collect()
    assert [r.id for r in got] == [r.x + 1 for r in got] == list(range(1, 1001))
