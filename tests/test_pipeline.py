"""The row pipeline: text_error, chunk cutting, and `predict --jobs N` giving the same bytes as one process."""

from __future__ import annotations

import csv
import io
import os
import pty
import random
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgeclf import load, workers
from edgeclf.chunking import cut_chunks, open_at_end
from edgeclf.texts import classify_texts, text_error

from . import hostile


def test_text_error_reasons() -> None:
    assert text_error("a fine film") is None
    assert text_error(None) == "no text"
    assert text_error(12) == "expected a string, got int"
    assert text_error("  \n\t") == "empty text"
    assert text_error("bad \udcff byte") == "invalid bytes for the input encoding"
    assert text_error("x" * 11, 10) == "text has 11 characters, over max_chars 10"
    assert text_error("x" * 10, 10) is None
    assert "over --max-chars 5" in str(text_error("abcdefg", 5, limit_name="--max-chars"))


def test_classify_texts_keeps_order_and_answers_bad_texts_in_place() -> None:
    clf = load("keras-imdb")
    texts = ["a wonderful, moving film", None, "", "dreadful, boring, a waste of time"]
    results = classify_texts(clf, texts)
    assert [r.error for r in results] == [None, "no text", "empty text", None]
    assert results[1].label is results[1].score is results[1].probabilities is None
    assert results[0].label == "positive" and results[3].label == "negative"
    probs = np.array([list(results[i].probabilities.values()) for i in (0, 3)])
    np.testing.assert_allclose(probs, clf.predict_proba([texts[0], texts[3]]))


def test_ordered_map_keeps_input_order_in_and_out_of_process() -> None:
    for jobs in (1, 2):
        with workers.Pool(abs, jobs) as pool:
            got = list(workers.ordered_map(pool, range(-60, 0), depth=4))
        assert got == [(i, -i) for i in range(-60, 0)]


def _oracle_open(record: str) -> bool:
    """csv's own answer: a line read after an open quote is swallowed into the last field."""
    rows = list(csv.reader(io.StringIO(record + "Z\n", newline="")))
    return len(rows) == 1 and rows[0][-1].endswith("Z\n")


def test_open_at_end_agrees_with_the_csv_module() -> None:
    rng = random.Random(3)
    alphabet = ['"', '"', ",", "a", "b", " ", "\n", "\r", '""']
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 12))) + "\n"
        rows = list(csv.reader(io.StringIO(text + "Z\n", newline="")))
        if len(rows) > 2 or (len(rows) == 2 and rows[1] != ["Z"]):
            continue  # more than one record: open_at_end looks at a single record
        assert open_at_end(text) == _oracle_open(text), repr(text)


def test_chunks_cover_the_input_and_cut_after_line_ends() -> None:
    rng = random.Random(5)
    parts = ["id,text\r\n"]
    for i in range(3000):
        text = rng.choice(["plain words", '"quoted, with\r\nnewline"', '"a ""b"" c"', 'a 5" screen'])
        parts.append(f"{i},{text}" + rng.choice(["\n", "\r\n"]))
    data = "".join(parts).encode()
    for target, lines in ((50, 3), (1000, 4096), (1 << 16, 7)):
        chunks = list(cut_chunks(io.BytesIO(data).read, target, lines))
        assert b"".join(c for c, _ in chunks) == data
        assert [last for _, last in chunks].count(True) == 1 and chunks[-1][1]
        assert all(c.endswith(b"\n") for c, _ in chunks)


# ---------------------------------------------------------------- same bytes for every --jobs


def _run(case: hostile.Case, workdir: Path, extra: list[str]) -> tuple[int, bytes | None]:
    workdir.mkdir(parents=True, exist_ok=True)
    src = workdir / "in.csv"
    if callable(case.data):
        case.data(src)
    else:
        src.write_bytes(case.data)
    out = workdir / case.output
    if case.previous is not None:
        out.write_bytes(case.previous)
    args = ["predict", "-" if case.stdin else str(src), "-o", str(out), "-q", *case.args, *extra]
    run = hostile.run_cli(args, stdin=src.read_bytes() if case.stdin else None)
    return run.returncode, out.read_bytes() if out.exists() else None


CASES = hostile.csv_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_csv_same_bytes_for_every_jobs(case: hostile.Case, tmp_path: Path) -> None:
    """Real processes: one, and three workers, fed chunks of at most 2 lines (cuts inside quoted
    rows, joins, a chunk per worker), must write the same file and exit the same way."""
    one = _run(case, tmp_path / "one", ["--jobs", "1", "--chunk-rows", "2"])
    many = _run(case, tmp_path / "many", ["--jobs", "3", "--chunk-rows", "2"])
    assert one == many
    assert one[0] == case.exit_code


def test_paragraphs_and_stray_quotes_same_bytes_for_every_jobs(tmp_path: Path) -> None:
    """2,000 real reviews with newlines inside quoted fields and stray quotes in unquoted ones:
    the chunk cutter's guesses are wrong here and there; the output must not be."""
    rng = random.Random(11)
    rows = []
    for i in range(2000):
        r = hostile.review(i)
        kind = rng.random()
        if kind < 0.5:
            newline = rng.choice(["\n", "\r\n"])
            rows.append(f"{i},{hostile.q(hostile.paragraphs(r, newline))}\n")
        elif kind < 0.6:
            rows.append(f'{i},a 5" screen {hostile.plain(r)}\n')  # a stray quote
        elif kind < 0.65:
            rows.append(f"{i},\n")  # empty text
        else:
            rows.append(f"{i},{hostile.q(r)}\n")
    src = tmp_path / "in.csv"
    src.write_text("id,text\n" + "".join(rows), encoding="utf-8")
    outs = {}
    for jobs, chunk_rows in ((1, 4096), (2, 4096), (1, 3), (2, 3), (3, 3), (1, 1), (3, 1)):
        out = tmp_path / f"out-{jobs}-{chunk_rows}.csv"
        r = hostile.run_cli(
            ["predict", str(src), "-o", str(out), "-q", "-j", str(jobs), "--chunk-rows", str(chunk_rows)]
        )
        assert r.returncode == 1, r.stderr
        outs[(jobs, chunk_rows)] = out.read_bytes()
    # the same bytes for every --jobs; --chunk-rows changes batches, and a batch of one text can
    # round differently in the 6th decimal (onnxruntime's single-row kernel), so compare within it
    for chunk_rows in (4096, 3, 1):
        assert len({out for (_, rows), out in outs.items() if rows == chunk_rows}) == 1, chunk_rows
    assert outs[(1, 4096)].count(b"\n") >= 2001


# ---------------------------------------------------------------- progress bar


def _pty_run(args: list[str], env: dict[str, str] | None = None) -> tuple[int, bytes, list[float]]:
    """Run edgeclf with stderr on a pseudo-terminal; return its code, what the terminal got and when."""
    master, slave = pty.openpty()
    p = subprocess.Popen(
        [sys.executable, "-m", "edgeclf", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
        env={**os.environ, **(env or {})},
    )
    os.close(slave)
    data, stamps = b"", []
    start = time.monotonic()
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            p.kill()
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        data += chunk
        stamps += [time.monotonic() - start] * chunk.count(b"\r")
    os.close(master)
    return p.wait(timeout=60), data, stamps


def test_progress_bar_moves_in_a_terminal_and_stays_off_otherwise(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text(
        "id,text\n" + "".join(f"{i},{hostile.q(hostile.review(i))}\n" for i in range(300)), encoding="utf-8"
    )
    # ALBERT on one thread: a few seconds, slow enough that a chunk-by-chunk bar would sit still
    args = ["predict", str(src), "-o", str(tmp_path / "out.csv"), "--model", "albert-imdb", "--threads", "1"]
    code, data, stamps = _pty_run([*args, "-j", "1"])
    assert code == 0, data[-500:]
    bars = re.findall(rb"\r([^\r]*?rows/s[^\r]*)", data)
    assert len(bars) >= 4, data[-500:]
    gaps = np.diff(stamps[: len(bars)])
    assert gaps.max() < 0.5, gaps  # at least twice a second, whatever the model's speed
    text = b"\n".join(bars).decode()
    assert "ETA" in text and "%" in text
    rows_seen = [int(m.replace(",", "")) for m in re.findall(r"([\d,]+) rows ", text)]
    assert rows_seen == sorted(rows_seen) and rows_seen[-1] > 0
    assert re.search(r"[\d,]+ rows/s", text)
    # -q: nothing but the terminal's silence; and no bar when stderr is not a terminal
    code, data, _ = _pty_run([*args, "-j", "1", "-q"])
    assert code == 0 and b"rows/s" not in data
    r = hostile.run_cli([*args[:2], "-o", str(tmp_path / "out2.csv"), *args[4:], "-j", "1"])
    assert r.returncode == 0 and "\r" not in r.stderr and "ETA" not in r.stderr
