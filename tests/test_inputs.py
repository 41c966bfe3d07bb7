"""Inputs people have: JSON Lines, TSV, other delimiters, headerless files, other encodings;
and the command line saying what to do about each."""

from __future__ import annotations

import csv
import inspect
import io
import json
from pathlib import Path

import pytest

import edgeclf
from edgeclf import bundle
from edgeclf.cli import build_parser, main
from edgeclf.texts import DEFAULT_MAX_CHARS

GOOD = "A wonderful, moving film with brilliant acting."
BAD = "Dreadful and boring, a waste of two hours."


def predict(tmp_path: Path, name: str, data: bytes, *args: str) -> tuple[int, list[dict[str, str]]]:
    src = tmp_path / name
    src.write_bytes(data)
    out = tmp_path / "out.csv"
    rc = main(["predict", str(src), "-o", str(out), "-q", *args])
    rows = (
        list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"), newline=""))) if out.exists() else []
    )
    return rc, rows


JSONL = "\n".join(
    [
        json.dumps({"id": "a", "text": GOOD}),
        "",
        json.dumps({"id": "b", "text": ""}),
        '{"id": "c", "text": ',
        json.dumps({"id": 7, "text": BAD}),
        json.dumps([1, 2]),
        json.dumps({"id": "d", "body": GOOD}),
        json.dumps({"text": 5}),
        json.dumps({"text": GOOD + " \u2028 still the same line"}),
    ]
).encode()


@pytest.mark.parametrize(
    "name, flags", [("in.jsonl", []), ("in.ndjson", []), ("in.txt", ["--input-format", "jsonl"])]
)
def test_jsonl_input_by_extension_or_flag(tmp_path, name, flags):
    rc, rows = predict(tmp_path, name, JSONL, *flags)
    assert rc == 1
    got = {r["id"]: (r["label"], r["error"]) for r in rows}
    assert [r["id"] for r in rows] == ["a", "b", "3", "7", "5", "d", "7", "8"]
    assert got["a"][0] == "positive" and rows[3]["label"] == "negative"  # id 7 (a number) as "7"
    assert got["b"] == ("", "row 2 (line 3): empty text")
    assert rows[2]["error"].startswith("row 3 (line 4): invalid JSON")
    assert rows[4]["error"] == 'row 5 (line 6): expected a JSON object like {"text": "..."}, got an array'
    assert rows[5]["error"].startswith("row 6 (line 7): no 'text' field (fields: 'id', 'body')")
    assert rows[6]["error"] == "row 7 (line 8): expected a string, got int"
    assert rows[7]["label"] == "positive" and not rows[7]["error"]  # U+2028 inside a JSON string


def test_jsonl_with_several_chunks_and_jobs_matches_one_chunk(tmp_path):
    lines = [
        json.dumps({"id": f"r{i}", "text": (GOOD, BAD)[i % 2] + ' "quoted" ' * (i % 3)}) for i in range(300)
    ]
    data = "\n".join(lines).encode() + b"\n"
    rc1, one = predict(tmp_path, "in.jsonl", data)
    rc2, many = predict(tmp_path, "in.jsonl", data, "--chunk-rows", "7", "--jobs", "2")
    assert rc1 == rc2 == 0 and one == many and len(one) == 300


TSV = f"id\ttext\n1\t{GOOD}\n2\t{BAD}\n".encode()


@pytest.mark.parametrize(
    "name, flags",
    [("in.tsv", []), ("in.TSV", []), ("in.txt", ["--delimiter", "\\t"]), ("in.txt", ["--delimiter", "tab"])],
)
def test_tsv_by_extension_and_tab_spelled_out(tmp_path, name, flags):
    rc, rows = predict(tmp_path, name, TSV, *flags)
    assert rc == 0 and [(r["id"], r["label"]) for r in rows] == [("1", "positive"), ("2", "negative")]


@pytest.mark.parametrize("sep, flag", [(";", "';'"), ("\t", "tab"), ("|", "'|'")])
def test_a_one_column_header_with_another_delimiter_suggests_it(tmp_path, capsys, sep, flag):
    rc, _ = predict(tmp_path, "in.csv", f"id{sep}text\n1{sep}{GOOD}\n".encode())
    assert rc == 2
    assert f"try --delimiter {flag}" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text, encoding",
    [("这部电影很好看，演员也很出色。", "gb18030"), ("Un film charmant – très réussi, naïf.", "cp1252")],
)
def test_undecodable_rows_suggest_a_likely_encoding(tmp_path, capsys, text, encoding):
    src = tmp_path / "in.csv"
    src.write_bytes(f'id,text\n1,"{text}"\n2,"{GOOD}"\n'.encode(encoding))
    rc = main(["predict", str(src), "-o", str(tmp_path / "out.csv")])
    err = capsys.readouterr().err
    assert rc == 1 and f"try --encoding {encoding}" in err, err
    assert "1 errors (rows and lines count from 1)" in err  # files count from 1, the API from 0
    rc = main(["predict", str(src), "-o", str(tmp_path / "out.csv"), "--encoding", encoding])
    assert rc == 0 and "--encoding" not in capsys.readouterr().err


def test_no_header(tmp_path, capsys):
    rc, rows = predict(tmp_path, "in.csv", f'a1,"{GOOD}"\na2,"{BAD}"\n'.encode(), "--no-header")
    assert rc == 0 and [(r["id"], r["label"]) for r in rows] == [("a1", "positive"), ("a2", "negative")]
    rc, rows = predict(tmp_path, "in.csv", f"{GOOD}\n{BAD}\n".encode(), "--no-header", "--delimiter", "\t")
    assert rc == 0 and [(r["id"], r["label"]) for r in rows] == [("1", "positive"), ("2", "negative")]
    data = f'"{GOOD}",x,k1\n"{BAD}",y,k2\n'.encode()
    rc, rows = predict(tmp_path, "in.csv", data, "--no-header", "--text-column", "1", "--id-column", "3")
    assert rc == 0 and [(r["id"], r["label"]) for r in rows] == [("k1", "positive"), ("k2", "negative")]
    rc, _ = predict(tmp_path, "in.csv", data, "--no-header", "--text-column", "text2")
    assert rc == 2 and "columns are numbers from 1 to 3" in capsys.readouterr().err


def test_info_is_a_readable_summary_with_the_json_behind_a_flag(capsys):
    assert main(["info", "albert-imdb"]) == 0
    text = capsys.readouterr().out
    m = bundle.open_bundle("albert-imdb").manifest
    assert text.startswith("albert-imdb") and len(text.splitlines()) < 20
    for v in m.variants.values():
        assert f"accuracy {v.metrics['accuracy']:.4f}" in text and v.name in text
    assert "negative, positive" in text and f"cpu: {m.provider_variants['cpu']}" in text and "terms" in text
    assert main(["info", "albert-imdb", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["_verified"] is True


def test_predict_help_names_stdin_batch_size_and_each_models_variants():
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["predict"]
    text = sub.format_help()
    assert "- for stdin" in text and "--batch-size" in text and "--no-header" in text
    for name in edgeclf.list_models():
        variants = ", ".join(bundle.open_bundle(name).manifest.variants)
        assert f"{name}: {variants}" in " ".join(text.split())


def test_one_max_chars_rule_for_every_front_end():
    from edgeclf.classifier import load
    from edgeclf.integrations import spark

    serve = build_parser().parse_args(["serve"])
    assert serve.max_chars == DEFAULT_MAX_CHARS
    assert inspect.signature(load).parameters["max_chars"].default == DEFAULT_MAX_CHARS
    assert inspect.signature(spark.predict).parameters["max_chars"].default == DEFAULT_MAX_CHARS
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["predict"]
    assert f"{DEFAULT_MAX_CHARS:,}" in sub.format_help()


def test_long_texts_reaches_the_classifier_from_the_command_line(tmp_path, capsys):
    text = " ".join([GOOD, BAD] * 60)  # far past albert-imdb's 254 pieces
    src = tmp_path / "in.csv"
    src.write_text(f'id,text\n1,"{text}"\n', encoding="utf-8")
    albert = edgeclf.load("albert-imdb")
    for mode in ("windows", "truncate"):
        out = tmp_path / f"{mode}.csv"
        assert (
            main(["predict", str(src), "-m", "albert-imdb", "--long-texts", mode, "-o", str(out), "-q"]) == 0
        )
        (row,) = csv.DictReader(io.StringIO(out.read_text(encoding="utf-8")))
        assert row["score"] == f"{albert.predict([text], long_texts=mode)[0].score:.6f}"
    assert (tmp_path / "windows.csv").read_text() != (tmp_path / "truncate.csv").read_text()
    windows = albert.encode_texts([text], long_texts="windows").windows_per_text(1)[0]
    assert windows > 1
    out = str(tmp_path / "w.csv")
    assert main(["predict", str(src), "-m", "albert-imdb", "--long-texts", "windows", "-o", out]) == 0
    assert f"{windows:.2f} windows per text, at most {windows}" in capsys.readouterr().err
    assert main(["predict", str(src), "-m", "albert-imdb", "-o", out]) == 0  # its manifest says windows
    assert f"{windows:.2f} windows per text" in capsys.readouterr().err
    assert main(["predict", str(src), "-m", "albert-imdb", "--long-texts", "truncate", "-o", out]) == 0
    assert "windows per text" not in capsys.readouterr().err
    # keras-imdb reads a fixed window: the option reaches its load, which refuses it
    assert main(["predict", str(src), "--long-texts", "windows", "-q"]) == 2
    assert "windows" in capsys.readouterr().err


def test_serve_passes_long_texts_to_every_model():
    for module in ("starlette", "uvicorn"):
        pytest.importorskip(module, reason="needs the serve extra")
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from serve_load import ServerProcess

    with pytest.raises(RuntimeError, match=r"(?s)exited 2.*windows"):
        ServerProcess("--model", "keras-imdb", "--long-texts", "windows")
