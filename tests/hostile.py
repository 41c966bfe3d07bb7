"""Hostile inputs and the checks that the runtime survives them.

One module for the reliability tests (``tests/test_reliability_*.py``) and
the report (``benchmarks/reliability.py``), so the cases the tests prove and
the cases the report counts cannot drift apart. Everything here is plain
stdlib + numpy + the runtime; pytest is not imported.

- CSV cases (:func:`csv_cases`, :func:`big_cases`): real IMDB review text in
  hostile files, each with the exact output it must produce: one output row
  per input row (or one error row that names the lines an open quote
  swallowed), in input order, with its id, and the exit code.
- :func:`run_case` runs one through ``edgeclf predict`` (a subprocess, with
  its peak RSS from ``wait4``, or in-process for speed) and
  :func:`check_output` counts rows in / out / errors / lost.
- SIGKILL trials, overwrite refusals, tampered bundles, a source scan,
  tokenizer fuzz strings, thread and memory checks.
"""

from __future__ import annotations

import ast
import contextlib
import csv
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "tests" / "data" / "imdb_sample.csv"

# ------------------------------------------------------------------ real text


def shared_imdb() -> Path | None:
    """The real IMDB test split (``$EDGECLF_DATA`` or ``../shared/data``), if present."""
    env = os.environ.get("EDGECLF_DATA")
    for base in [*([Path(env)] if env else []), REPO.parent / "shared" / "data"]:
        path = base / "imdb" / "test.csv.gz"
        if path.is_file():
            return path
    return None


_REVIEWS: list[str] = []


def reviews(limit: int = 2000) -> list[str]:
    """Real movie reviews: the shared IMDB test split when present, else the 12-review sample.

    Only the text matters to these checks (every expectation is about rows,
    ids and errors, not labels), so both sources give the same outcomes.
    """
    if not _REVIEWS:
        path = shared_imdb()
        opener: Callable[..., Any] = gzip.open if path is not None else open
        with opener(path or SAMPLE, "rt", encoding="utf-8", newline="") as fh:
            for i, row in enumerate(csv.DictReader(fh)):
                if i >= limit:
                    break
                _REVIEWS.append(row["text"])
    return _REVIEWS


def review(i: int) -> str:
    texts = reviews()
    return texts[i % len(texts)]


def q(text: str) -> str:
    """Quote one CSV field the standard way (quotes doubled)."""
    return '"' + text.replace('"', '""') + '"'


def plain(text: str, n: int = 120) -> str:
    """The first ``n`` characters of a review, safe unquoted: no quotes, commas or line breaks."""
    for c in ('"', ",", "\r", "\n", "<br />"):
        text = text.replace(c, " ")
    return text[:n]


def paragraphs(text: str, newline: str = "\n") -> str:
    """A review with its ``<br /><br />`` paragraph breaks as real newlines."""
    return text.replace("<br /><br />", newline + newline).replace("<br />", newline)


# ------------------------------------------------------------------ cases


@dataclass(frozen=True)
class Expect:
    """One output row the run must produce, in order."""

    id: str
    ok: bool = True  # classified (label + score) or an error row
    error: str = ""  # substring the error must contain
    covers: int = 1  # input rows it answers for (an open quote swallows the rows after it)


@dataclass
class Case:
    name: str
    what: str
    data: bytes | Callable[[Path], None]  # the file, or a writer for big ones
    expect: Sequence[Expect] | Callable[[], Iterable[Expect]] | None  # None: refused as a whole
    rows_in: int  # rows as a person reading the file would count them
    exit_code: int
    args: tuple[str, ...] = ()
    stderr: str = ""  # must appear on stderr
    stdin: bool = False
    output: str = "out.csv"
    previous: bytes | None = None  # an earlier output file that must survive a refused run
    rss: bool = False  # report peak RSS

    def expected(self) -> Iterable[Expect]:
        assert self.expect is not None
        return self.expect() if callable(self.expect) else self.expect


def _rows(*rows: str, header: str = "id,text", eol: str = "\n", bom: bool = False) -> bytes:
    text = header + eol + "".join(r + eol for r in rows)
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8", "surrogateescape")


def _ok(*ids: str) -> list[Expect]:
    return [Expect(i) for i in ids]


def csv_cases() -> list[Case]:
    """Small and medium hostile files, each with the exact output it must give."""
    r = review
    cases: list[Case] = []
    add = cases.append

    # ---- line endings: quoted newlines inside the reviews use the same and other endings
    for name, eol, inner in (
        ("line endings LF", "\n", "\n"),
        ("line endings CRLF", "\r\n", "\r\n"),
        ("line endings CR (old Mac)", "\r", "\r"),
    ):
        rows = [f"{i},{q(paragraphs(r(i), inner))}" for i in range(8)]
        add(
            Case(
                name,
                f"8 reviews, quoted paragraph breaks, {eol!r} endings",
                _rows(*rows, eol=eol),
                _ok(*map(str, range(8))),
                8,
                0,
            )
        )
    rng = random.Random(7)
    endings = ["\n", "\r\n", "\r"]
    parts = ["id,text\n"]
    for i in range(30):
        inner, eol = rng.choice(endings), rng.choice(endings)
        parts.append(f"{i},{q(paragraphs(r(i), inner))}{eol}")
    add(
        Case(
            "mixed line endings",
            "30 reviews, LF/CRLF/CR chosen per row and per paragraph break",
            "".join(parts).encode(),
            _ok(*map(str, range(30))),
            30,
            0,
        )
    )

    # ---- quotes
    add(
        Case(
            "quoted newlines and quotes",
            'doubled quotes, commas, newlines, a lone "" field, a"b unquoted, a quoted empty line',
            _rows(
                f"1,{q('He said ' + chr(34) + 'wow' + chr(34) + ', twice.' + chr(10) + r(1))}",
                f"2,{q(paragraphs(r(2)))}",
                '3,""""',  # the text is one quote character
                '4,a 5" screen is too small for this film',  # a quote inside an unquoted field
                f"5,{q(chr(10) + chr(10) + r(5) + chr(10))}",  # leading/trailing blank lines inside quotes
                f'"6",{q(r(6))}',  # quoted id
            ),
            _ok("1", "2", "3", "4", "5", "6"),
            6,
            0,
        )
    )
    add(
        Case(
            "sloppy quote on one line",
            '"Great" movie: text after a closing quote on a single line stays classified (lenient)',
            _rows(f'1,"Great" {plain(r(1), 80)}', f"2,{q(r(2))}"),
            _ok("1", "2"),
            2,
            0,
        )
    )
    add(
        Case(
            "unterminated quote at end of file",
            "row 3 opens a quote never closed; rows 4-5 are inside it: one error row names lines 4-6",
            _rows(
                f"1,{q(r(1))}",
                f"2,{q(r(2))}",
                f'3,"{plain(r(3), 200)}',
                f"4,{plain(r(4))}",
                f"5,{plain(r(5))}",
            ),
            [Expect("1"), Expect("2"), Expect("3", False, "unterminated quote", covers=3)],
            5,
            1,
        )
    )
    add(
        Case(
            "unbalanced quote mid-file",
            'row 2 opens a quote that row 3\'s "..." closes: rows 2-3 reported as one malformed row',
            _rows(f"1,{q(r(1))}", f'2,"{plain(r(2))}', f'3,"{plain(r(3))}" ok', f"4,{q(r(4))}"),
            [Expect("1"), Expect("2", False, "malformed quoting", covers=2), Expect("4")],
            4,
            1,
        )
    )
    add(
        Case(
            "field of only a quote, last row",
            'the last row is 3," (no newline after it)',
            _rows(f"1,{q(r(1))}", f"2,{q(r(2))}").rstrip(b"\n") + b'\n3,"',
            [Expect("1"), Expect("2"), Expect("3", False, "unterminated quote")],
            3,
            1,
        )
    )
    add(
        Case(
            "field of only a quote, mid-file",
            'row 2 is 2," and swallows rows 3-4 to the end of the file',
            _rows(f"1,{q(r(1))}", '2,"', f"3,{plain(r(3))}", f"4,{plain(r(4))}"),
            [Expect("1"), Expect("2", False, "unterminated quote", covers=3)],
            4,
            1,
        )
    )

    # ---- encodings and bytes
    add(
        Case(
            "UTF-8 BOM",
            "BOM before the header, CRLF",
            _rows(f"a,{q(r(1))}", f"b,{q(r(2))}", eol="\r\n", bom=True),
            _ok("a", "b"),
            2,
            0,
        )
    )
    bad = b"\xff\xfe\xc3\x28\xa0\xa1\xe2\x28\xa1\xf0\x90\x28\xbc\xed\xa0\x80\xc0\xaf"
    data = (
        b"id,text\n"
        + b"1,"
        + plain(r(1)).encode()
        + b" "
        + bad[:2]
        + b" end\n"
        + b"2,"
        + plain(r(2)).encode()
        + b"\xe2\x82\n"  # truncated 3-byte sequence
        + b"id\xff3,"
        + plain(r(3)).encode()
        + b"\n"  # bad bytes in the id only
        + b"4,"
        + b" ".join(bad[i : i + 3] for i in range(0, len(bad), 3))
        + b"\n"
        + b"5,"
        + plain(r(5)).encode()
        + b"\n"
    )
    add(
        Case(
            "invalid UTF-8",
            "overlong, truncated, lone continuation and surrogate bytes; one in an id",
            data,
            [
                Expect("1", False, "invalid bytes"),
                Expect("2", False, "invalid bytes"),
                Expect(b"id\xff3".decode("utf-8", "surrogateescape")),
                Expect("4", False, "invalid bytes"),
                Expect("5"),
            ],
            5,
            1,
        )
    )
    data = (
        b"id,text\n1,"
        + plain(r(1)).encode()
        + b"\x00 more\n"
        + b"n\x00ul,"
        + plain(r(2)).encode()
        + b"\n"
        + b'3,"'
        + b"\x00" * 3
        + b'"\n'
        + b"4,"
        + plain(r(4)).encode()
        + b"\n"
    )
    add(
        Case(
            "NUL bytes",
            "NUL inside a text, an id, and a text of only NULs",
            data,
            _ok("1", "n\x00ul", "3", "4"),
            4,
            0,
        )
    )

    # ---- structure
    add(
        Case(
            "missing and extra columns",
            "header id,text,label; rows with 1, 2 and 5 fields between good ones",
            _rows(
                f"1,{q(r(1))},1",
                "2",
                f"3,{q(r(3))}",
                f"4,{q(r(4))},0,extra,more",
                f"5,{q(r(5))},1",
                header="id,text,label",
            ),
            [
                Expect("1"),
                Expect("2", False, "has 1 fields"),
                Expect("3", False, "missing columns"),
                Expect("4", False, "extra columns"),
                Expect("5"),
            ],
            5,
            1,
        )
    )
    add(
        Case(
            "duplicate ids",
            "ids repeat (x3, x2): every row kept, in order, counted on stderr",
            _rows(*(f"{i % 3},{q(r(i))}" for i in range(6)), f"0,{q(r(9))}"),
            _ok("0", "1", "2", "0", "1", "2", "0"),
            7,
            0,
            stderr="4 duplicate ids",
        )
    )
    add(
        Case(
            "empty and whitespace-only text",
            'empty, "", spaces, tab, NBSP + ideographic space: errors; zero-width space: classified',
            _rows("1,", '2,""', "3,   ", "4,\t", "5,\u00a0\u3000", "6,\u200b", f"7,{q(r(7))}"),
            [
                Expect("1", False, "empty text"),
                Expect("2", False, "empty text"),
                Expect("3", False, "empty text"),
                Expect("4", False, "empty text"),
                Expect("5", False, "empty text"),
                Expect("6"),
                Expect("7"),
            ],
            7,
            1,
        )
    )
    add(
        Case(
            "blank lines",
            "blank lines (LF, CRLF) before, between and after rows are not rows; a line of spaces is",
            b"\n\r\nid,text\n\n" + f"1,{q(r(1))}\n\r\n\n2,{q(r(2))}\n   \n\n3,{q(r(3))}\n\n\n".encode(),
            # the line of spaces is a row of one field: that field is its id
            [Expect("1"), Expect("2"), Expect("   ", False, "has 1 fields"), Expect("3")],
            4,
            1,
        )
    )
    add(
        Case(
            "text is the first column",
            "header text,id",
            _rows(*(f"{q(r(i))},t{i}" for i in range(5)), header="text,id"),
            _ok(*(f"t{i}" for i in range(5))),
            5,
            0,
        )
    )
    add(
        Case(
            "text is the last column",
            "header id,label,text",
            _rows(*(f"l{i},{i % 2},{q(paragraphs(r(i)))}" for i in range(5)), header="id,label,text"),
            _ok(*(f"l{i}" for i in range(5))),
            5,
            0,
        )
    )
    add(
        Case(
            "no id column",
            "header text only: ids are row numbers",
            _rows(*(q(r(i)) for i in range(4)), header="text"),
            _ok("1", "2", "3", "4"),
            4,
            0,
        )
    )
    add(
        Case(
            "semicolon delimiter",
            "--delimiter ';' with commas in the text",
            _rows(*(f"{i};{q(r(i))}" for i in range(4)), header="id;text"),
            _ok("0", "1", "2", "3"),
            4,
            0,
            args=("--delimiter", ";"),
        )
    )
    add(Case("header only", "a header and nothing else", b"id,text\n", [], 0, 0))
    add(Case("header only, no newline", "id,text without a line end", b"id,text", [], 0, 0))

    # ---- refused as a whole (exit 2, nothing written, a previous output survives)
    prev = b"id,label,score,error\nprevious,positive,0.9,\n"
    add(Case("empty file", "0 bytes", b"", None, 0, 2, stderr="empty file", previous=prev))
    add(
        Case(
            "only blank lines", "three newlines", b"\n\r\n\n", None, 0, 2, stderr="empty file", previous=prev
        )
    )
    add(Case("BOM only", "a UTF-8 BOM and nothing else", b"\xef\xbb\xbf", None, 0, 2, stderr="empty file"))
    add(
        Case(
            "no text column",
            "header id,body",
            _rows(f"1,{q(r(1))}", header="id,body"),
            None,
            1,
            2,
            stderr="no 'text' column",
            previous=prev,
        )
    )
    add(
        Case(
            "--errors abort",
            "a hostile file with --errors abort: nothing written, previous output kept",
            _rows(f"1,{q(r(1))}", "2,", f"3,{q(r(3))}"),
            None,
            3,
            2,
            args=("--errors", "abort"),
            stderr="row 2",
            previous=prev,
        )
    )

    # ---- limits and formats
    add(
        Case(
            "text over --max-chars",
            "--max-chars 500 with full-length reviews",
            _rows(*(f"{i},{q(r(i))}" for i in range(6)), "6,short and sweet"),
            [
                *(
                    Expect(str(i), False, "over --max-chars") if len(r(i)) > 500 else Expect(str(i))
                    for i in range(6)
                ),
                Expect("6"),
            ],
            7,
            1 if any(len(r(i)) > 500 for i in range(6)) else 0,
            args=("--max-chars", "500"),
        )
    )
    add(
        Case(
            "JSON Lines output",
            "the invalid-bytes/empty/extra-column mix, written as JSONL",
            _rows(f"1,{q(r(1))}", "2,", "3,a,b", f"4,{q(paragraphs(r(4)))}"),
            [Expect("1"), Expect("2", False, "empty text"), Expect("3", False, "extra columns"), Expect("4")],
            4,
            1,
            output="out.jsonl",
        )
    )
    add(
        Case(
            "stdin input",
            "the quoted-newline file piped to 'edgeclf predict -'",
            _rows(*(f"{i},{q(paragraphs(r(i), chr(13) + chr(10)))}" for i in range(5)), eol="\r\n"),
            _ok(*map(str, range(5))),
            5,
            0,
            stdin=True,
        )
    )
    return cases


def write_many_rows(path: Path, n: int, words: int = 12) -> None:
    """``n`` short real reviews (their first words), ids ``r0``, ``r1`` ..."""
    snippets = [" ".join(t.replace("<br />", " ").split()[:words]) for t in reviews()]
    k = len(snippets)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["id", "text"])
        for start in range(0, n, 10_000):
            w.writerows((f"r{i}", snippets[i % k]) for i in range(start, min(n, start + 10_000)))


def many_rows_case(n: int) -> Case:
    return Case(
        f"{n:,} short rows",
        f"{n:,} rows of real review openings (12 words); peak RSS of the subprocess",
        lambda path: write_many_rows(path, n),
        lambda: (Expect(f"r{i}") for i in range(n)),
        n,
        0,
        rss=True,
    )


def big_field_case(mb: int = 10) -> Case:
    def write(path: Path) -> None:
        body = []
        size, i = 0, 0
        while size < mb * 1_000_000:
            t = paragraphs(review(i))
            body.append(t)
            size += len(t.encode()) + 2
            i += 1
        with open(path, "w", encoding="utf-8", newline="") as fh:
            fh.write(f"id,text\nbefore,{q(review(1))}\nbig,{q(chr(10).join(body))}\nafter,{q(review(2))}\n")

    return Case(
        f"{mb} MB single field",
        f"one quoted field of {mb} MB of real reviews with newlines, between two normal rows",
        write,
        _ok("before", "big", "after"),
        3,
        0,
        rss=True,
    )


def many_big_fields_case(n: int = 40, mb: int = 1) -> Case:
    def write(path: Path) -> None:
        with open(path, "w", encoding="utf-8", newline="") as fh:
            fh.write("id,text\n")
            text = " ".join(reviews())
            while len(text) < mb * 1_000_000:
                text += " " + text
            for k in range(n):
                fh.write(f"b{k},{q(text[k : k + mb * 1_000_000])}\n")

    return Case(
        f"{n} fields of {mb} MB",
        f"{n} rows of {mb} MB each: chunks are bounded by characters too, not just rows",
        write,
        _ok(*(f"b{k}" for k in range(n))),
        n,
        0,
        rss=True,
    )


# ------------------------------------------------------------------ running and checking


@dataclass
class Outcome:
    case: str
    what: str
    rows_in: int
    rows_out: int = 0
    classified: int = 0
    errors: int = 0
    lost: int = 0
    exit_code: int | None = None
    peak_rss_mb: float | None = None
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


@dataclass
class CliRun:
    returncode: int
    stdout: bytes
    stderr: str
    peak_rss_kb: int | None
    seconds: float


def python() -> str:
    """The interpreter that has edgeclf installed (this one)."""
    return sys.executable


#: Runs the CLI like ``python -m edgeclf`` and records the process's own peak RSS
#: (VmHWM belongs to the address space exec created). ``wait4``'s ru_maxrss is not
#: enough: Linux keeps the high-water mark across fork + exec, so a child of a
#: 1.4 GB pytest process "peaks" at 1.4 GB whatever it does.
_HWM_WRAPPER = """
import os, sys
from edgeclf.cli import main
try:
    code = main(sys.argv[1:])
finally:
    try:
        with open('/proc/self/status') as fh:
            hwm = next((line.split()[1] for line in fh if line.startswith('VmHWM:')), '')
        with open(os.environ['EDGECLF_HWM_FILE'], 'w') as fh:
            fh.write(hwm)
    except (OSError, KeyError):
        pass
sys.exit(code)
"""


def run_cli(
    args: Sequence[str], *, stdin: bytes | None = None, cwd: Path | None = None, timeout: float = 1800
) -> CliRun:
    """``python -m edgeclf ARGS`` in a subprocess, with its own peak RSS."""
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryDirectory() as tmp,
    ):
        started = time.perf_counter()
        hwm_file = Path(tmp) / "hwm"
        p = subprocess.Popen(
            [python(), "-c", _HWM_WRAPPER, *args],
            env={**os.environ, "EDGECLF_HWM_FILE": str(hwm_file)},
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=cwd,
        )
        if stdin is not None:
            assert p.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                p.stdin.write(stdin)
            p.stdin.close()
        timer = threading.Timer(timeout, p.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(p.pid, 0)
        finally:
            timer.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        hwm = hwm_file.read_text().strip() if hwm_file.exists() else ""
        peak_kb = int(hwm) if hwm.isdigit() else usage.ru_maxrss
        return CliRun(p.returncode, out.read(), err.read().decode("utf-8", "replace"), peak_kb, seconds)


def run_inprocess(args: Sequence[str]) -> CliRun:
    """``edgeclf.cli.main(ARGS)`` in this process (fast; no RSS): only with ``-o FILE``."""
    from edgeclf.cli import main

    err = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stderr(err):
        rc = main(list(args))
    return CliRun(rc, b"", err.getvalue(), None, time.perf_counter() - started)


def temp_litter(directory: Path) -> list[str]:
    """Hidden temporary outputs (``.NAME.XXXX.tmp``) left in ``directory``."""
    return sorted(p.name for p in directory.glob(".*.tmp"))


def run_case(case: Case, workdir: Path, *, subprocess_: bool = True) -> Outcome:
    """Write the case's file, run ``edgeclf predict`` on it and check the output."""
    workdir.mkdir(parents=True, exist_ok=True)
    src = workdir / "in.csv"
    if callable(case.data):
        case.data(src)
    else:
        src.write_bytes(case.data)
    out = workdir / case.output
    out.unlink(missing_ok=True)
    if case.previous is not None:
        out.write_bytes(case.previous)
    args = ["predict", "-" if case.stdin else str(src), "-o", str(out), *case.args]
    if case.stdin:
        run = run_cli(args, stdin=src.read_bytes())
    elif subprocess_:
        run = run_cli(args)
    else:
        run = run_inprocess(args)
    outcome = check_output(case, run.returncode, out, run.stderr)
    outcome.seconds = run.seconds
    if case.rss and run.peak_rss_kb is not None:
        outcome.peak_rss_mb = run.peak_rss_kb / 1024
    litter = temp_litter(workdir)
    if litter:
        outcome.problems.append(f"temporary files left behind: {litter}")
    return outcome


def read_output(path: Path) -> Iterator[tuple[str, str, str, str]]:
    """``(id, label, score, error)`` per output row, CSV or JSON Lines, ids byte-exact."""
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as fh:
        if path.suffix in (".jsonl", ".ndjson"):
            for line in fh:
                obj = json.loads(line)
                score = obj["score"]
                yield (
                    obj["id"],
                    "" if obj["label"] is None else str(obj["label"]),
                    "" if score is None else str(score),
                    obj["error"] or "",
                )
            return
        reader = csv.reader(fh)
        header = next(reader)
        if header[:3] != ["id", "label", "score"] or header[-1] != "error":
            raise ValueError(f"unexpected output header {header}")
        for row in reader:
            yield row[0], row[1], row[2], row[-1]


def check_output(case: Case, returncode: int, out: Path, stderr: str) -> Outcome:
    """Compare a run with what the case demands; every difference is a named problem.

    ``lost`` counts input rows answered by no output row: rows_in minus the
    rows covered by matching output rows (an error row for an open quote
    covers the rows it swallowed and names their lines).
    """
    o = Outcome(case.name, case.what, case.rows_in, exit_code=returncode)
    problems = o.problems
    if returncode != case.exit_code:
        problems.append(f"exit code {returncode}, expected {case.exit_code}: {stderr[-500:]}")
    if case.stderr and case.stderr not in stderr:
        problems.append(f"stderr lacks {case.stderr!r}: {stderr[-300:]!r}")
    if case.expect is None:
        if case.previous is not None:
            if not out.exists() or out.read_bytes() != case.previous:
                problems.append("the previous output file was changed")
        elif out.exists():
            problems.append("an output file was written for a refused input")
        return o
    if not out.exists():
        problems.append("no output file")
        o.lost = case.rows_in
        return o
    covered = 0
    expected = iter(case.expected())
    for rid, label, score, error in read_output(out):
        o.rows_out += 1
        if error:
            o.errors += 1
        else:
            o.classified += 1
        e = next(expected, None)
        if e is None:
            if len(problems) < 10:
                problems.append(f"extra output row {o.rows_out} (id {rid!r})")
            continue
        bad = []
        if rid != e.id:
            bad.append(f"id {rid!r} != {e.id!r}")
        if e.ok:
            try:
                s = float(score)
            except ValueError:
                s = -1.0
            if not label or error or not 0.0 <= s <= 1.0:
                bad.append(f"not classified (label {label!r}, score {score!r}, error {error[:120]!r})")
        else:
            if label or not error:
                bad.append(f"expected an error row, got label {label!r}")
            elif e.error not in error:
                bad.append(f"error {error[:160]!r} lacks {e.error!r}")
        if bad:
            if len(problems) < 10:
                problems.append(f"output row {o.rows_out}: " + "; ".join(bad))
        else:
            covered += e.covers
    missing = sum(1 for _ in expected)
    if missing:
        problems.append(f"{missing} expected output rows missing")
    o.lost = max(0, case.rows_in - covered)
    if o.lost:
        problems.append(f"{o.lost} input rows lost")
    return o


# ------------------------------------------------------------------ output safety


@dataclass
class KillTrial:
    trial: int
    kill_after_s: float
    temp_bytes: int | None  # size of the temporary output at the kill (None: not created yet)
    outcome: str  # "absent", "previous", "new complete", or "PARTIAL"
    litter: int  # temporary files left behind by the kill
    descendants: int = 0  # processes under the killed one at the kill (workers, forkserver)
    survivors: int = 0  # of those, still running 10 s after the kill (orphaned workers)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, grandchildren...), from /proc (Linux; else [])."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    stat = fh.read()
            except OSError:
                continue
            parent[int(entry)] = int(stat[stat.rindex(b")") + 2 :].split()[1])
    found, frontier = [], [pid]
    while frontier:
        kids = [c for c, p in parent.items() if p in frontier]
        found += kids
        frontier = kids
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2 :][:1] != b"Z"


def survivors(pids: list[int], wait_s: float = 10.0) -> list[int]:
    """The ``pids`` still running (not gone, not zombies) after up to ``wait_s`` seconds."""
    deadline = time.monotonic() + wait_s
    alive = [p for p in pids if _alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in alive if _alive(p)]
    for p in alive:  # do not leave them to the next test
        with contextlib.suppress(OSError):
            os.kill(p, signal.SIGKILL)
    return alive


def _digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def sigkill_trials(workdir: Path, rows: int = 300_000, trials: int = 8, seed: int = 0) -> dict[str, Any]:
    """Kill ``edgeclf predict big.csv -o out.csv`` with SIGKILL at random times.

    The first kill happens before any complete run (out.csv must stay
    absent); then a complete run with ``--probabilities`` makes a *different*
    previous file, and every later kill must leave out.csv byte-identical to
    either that previous file or the complete new output (when the kill came
    after the rename), never anything else. Every process below the killed
    one (``--jobs`` workers) must be gone within 10 s: a worker that outlives
    its parent would keep a core busy, or idle forever, on the user's machine.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    src, out, ref = workdir / "big.csv", workdir / "out.csv", workdir / "reference.csv"
    write_many_rows(src, rows)
    out.unlink(missing_ok=True)
    cmd = [python(), "-m", "edgeclf", "predict", str(src), "-o", str(out), "-q"]
    full = run_cli(["predict", str(src), "-o", str(ref), "-q"])
    assert full.returncode == 0, full.stderr
    duration = full.seconds
    new = _digest(ref)
    rng = random.Random(seed)
    results: list[KillTrial] = []
    previous: str | None = None
    for trial in range(trials + 1):
        if trial == 1:  # a complete, different previous output from now on
            done = run_cli(["predict", str(src), "-o", str(out), "-q", "--probabilities"])
            assert done.returncode == 0, done.stderr
            previous = _digest(out)
        kill_after = rng.uniform(0.05, duration * 1.05) if trial else rng.uniform(0.3, duration * 0.6)
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(kill_after)
        temps = list(workdir.glob(".out.csv.*.tmp"))
        temp_bytes = temps[0].stat().st_size if temps else None
        below = descendants(p.pid)
        p.send_signal(signal.SIGKILL)
        p.wait()
        left = survivors(below)
        got = _digest(out)
        if got is None:
            outcome = "absent" if previous is None else "PARTIAL (previous output vanished)"
        elif got == previous:
            outcome = "previous"
        elif got == new:
            outcome = "new complete"
            if previous is not None:  # put the previous file back for the next trial
                done = run_cli(["predict", str(src), "-o", str(out), "-q", "--probabilities"])
                assert done.returncode == 0 and _digest(out) == previous
        else:
            outcome = "PARTIAL"
        litter = temp_litter(workdir)
        for name in litter:
            (workdir / name).unlink()
        results.append(KillTrial(trial, kill_after, temp_bytes, outcome, len(litter), len(below), len(left)))
    return {"rows": rows, "full_run_s": duration, "trials": results}


@dataclass
class Refusal:
    how: str
    returncode: int
    message_ok: bool
    input_intact: bool
    litter: list[str]

    @property
    def passed(self) -> bool:
        return self.returncode == 2 and self.message_ok and self.input_intact and not self.litter


def overwrite_refusals(workdir: Path, *, subprocess_: bool = True) -> list[Refusal]:
    """``-o`` naming the input itself, another spelling of it, a symlink or a hard link to it."""
    workdir.mkdir(parents=True, exist_ok=True)
    src = workdir / "in.csv"
    data = _rows(*(f"{i},{q(review(i))}" for i in range(5)))
    src.write_bytes(data)
    (workdir / "sub").mkdir(exist_ok=True)
    link = workdir / "link.csv"
    hard = workdir / "hard.csv"
    for p in (link, hard):
        p.unlink(missing_ok=True)
    link.symlink_to(src)
    os.link(src, hard)
    attempts = [
        ("-o the input path", str(src), str(src)),
        ("-o the input via ../", str(src), str(workdir / "sub" / ".." / "in.csv")),
        ("-o a symlink to the input", str(src), str(link)),
        ("-o a hard link to the input", str(src), str(hard)),
        ("input via a symlink, -o the real file", str(link), str(src)),
    ]
    results = []
    for how, inp, outp in attempts:
        args = ["predict", inp, "-o", outp]
        run = run_cli(args) if subprocess_ else run_inprocess(args)
        results.append(
            Refusal(
                how,
                run.returncode,
                "refusing to overwrite the input" in run.stderr,
                src.read_bytes() == data and link.is_symlink() and hard.read_bytes() == data,
                temp_litter(workdir),
            )
        )
    return results


def fifo_output(workdir: Path, *, subprocess_: bool = True) -> dict[str, Any]:
    """``-o`` naming a FIFO: the rows must go through the pipe, the FIFO must stay a FIFO.

    (Renaming a temporary file over it, as for regular files, replaces the
    pipe, and the reader waits forever; the same rename would turn
    ``/dev/null`` into a regular file when run as root.)
    """
    import stat

    workdir.mkdir(parents=True, exist_ok=True)
    src, fifo = workdir / "in.csv", workdir / "pipe"
    src.write_bytes(_rows(*(f"{i},{q(review(i))}" for i in range(5))))
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    received: list[bytes] = []

    def reader() -> None:
        with open(fifo, "rb") as fh:
            received.append(fh.read())

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    args = ["predict", str(src), "-o", str(fifo), "-q"]
    run = run_cli(args, timeout=120) if subprocess_ else run_inprocess(args)
    t.join(timeout=60)
    lines = received[0].decode().splitlines() if received else []
    return {
        "returncode": run.returncode,
        "rows_received": max(0, len(lines) - 1),
        "still_fifo": stat.S_ISFIFO(os.lstat(fifo).st_mode),
        "litter": temp_litter(workdir),
    }


# ------------------------------------------------------------------ hostile bundles


def _flip(path: Path, where: float) -> None:
    data = bytearray(path.read_bytes())
    data[min(len(data) - 1, int(len(data) * where))] ^= 0x01
    path.write_bytes(bytes(data))


def _manifest(root: Path) -> dict[str, Any]:
    return json.loads((root / "manifest.json").read_text(encoding="utf-8"))


def _save(root: Path, m: dict[str, Any]) -> None:
    (root / "manifest.json").write_text(json.dumps(m), encoding="utf-8")


def _set_path(variant: str, path: str) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        m = _manifest(root)
        m["variants"][variant]["file"]["path"] = path
        _save(root, m)

    return mutate


def _symlink_file_out(root: Path) -> None:
    outside = root.parent / "outside.onnx"
    shutil.copyfile(root / "model.int8.onnx", outside)
    (root / "model.int8.onnx").unlink()
    (root / "model.int8.onnx").symlink_to(outside)


def _symlink_dir_out(root: Path) -> None:
    outside = root.parent / "outside-dir"
    outside.mkdir(exist_ok=True)
    shutil.copyfile(root / "model.int8.onnx", outside / "model.int8.onnx")
    (root / "sub").symlink_to(outside, target_is_directory=True)
    _set_path("int8", "sub/model.int8.onnx")(root)


def _same_size_other_bytes(root: Path) -> None:
    f = root / "model.int8.onnx"
    f.write_bytes(random.Random(1).randbytes(f.stat().st_size))


def _manifest_edit(fn: Callable[[dict[str, Any]], Any]) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        m = _manifest(root)
        fn(m)
        _save(root, m)

    return mutate


@dataclass(frozen=True)
class BundleAttack:
    name: str
    target: str  # "model", "vocab" or "manifest": which parser must never see it
    mutate: Callable[[Path], None]
    message: str  # regex the BundleError must match
    variant: str | None = None
    known_bug: str = ""  # non-empty: the runtime does not refuse it cleanly yet (why)


def bundle_attacks() -> list[BundleAttack]:
    """Ways to alter a copy of the keras-imdb bundle; each must be refused before any parser runs."""
    int8, fp32, vocab = "model.int8.onnx", "model.onnx", "vocab.json"
    a = BundleAttack
    return [
        a("int8 model: first byte flipped", "model", lambda r: _flip(r / int8, 0.0), "checksum mismatch"),
        a("int8 model: middle byte flipped", "model", lambda r: _flip(r / int8, 0.5), "checksum mismatch"),
        a("int8 model: last byte flipped", "model", lambda r: _flip(r / int8, 1.0), "checksum mismatch"),
        a(
            "fp32 model: one byte flipped",
            "model",
            lambda r: _flip(r / fp32, 0.37),
            "checksum mismatch",
            "fp32",
        ),
        a(
            "int8 model: truncated by 1 byte",
            "model",
            lambda r: (r / int8).write_bytes((r / int8).read_bytes()[:-1]),
            "truncated or replaced",
        ),
        a("int8 model: truncated to 0 bytes", "model", lambda r: (r / int8).write_bytes(b""), "truncated"),
        a(
            "int8 model: 1 byte appended",
            "model",
            lambda r: (r / int8).write_bytes((r / int8).read_bytes() + b"\0"),
            "truncated or replaced",
        ),
        a(
            "int8 model: replaced by the fp32 file",
            "model",
            lambda r: shutil.copyfile(r / fp32, r / int8),
            "truncated or replaced",
        ),
        a("int8 model: replaced, same size", "model", _same_size_other_bytes, "checksum mismatch"),
        a("int8 model: deleted", "model", lambda r: (r / int8).unlink(), "missing file"),
        a(
            "int8 model: a directory",
            "model",
            lambda r: ((r / int8).unlink(), (r / int8).mkdir()),
            "not a regular file",
        ),
        a("vocab: one byte flipped", "vocab", lambda r: _flip(r / vocab, 0.5), "checksum mismatch"),
        a(
            "vocab: truncated",
            "vocab",
            lambda r: (r / vocab).write_bytes((r / vocab).read_bytes()[:-10]),
            "truncated or replaced",
        ),
        a(
            "manifest: not JSON",
            "manifest",
            lambda r: (r / "manifest.json").write_bytes(b"\xff{nope"),
            "malformed manifest",
        ),
        a(
            "manifest: a JSON list",
            "manifest",
            lambda r: (r / "manifest.json").write_text("[]"),
            "expected an object",
        ),
        a(
            "manifest: truncated",
            "manifest",
            lambda r: (r / "manifest.json").write_bytes((r / "manifest.json").read_bytes()[:-40]),
            "malformed manifest",
        ),
        a(
            "manifest: over 1 MiB",
            "manifest",
            lambda r: (r / "manifest.json").write_bytes(b" " * (1 << 20) + b"{}"),
            "larger than",
        ),
        a("manifest: deleted", "manifest", lambda r: (r / "manifest.json").unlink(), "not a bundle"),
        a(
            "manifest: format_version 2",
            "manifest",
            _manifest_edit(lambda m: m.update(format_version=2)),
            "format_version 2",
        ),
        a(
            "manifest: sha256 not hex",
            "manifest",
            _manifest_edit(lambda m: m["variants"]["int8"]["file"].update(sha256="z" * 64)),
            "sha256",
        ),
        a(
            "manifest: negative size",
            "manifest",
            _manifest_edit(lambda m: m["variants"]["int8"]["file"].update(size=-1)),
            "negative size",
        ),
        a(
            "manifest: size a string",
            "manifest",
            _manifest_edit(lambda m: m["variants"]["int8"]["file"].update(size="165545")),
            "integer",
        ),
        a(
            "manifest: digest of the other file",
            "model",
            _manifest_edit(
                lambda m: m["variants"]["int8"]["file"].update(sha256=m["variants"]["fp32"]["file"]["sha256"])
            ),
            "checksum mismatch",
        ),
        a(
            "manifest: tokenizer path ../",
            "manifest",
            _manifest_edit(lambda m: m["tokenizer"]["files"]["vocab"].update(path="../vocab.json")),
            "unsafe path",
        ),
        a("path ../model.onnx", "manifest", _set_path("int8", "../model.onnx"), "unsafe path"),
        a("path a/../../x", "manifest", _set_path("int8", "a/../../x"), "unsafe path"),
        a("absolute path /etc/passwd", "manifest", _set_path("int8", "/etc/passwd"), "unsafe path"),
        a("drive path C:/x", "manifest", _set_path("int8", "C:/x"), "unsafe path"),
        a("backslash path ..\\x", "manifest", _set_path("int8", "..\\x"), "unsafe path"),
        a("NUL in path", "manifest", _set_path("int8", "model.int8.onnx\x00.txt"), "unsafe path"),
        a("symlink file out of the bundle", "model", _symlink_file_out, "outside the bundle"),
        a("symlink dir out of the bundle", "model", _symlink_dir_out, "outside the bundle"),
        a(
            "manifest: 200,000 nested arrays",
            "manifest",
            lambda r: (r / "manifest.json").write_text("[" * 200_000),
            "malformed manifest",
        ),
    ]


@dataclass
class ParserSpy:
    """Counts calls that would parse bundle bytes (onnxruntime, tokenizers), passing them through."""

    sessions: int = 0
    tokenizers: int = 0
    ort_sessions: int = 0


@contextlib.contextmanager
def spy_on_parsers() -> Iterator[ParserSpy]:
    """Patch every way model or tokenizer bytes reach a parser, and count the calls.

    ``edgeclf.session.make_session`` (and the name the classifier imported),
    ``onnxruntime.InferenceSession`` itself, and the tokenizer ``build``.
    """
    import onnxruntime as ort

    import edgeclf.classifier as classifier_mod
    import edgeclf.session as session_mod

    spy = ParserSpy()
    saved = (
        session_mod.make_session,
        classifier_mod.make_session,
        classifier_mod.build,
        ort.InferenceSession,
    )

    def make_session(*a: Any, **k: Any) -> Any:
        spy.sessions += 1
        return saved[0](*a, **k)

    def build(*a: Any, **k: Any) -> Any:
        spy.tokenizers += 1
        return saved[2](*a, **k)

    class InferenceSession(saved[3]):  # type: ignore[misc,valid-type]
        def __init__(self, *a: Any, **k: Any) -> None:
            spy.ort_sessions += 1
            super().__init__(*a, **k)

    session_mod.make_session = make_session
    classifier_mod.make_session = make_session
    classifier_mod.build = build
    ort.InferenceSession = InferenceSession
    try:
        yield spy
    finally:
        session_mod.make_session, classifier_mod.make_session, classifier_mod.build, ort.InferenceSession = (
            saved
        )


def attack_bundle(attack: BundleAttack, workdir: Path) -> tuple[str, ParserSpy]:
    """Apply one attack to a fresh copy of keras-imdb and load it; returns (error message, spy)."""
    import edgeclf
    from edgeclf.bundle import BundleError, embedded_root

    root = workdir / "bundle"
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    shutil.copytree(embedded_root() / "keras-imdb", root)
    attack.mutate(root)
    with spy_on_parsers() as spy:
        try:
            edgeclf.load(root, variant=attack.variant, providers="cpu")
        except BundleError as exc:
            return str(exc), spy
        except Exception as exc:  # not a clean refusal: report what escaped
            return f"NOT A BundleError: {type(exc).__name__}: {str(exc)[:200]}", spy
    return "ACCEPTED", spy


# ------------------------------------------------------------------ source scan

#: modules the runtime must never import: code from data (pickle & co.) or the network
FORBIDDEN_IMPORTS = (
    "pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "marshal", "shelve",
    "socket", "ssl", "http", "urllib", "urllib3", "requests", "httpx", "aiohttp", "ftplib",
    "smtplib", "xmlrpc", "telnetlib", "asyncio",
)  # fmt: skip
FORBIDDEN_CALLS = ("eval", "exec", "compile", "__import__")
#: documented exceptions: "path:module-or-call" -> why it is safe
ALLOWED: dict[str, str] = {
    "runtime/serve/server.py:socket": "edgeclf serve creates its own listening socket on the address the "
    "user gave (127.0.0.1 by default); tests/test_serve.py checks under strace that it is the only one",
    "runtime/serve/app.py:asyncio": "the server's event loop (Starlette); it opens no connection",
}


def scan_runtime_sources(root: Path = REPO / "runtime") -> tuple[int, list[str]]:
    """Parse every runtime source file; return (files scanned, violations).

    An AST scan rather than a text grep, so docstrings that *say* "no
    pickle" do not count, while ``import pickle``, ``from http import
    client``, ``eval(...)``, ``exec(...)`` and ``np.load(..., allow_pickle=True)``
    do, wherever they hide (inside functions too).
    """
    files = sorted(root.rglob("*.py"))
    violations = []
    for path in files:
        rel = path.relative_to(root.parent).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
        for node in ast.walk(tree):
            found: list[str] = []
            if isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found = [node.module]
            elif isinstance(node, ast.Call):
                fn = node.func
                # the builtins only: re.compile() or session.run() are fine, builtins.eval() is not
                name = (
                    fn.id
                    if isinstance(fn, ast.Name)
                    else fn.attr
                    if isinstance(fn, ast.Attribute)
                    and isinstance(fn.value, ast.Name)
                    and fn.value.id == "builtins"
                    else ""
                )
                if name in FORBIDDEN_CALLS:
                    found = [f"{name}()"]
                for kw in node.keywords:
                    if kw.arg == "allow_pickle" and not (
                        isinstance(kw.value, ast.Constant) and kw.value.value is False
                    ):
                        found.append("allow_pickle=")
            for what in found:
                top = what.split(".")[0]
                if (
                    what.endswith(("()", "=")) or top in FORBIDDEN_IMPORTS
                ) and f"{rel}:{what}" not in ALLOWED:
                    violations.append(f"{rel}:{node.lineno}: {what}")
    return len(files), violations


# ------------------------------------------------------------------ tokenizer fuzzing

#: characters that break naive tokenizers: spaces str.split() knows and bytes.split() does
#: not, case mappings that change length, combining marks, joiners, BOM, NUL, controls,
#: the SentencePiece meta symbol, WordPiece markers and special-token look-alikes
SPECIALS = (
    list(" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2005\u200a\u2028\u2029\u202f\u205f\u3000")
    + list("\x00\x01\x7f\ufeff\u200b\u200c\u200d\u2060\u00ad\u034f\u180e\ufffd\ufffe\uffff")
    + list("İıßẞǅΣσςﬁﬀŉǰΐ\u0307\u0301\u0300\u20dd\u0e33\u0f77\u1e9e\u2126\u212a\u212b")
    + list("▁#[]<>|@'\"!?.,;:-_/\\`~^&*(){}%$+=")
    + list("中文字한국어日本語ไทยالعربية😀👍🏽\U0001f468\u200d\U0001f469\U0001f3f3\ufe0f\U000e0067")
    + ["\ud800", "\udbff", "\udc00", "\udfff", "\udc80", "\udcff", "\U0010ffff", "\U000f0000"]
    + ["[CLS]", "[SEP]", "[UNK]", "[PAD]", "[MASK]", "<unk>", "<pad>", "##", "##s", "<br />", "n't"]
)
SEPARATORS = [" ", "  ", "\t", "\n", "\r\n", ", ", ". ", "!", "\u3000", "\xa0", "-", "'", "\u200b", ""]
REGIMES = ("ascii", "bmp", "full", "surrogates", "specials", "words", "mixed")


def fuzz_texts(n: int, seed: int = 0, words: Sequence[str] = ()) -> Iterator[str]:
    """``n`` strings over all of Unicode (lone surrogates included), reproducible from ``seed``.

    Built with numpy in batches: about 300,000 strings a second, so a
    property test can check 100,000 of them in a few seconds where
    hypothesis would take minutes. Each string picks a regime: printable
    ASCII, the BMP, all code points, surrogate-heavy, special characters,
    real words with odd separators (exercises lookups and truncation), or a
    mix; lengths run from 0 to 1,500 characters (about 80 on average).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    pyrng = random.Random(seed)
    word_list = list(words) or [w for t in reviews()[:200] for w in t.split()] or ["film"]
    produced = 0
    while produced < n:
        batch = min(2000, n - produced)
        kind = rng.random(batch)
        lengths = np.where(
            kind < 0.7,
            rng.geometric(1 / 16, batch) - 1,
            np.where(kind < 0.95, rng.integers(0, 200, batch), rng.integers(200, 1500, batch)),
        )
        lengths[rng.random(batch) < 0.02] = 0
        regimes = rng.integers(0, len(REGIMES), batch)
        for length, regime in zip(lengths.tolist(), regimes.tolist(), strict=True):
            name = REGIMES[regime]
            if name == "words":  # length//4 words: the long ones run past max_length (truncation)
                parts = []
                for w in pyrng.choices(word_list, k=length // 4):
                    parts.append(w.upper() if pyrng.random() < 0.1 else w)
                    parts.append(pyrng.choice(SEPARATORS))
                yield "".join(parts)
            elif name in ("specials", "mixed"):
                pool = SPECIALS if name == "specials" else [*SPECIALS, *word_list[:50], " "]
                yield "".join(pyrng.choices(pool, k=length))
            else:
                if name == "ascii":
                    cps = rng.integers(0, 128, length)
                elif name == "bmp":
                    cps = rng.integers(0, 0x10000, length)
                elif name == "full":
                    cps = rng.integers(0, 0x110000, length)
                else:  # surrogates, between letters and spaces
                    cps = np.where(
                        rng.random(length) < 0.5,
                        rng.integers(0xD800, 0xE000, length),
                        rng.choice(np.array([0x20, 0x61, 0x62, 0x41, 0x2E, 0x0A]), length),
                    )
                yield cps.astype("<u4").tobytes().decode("utf-32-le", "surrogatepass")
        produced += batch


#: kind -> what the last make_tokenizer(kind) built it from (for the report)
BUILT_FROM: dict[str, str] = {}


class Unavailable(Exception):
    """A tokenizer cannot be built here yet (module or files missing): skip it, say why."""


def _bundle_dirs() -> Iterator[Path]:
    from edgeclf.bundle import embedded_root

    extra = [Path(p) for p in os.environ.get("EDGECLF_FUZZ_BUNDLES", "").split(os.pathsep) if p]
    for base in [embedded_root(), REPO / "artifacts"]:
        if base.is_dir():
            extra += sorted(p for p in base.iterdir() if (p / "manifest.json").is_file())
    yield from extra


def tokenizer_from_bundle(kind: str) -> Any:
    """The tokenizer of the first bundle (embedded, ``artifacts/*/``, ``$EDGECLF_FUZZ_BUNDLES``) of ``kind``."""
    from edgeclf.bundle import BundleError, open_bundle
    from edgeclf.tokenizers import build

    for root in _bundle_dirs():
        try:
            b = open_bundle(root)
        except BundleError:
            continue
        t = b.manifest.tokenizer
        if t.kind == kind:
            files = {k: b.read_verified(ref) for k, ref in t.files.items()}
            BUILT_FROM[kind] = f"bundle {b.manifest.name} ({root})"
            return build(kind, files, t.config, b.manifest.max_length)
    raise Unavailable(
        f"no bundle with a {kind!r} tokenizer (embedded, artifacts/*/ or $EDGECLF_FUZZ_BUNDLES)"
    )


def _wordpiece() -> Any:
    with contextlib.suppress(Unavailable):
        return tokenizer_from_bundle("wordpiece")
    from edgeclf.tokenizers import build

    vocab = REPO / "tests" / "data" / "zh" / "vocab.txt"
    if not vocab.is_file():
        raise Unavailable("no wordpiece bundle and no tests/data/zh/vocab.txt")
    try:
        BUILT_FROM["wordpiece"] = "tests/data/zh/vocab.txt, default config, max_length 128"
        return build("wordpiece", {"vocab": vocab.read_bytes()}, {}, 128)
    except Exception as exc:  # the module is being written: its constructor may still change
        raise Unavailable(f"cannot build a wordpiece tokenizer from tests/data/zh/vocab.txt: {exc}") from None


def _sentencepiece() -> Any:
    with contextlib.suppress(Unavailable):
        return tokenizer_from_bundle("sentencepiece-unigram")
    from edgeclf.tokenizers import build

    model = REPO / "tests" / "data" / "albert" / "spiece.model"
    if not model.is_file():
        raise Unavailable("no sentencepiece-unigram bundle and no tests/data/albert/spiece.model")
    try:
        from edgeclf.export.spm_convert import convert

        with tempfile.TemporaryDirectory() as tmp:
            files, config = convert(model, tmp)
            data = {k: (Path(tmp) / p).read_bytes() for k, p in files.items()}
        BUILT_FROM["sentencepiece-unigram"] = "tests/data/albert/spiece.model via spm_convert, max_length 128"
        return build("sentencepiece-unigram", data, config, 128)
    except Exception as exc:  # needs the [export] extra, and the converter is being written
        raise Unavailable(
            f"cannot convert tests/data/albert/spiece.model: {type(exc).__name__}: {exc}"
        ) from None


def _keras_words() -> Any:
    return tokenizer_from_bundle("keras-words")


#: (kind, module, factory): entries whose module does not exist yet are skipped, and join when it does
TOKENIZERS: list[tuple[str, str, Callable[[], Any]]] = [
    ("keras-words", "edgeclf.tokenizers.words", _keras_words),
    ("wordpiece", "edgeclf.tokenizers.wordpiece", _wordpiece),
    ("sentencepiece-unigram", "edgeclf.tokenizers.sentencepiece", _sentencepiece),
]


def make_tokenizer(kind: str) -> Any:
    """Build the fuzz target ``kind``, or raise :class:`Unavailable` saying what is missing."""
    import importlib.util

    for k, module, factory in TOKENIZERS:
        if k == kind:
            if importlib.util.find_spec(module) is None:
                raise Unavailable(f"{module} does not exist yet")
            return factory()
    raise KeyError(kind)


def vocab_bound(tok: Any) -> int | None:
    """Exclusive upper bound of valid ids, when the tokenizer tells."""
    for attr in ("vocab_size",):
        value = getattr(tok, attr, None)
        if isinstance(value, int):
            return value
    with contextlib.suppress(TypeError):
        return len(tok)
    return None


def check_encoding(tok: Any, text: str, ids: Any, bound: int | None) -> str | None:
    """Why ``ids`` is not a valid encoding of ``text`` (None when it is)."""
    if not isinstance(ids, list):
        return f"returned {type(ids).__name__}, not a list"
    if len(ids) > tok.max_length:
        return f"{len(ids)} ids > max_length {tok.max_length}"
    for i in ids:
        if type(i) is not int or i < 0 or (bound is not None and i >= bound):
            return f"id {i!r} outside [0, {bound})"
    return None


def fuzz_tokenizer(tok: Any, texts: Iterable[str], batch: int = 500, spot: int = 16) -> tuple[int, list[str]]:
    """Encode every text; return (count, first failures).

    Properties, for every text: never raises; a list of ints in
    ``[0, vocab_size)``; no longer than ``max_length``. For every ``spot``-th
    text also: ``encode`` equals ``encode_batch``, and where the tokenizer
    keeps a plain reference definition (``encode_reference``) the fast path
    agrees with it. A batch that raises is re-run text by text to name the
    culprit.
    """
    bound = vocab_bound(tok)
    reference = getattr(tok, "encode_reference", None)
    failures: list[str] = []
    count = 0
    chunk: list[str] = []

    def fail(why: str, text: str) -> None:
        if len(failures) < 20:
            failures.append(f"{why}: {text[:120]!r}")

    def flush() -> None:
        try:
            together = tok.encode_batch(chunk)
        except Exception:
            together = None
        for k, text in enumerate(chunk):
            try:
                ids = tok.encode(text) if together is None or k % spot == 0 else together[k]
            except Exception as exc:
                fail(f"encode raised {type(exc).__name__}: {exc}", text)
                continue
            why = check_encoding(tok, text, ids, bound)
            if why is None and together is not None and k % spot == 0:
                if ids != together[k]:
                    why = "encode_batch differs from encode"
                elif reference is not None and reference(text) != ids:
                    why = "differs from encode_reference"
            if why is not None:
                fail(why, text)
        if together is None and not failures:
            fail("encode_batch raised but encode did not", chunk[0])
        chunk.clear()

    for text in texts:
        chunk.append(text)
        count += 1
        if len(chunk) >= batch:
            flush()
    if chunk:
        flush()
    return count, failures


def fuzz_examples(default: int = 100_000) -> int:
    """Strings per tokenizer: ``$EDGECLF_FUZZ_EXAMPLES`` (nightly: millions), else ``default``."""
    return int(os.environ.get("EDGECLF_FUZZ_EXAMPLES", default))


# ------------------------------------------------------------------ threads and memory


def threads_vs_serial(threads: int = 16, per_thread: int = 1000) -> dict[str, Any]:
    """One classifier, ``threads`` threads x ``per_thread`` single-text calls vs the serial results.

    Single texts per call, so both sides run the same batch-of-one kernel
    and must agree bit for bit. Each thread walks the texts from its own
    offset, so different texts are in flight at the same moment.
    """
    import numpy as np

    import edgeclf

    clf = edgeclf.load("keras-imdb", providers="cpu")
    texts = [t[: 200 + 37 * (i % 40)] for i, t in enumerate(reviews()[:250])]
    texts += ["!!!", "\u200b", "a" * 5000]  # no pieces, a zero-width space, a long run
    started = time.perf_counter()
    serial = np.vstack([clf.predict_proba(t) for t in texts])
    serial_s = time.perf_counter() - started
    mismatches = [0] * threads
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def worker(k: int) -> None:
        try:
            barrier.wait()
            n = len(texts)
            for i in range(per_thread):
                j = (k * 61 + i) % n
                if not np.array_equal(clf.predict_proba(texts[j])[0], serial[j]):
                    mismatches[k] += 1
        except BaseException as exc:
            errors.append(exc)

    started = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return {
        "threads": threads,
        "calls": threads * per_thread,
        "mismatches": sum(mismatches),
        "errors": [repr(e) for e in errors],
        "seconds": time.perf_counter() - started,
        "serial_per_call_ms": 1000 * serial_s / len(texts),
    }


MEMORY_SCRIPT = """
import json, sys, time
import edgeclf

def rss_kb():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

n, batch = int(sys.argv[1]), int(sys.argv[2])
clf = edgeclf.load("keras-imdb", providers="cpu")
texts = json.loads(sys.stdin.read())
k = len(texts)
calls = n // batch
warm = max(1, calls // 10)
start = time.perf_counter()
for c in range(calls):
    if c == warm:
        before = rss_kb()
    got = clf.predict_proba([texts[(c * batch + i) % k] for i in range(batch)])
    assert got.shape == (batch, 2)
print(json.dumps({"predictions": calls * batch, "rss_before_kb": before, "rss_after_kb": rss_kb(),
                  "seconds": time.perf_counter() - start}))
"""


def prediction_memory(n: int = 1_000_000, batch: int = 1000) -> dict[str, Any]:
    """``n`` predictions of short real texts in one fresh process, RSS after 10% and at the end."""
    texts = [" ".join(t.split()[: 5 + i % 20]) for i, t in enumerate(reviews())]
    r = subprocess.run(
        [python(), "-c", MEMORY_SCRIPT, str(n), str(batch)],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-2000:])
    result = json.loads(r.stdout)
    result["growth_mb"] = (result["rss_after_kb"] - result["rss_before_kb"]) / 1024
    return result


def machine() -> str:
    """One line about this machine, for reports."""
    import platform

    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        mem = f", {kb / 1024**2:.0f} GiB RAM"
    import numpy
    import onnxruntime

    return (
        f"{platform.machine()} {platform.system()}, {os.cpu_count()} cores ({cpu or 'unknown CPU'}){mem}; "
        f"Python {platform.python_version()}, numpy {numpy.__version__}, onnxruntime {onnxruntime.__version__}"
    )
