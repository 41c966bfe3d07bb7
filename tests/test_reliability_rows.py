"""`edgeclf predict` on hostile files: every row answered, in order; output atomic.

The cases live in tests/hostile.py, shared with benchmarks/reliability.py
(which reports them in docs/reliability.md). Small cases run in-process for
speed; whatever needs a real process (stdin, peak RSS, SIGKILL) runs one.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from edgeclf import chunking, csvio, output, workers
from edgeclf.csvio import InputFileError, ReadStats, Row, read_rows

from . import hostile

CASES = hostile.csv_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_csv_every_row_answered(case: hostile.Case, tmp_path: Path) -> None:
    outcome = hostile.run_case(case, tmp_path, subprocess_=False)
    assert outcome.passed, outcome.problems
    assert outcome.lost == 0


def test_case_checker_catches_a_lost_row(tmp_path: Path) -> None:
    """The checker itself: an output missing one row must be reported as lost."""
    case = next(c for c in CASES if c.name == "duplicate ids")
    out = tmp_path / "out.csv"
    out.write_text("id,label,score,error\n0,positive,0.9,\n1,negative,0.8,\n")
    outcome = hostile.check_output(case, 0, out, "4 duplicate ids")
    assert outcome.lost == 5 and not outcome.passed


def _rss_run(case: hostile.Case, workdir: Path) -> hostile.Outcome:
    outcome = hostile.run_case(case, workdir)
    assert outcome.passed, outcome.problems
    assert outcome.peak_rss_mb is not None
    return outcome


def test_memory_stays_flat_with_row_count(tmp_path: Path) -> None:
    """Peak RSS of the predict subprocess: 1,000,000 rows vs 10,000 rows.

    Duplicate ids are tracked in a bounded window, so 1M rows may grow RSS by
    that window (~11 MB), not by a set of every id.
    About 20-40 s on 2 cores, so not behind the ``slow`` marker.
    """
    base = _rss_run(hostile.many_rows_case(10_000), tmp_path / "base")
    big = _rss_run(hostile.many_rows_case(1_000_000), tmp_path / "big")
    assert big.peak_rss_mb - base.peak_rss_mb < 24, (base.peak_rss_mb, big.peak_rss_mb)


def test_ten_megabyte_field_and_many_big_fields(tmp_path: Path) -> None:
    big = _rss_run(hostile.big_field_case(10), tmp_path / "one")
    many = _rss_run(hostile.many_big_fields_case(40, 1), tmp_path / "many")
    # 40 MB of text, chunked by characters: never all of it at once
    assert many.peak_rss_mb < big.peak_rss_mb, (many.peak_rss_mb, big.peak_rss_mb)


def test_sigkill_never_leaves_a_partial_output(tmp_path: Path) -> None:
    result = hostile.sigkill_trials(tmp_path, rows=200_000, trials=5, seed=0)
    trials = result["trials"]
    assert trials[0].outcome == "absent", trials[0]
    assert all(t.outcome in ("previous", "new complete") for t in trials[1:]), trials
    # the trials must have hit the window in which the temporary file was being written
    assert any(t.temp_bytes for t in trials), trials
    # no worker outlives the killed command (and the kills did hit running workers)
    assert [t.survivors for t in trials] == [0] * len(trials), trials
    assert any(t.descendants for t in trials) or workers.default_jobs() == 1, trials


def test_refuses_to_overwrite_the_input_by_any_name(tmp_path: Path) -> None:
    for refusal in hostile.overwrite_refusals(tmp_path, subprocess_=False):
        assert refusal.passed, refusal


def test_output_to_a_fifo_goes_through_it(tmp_path: Path) -> None:
    result = hostile.fifo_output(tmp_path, subprocess_=False)
    assert result == {"returncode": 0, "rows_received": 5, "still_fifo": True, "litter": []}


def test_device_paths_are_written_through_and_dev_shm_stays_atomic() -> None:
    """No test writes /dev/null (as root, a regression would replace it); the decision is checked."""
    special = {p: output.AtomicOutput(p).special for p in ("/dev/null", "/dev/stdout", "/proc/self/fd/1")}
    assert special == {"/dev/null": True, "/dev/stdout": True, "/proc/self/fd/1": True}
    assert not output.AtomicOutput("/dev/shm/out.csv").special
    assert not output.AtomicOutput("out.csv").special


def test_unwritable_output_directory_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def refuse(*a: object, **k: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(output.tempfile, "mkstemp", refuse)
    src = tmp_path / "in.csv"
    src.write_text("id,text\n1,good film\n")
    run = hostile.run_inprocess(["predict", str(src), "-o", str(tmp_path / "out.csv")])
    assert (
        run.returncode == 2
        and "cannot create a temporary file" in run.stderr
        and "Permission denied" in run.stderr
    )


# ---------------------------------------------------------------- reader details


def _read(text: str, **kw: object) -> tuple[list[Row], ReadStats]:
    stats = ReadStats()
    rows = list(read_rows(io.StringIO(text, newline=""), stats=stats, **kw))  # type: ignore[arg-type]
    return rows, stats


def test_unterminated_quote_names_the_swallowed_lines() -> None:
    rows, _ = _read('id,text\n1,fine\n2,"open\n3,x\n4,y\n')
    assert [r.id for r in rows] == ["1", "2"]
    assert rows[1].error is not None and "unterminated quote" in rows[1].error
    assert "lines 3-5" in rows[1].error and (rows[1].first_line, rows[1].line) == (3, 5)


def test_well_formed_multiline_rows_are_not_flagged() -> None:
    rows, _ = _read('id,text\n1,"a\nb ""c"" d\n\ne"\n2,"x"\n')
    assert [(r.id, r.error) for r in rows] == [("1", None), ("2", None)]
    assert rows[0].text == 'a\nb "c" d\n\ne'


def test_a_field_over_the_limit_is_an_input_error_that_suggests_a_quote() -> None:
    with pytest.raises(InputFileError, match=r"longer than 1,000 characters.*unterminated quote"):
        _read("id,text\n1,ok\n2," + "x" * 2000 + "\n", max_field_chars=1000)


def test_duplicate_ids_are_counted_in_a_bounded_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csvio, "DUPLICATE_ID_WINDOW", 5)
    text = "id,text\n" + "".join(f"{i},film\n" for i in range(10)) + "0,again\n9,again\n"
    rows, stats = _read(text)
    assert len(rows) == 12
    assert stats.duplicate_window_full and stats.duplicate_ids == 1  # 0 was remembered, 9 was not


def test_duplicate_window_is_named_in_the_summary(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(csvio, "DUPLICATE_ID_WINDOW", 5)
    src = tmp_path / "in.csv"
    src.write_text("id,text\n" + "".join(f"{i},film\n" for i in range(10)) + "0,again\n")
    run = hostile.run_inprocess(["predict", str(src), "-o", str(tmp_path / "out.csv")])
    assert run.returncode == 0 and "1 duplicate ids among the first 5 ids" in run.stderr


def test_chunks_are_bounded_by_bytes_as_well_as_rows() -> None:
    """The main process holds a few chunks at a time: each near the byte target, or the --chunk-rows lines."""
    data = b"id,text\n" + b"".join(b"%d,%s\n" % (i, b"x" * 3_000_000) for i in range(10))
    chunks = list(chunking.cut_chunks(io.BytesIO(data).read, 8_000_000, 4096))
    assert b"".join(c for c, _ in chunks) == data and [last for _, last in chunks][-2:] == [False, True]
    assert [len(c) for c, _ in chunks] == [8 + 2 * 3_000_003, *[2 * 3_000_003] * 4]  # 2 rows of 3 MB each
    small = b"id,text\n" + b"".join(b"%d,film\n" % i for i in range(5))
    assert [c.count(b"\n") for c, _ in chunking.cut_chunks(io.BytesIO(small).read, 1 << 20, 2)] == [2, 2, 2]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--max-chars", "0"], "--max-chars must be >= 1"),
        (["--max-chars", "-5"], "--max-chars must be >= 1"),
        (["--batch-size", "0"], "--batch-size must be >= 1"),
        (["--chunk-rows", "0"], "--chunk-rows must be >= 1"),
    ],
)
def test_bad_limits_are_usage_errors(flags: list[str], message: str, tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("id,text\n1,good film\n")
    out = tmp_path / "out.csv"
    run = hostile.run_inprocess(["predict", str(src), "-o", str(out), *flags])
    assert run.returncode == 2 and message in run.stderr
    assert not out.exists()
