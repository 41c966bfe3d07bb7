"""`edgeclf predict` on good and hostile CSVs: rows in == rows out, always."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from .conftest import DATA, run_cli

REVIEW = "A wonderful, moving film with brilliant acting."


def write(tmp_path: Path, data: bytes, name: str = "in.csv") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def out_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8", "surrogateescape"), newline="")))


def test_predict_sample_to_stdout():
    r = run_cli("predict", str(DATA / "imdb_sample.csv"))
    assert r.returncode == 0, r.stderr
    rows = out_rows(r.stdout)
    assert len(rows) == 12
    assert list(rows[0]) == ["id", "label", "score", "error"]
    assert all(row["label"] in ("positive", "negative") and not row["error"] for row in rows)
    assert b"12 rows" in r.stderr


def test_predict_to_file_jsonl_and_probabilities(tmp_path):
    out = tmp_path / "out.jsonl"
    r = run_cli(
        "predict", str(DATA / "imdb_sample.csv"), "-o", str(out), "--probabilities", "--label-format", "id"
    )
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 12 and lines[0]["label"] in (0, 1)
    assert set(lines[0]["probabilities"]) == {"negative", "positive"}
    assert not list(tmp_path.glob(".*tmp"))


def test_hostile_rows_are_each_answered(tmp_path):
    data = (
        b"\xef\xbb\xbfid,text\r\n"  # BOM + CRLF
        b'1,"' + REVIEW.encode() + b'"\r\n'
        b'2,"multi\nline ""quoted"" review, great"\n'  # embedded newline and quotes, LF
        b"3,\n"  # empty text
        b"4,   \t \n"  # whitespace only
        b"5,bad bytes \xff\xfe here\n"  # invalid UTF-8
        b"6,nul\x00inside great\n"  # NUL
        b"7\n"  # missing column
        b"8,too,many,fields\n"  # extra columns
        b"\n"  # blank line: not a row
        b"3,duplicate id is kept\n"
        b"10,last row without newline"
    )
    r = run_cli("predict", str(write(tmp_path, data)))
    assert r.returncode == 1, r.stderr
    rows = out_rows(r.stdout)
    assert [row["id"] for row in rows] == ["1", "2", "3", "4", "5", "6", "7", "8", "3", "10"]
    errors = {row["id"]: row["error"] for row in rows if row["error"]}
    assert set(errors) == {"3", "4", "5", "7", "8"}
    assert "row 3" in errors["3"] and "empty text" in errors["3"]
    assert "invalid bytes" in errors["5"]
    assert "has 1 fields, header has 2" in errors["7"]
    assert "has 4 fields" in errors["8"]
    for row in rows:
        assert bool(row["label"]) != bool(row["error"])
    assert b"5 errors" in r.stderr and b"1 blank lines" in r.stderr and b"1 duplicate ids" in r.stderr


def test_errors_abort_writes_nothing(tmp_path):
    src = write(tmp_path, b"id,text\n1,good film\n2,\n")
    out = tmp_path / "out.csv"
    r = run_cli("predict", str(src), "-o", str(out), "--errors", "abort")
    assert r.returncode == 2
    assert b"row 2" in r.stderr and not out.exists()


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", b"empty file"),
        (b"id,body\n1,x\n", b"no 'text' column"),
    ],
)
def test_unusable_files_exit_2(tmp_path, data, message):
    out = tmp_path / "out.csv"
    r = run_cli("predict", str(write(tmp_path, data)), "-o", str(out))
    assert r.returncode == 2 and message in r.stderr
    assert not out.exists()


def test_missing_file_and_bad_flags(tmp_path):
    r = run_cli("predict", str(tmp_path / "nope.csv"))
    assert r.returncode == 2 and b"no such file" in r.stderr
    r = run_cli("predict", "--no-such-flag", "x.csv")
    assert r.returncode == 2
    r = run_cli("predict", str(DATA / "imdb_sample.csv"), "--model", "nope")
    assert r.returncode == 2 and b"no embedded model named 'nope'" in r.stderr


def test_header_only_gives_header_only(tmp_path):
    r = run_cli("predict", str(write(tmp_path, b"id,text\n")))
    assert r.returncode == 0
    assert r.stdout.decode().splitlines() == ["id,label,score,error"]


def test_no_id_column_numbers_rows_and_custom_columns(tmp_path):
    src = write(tmp_path, ("review;x\n" + REVIEW + ";1\nterrible;2\n").encode())
    r = run_cli("predict", str(src), "--text-column", "review", "--delimiter", ";")
    assert r.returncode == 0, r.stderr
    assert [row["id"] for row in out_rows(r.stdout)] == ["1", "2"]
    r = run_cli("predict", str(src), "--text-column", "review", "--delimiter", ";", "--id-column", "key")
    assert r.returncode == 2 and b"no 'key' column" in r.stderr


def test_stdin_and_encoding(tmp_path):
    r = run_cli("predict", "-", input=('id,text\nA,"' + REVIEW + '"\n').encode())
    assert r.returncode == 0 and out_rows(r.stdout)[0]["label"] == "positive"
    src = write(tmp_path, ('id,text\n中文,"很好的电影 ' + REVIEW + '"\n').encode("gb18030"))
    r = run_cli("predict", str(src), "--encoding", "gb18030")
    assert r.returncode == 0 and out_rows(r.stdout)[0]["id"] == "中文"


def test_refuses_to_overwrite_its_input(tmp_path):
    src = write(tmp_path, b"id,text\n1,fine film\n")
    before = src.read_bytes()
    r = run_cli("predict", str(src), "-o", str(src))
    assert r.returncode == 2 and b"refusing to overwrite the input" in r.stderr
    assert src.read_bytes() == before


def test_output_replaces_previous_file_atomically(tmp_path):
    out = tmp_path / "out.csv"
    out.write_text("previous\n")
    r = run_cli("predict", str(DATA / "imdb_sample.csv"), "-o", str(out), "--chunk-rows", "5")
    assert r.returncode == 0
    assert len(out_rows(out.read_bytes())) == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_max_chars_row_error(tmp_path):
    src = write(tmp_path, b"id,text\n1,short good\n2," + b"long " * 100 + b"\n")
    r = run_cli("predict", str(src), "--max-chars", "100")
    assert r.returncode == 1
    rows = out_rows(r.stdout)
    assert rows[0]["label"] and "over --max-chars" in rows[1]["error"]


def test_models_and_info():
    r = run_cli("models")
    assert r.returncode == 0 and b"keras-imdb" in r.stdout and b"0.87" in r.stdout
    r = run_cli("models", "--json")
    assert json.loads(r.stdout)[0]["variants"]["int8"]["n"] == 25_000
    r = run_cli("info", "keras-imdb", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["_verified"] is True


def test_console_script_help():
    r = run_cli("--help")
    assert r.returncode == 0 and b"predict" in r.stdout
    assert run_cli().returncode == 2
