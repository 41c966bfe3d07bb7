"""Section 6 of docs/reliability.md: privacy, seen by strace (called by benchmarks/reliability.py).

The cases and detector scenarios are tests/privacy_cases.py, the same ones
tests/test_privacy_syscalls.py asserts, so the report and the tests cannot
drift apart. Without strace the section says so and counts nothing.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Table = Callable[[Sequence[str], Sequence[Sequence[Any]]], str]


def _tmpdir_use(out: Any) -> str:
    """What the run did in TMPDIR: the top-level names it wrote, and whether they were cleaned up."""
    import re

    used = sorted({w.split("/")[1] for w in out.writes if w.startswith("tmp/")})
    # tempfile's own probe files (8 random characters, removed at once) as tmp*
    used = sorted({"tmp*" if re.fullmatch(r"[a-z0-9_]{8}", u) else u for u in used})
    if not used:
        return "unused"
    left = "removed at exit" if not out.temp_files else f"{len(out.temp_files)} left"
    return f"{', '.join(used)} ({left})"


def _stable(text: str) -> str:
    """Random parts of file names (uuids, mkdtemp suffixes) as ``*``, so reruns diff cleanly."""
    import re

    text = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "*", text)
    return re.sub(r"(edgeclf-matplotlib-)[A-Za-z0-9_]+", r"\1*", text)


def privacy_section(rep: Any, work: Path, table: Table, log: Callable[[str], None]) -> None:
    from tests import privacy_cases as pc
    from tests.syscalls import strace_problem

    title = "## 6. Privacy: no network, no files beyond the output (strace)\n\n"
    problem = strace_problem()
    if problem:
        rep.add(title + f"Not run: {problem}.\n")
        return
    import subprocess

    strace_v = subprocess.run(["strace", "-V"], capture_output=True, text=True).stdout.split("\n")[0]
    started = time.perf_counter()
    rows = []
    for label, python in pc.interpreters():
        for i, case in enumerate(pc.CASES):
            if label != "venv" and not case.runtime_only_too:
                continue
            missing = case.missing()
            if missing:
                rows.append([case.name, label, "", "", "", "", "", f"skipped: {missing}"])
                continue
            log(f"privacy: {case.name} ({label})")
            out = pc.run_case(case, work / f"{label}-{i}", python, label)
            outcome = rep.check(f"privacy: {case.name} ({label})", not out.problems)
            probes = (
                f" (+{out.loopback_probes} loopback probe)"
                if case.loopback_probe and out.loopback_probes
                else ""
            )
            rows.append(
                [
                    case.name,
                    label,
                    out.returncode,
                    f"{len(out.network)}{probes}",
                    len(out.files_outside),
                    len(out.leftovers),
                    _stable(_tmpdir_use(out)),
                    f"{outcome} ({out.seconds:.1f} s)",
                ]
            )
    log("privacy: detector scenarios")
    detections = pc.all_detections(
        work / "detect", with_export=any("export" in r[0] and "skipped" not in r[-1] for r in rows)
    )
    drows = []
    for d in detections:
        outcome = rep.check(f"privacy detector: {d.name}", d.ok)
        drows.append([d.name, "yes" if d.fired else "no", _stable(d.detail), outcome])
    minutes = (time.perf_counter() - started) / 60
    rep.add(
        title
        + "Every way users run edgeclf, each under `strace -f -y` (every thread and child process) with "
        "HOME, XDG_CACHE_HOME and TMPDIR pointed at fresh empty directories "
        "(`tests/privacy_cases.py`, the cases `tests/test_privacy_syscalls.py` asserts). A case passes "
        "with no AF_INET/AF_INET6 socket and no connect/send to an inet address, no file created, "
        "written, renamed or removed outside its requested output and TMPDIR, and HOME and "
        "XDG_CACHE_HOME still empty afterwards. `runtime-only` is the `pip install .` install "
        "(numpy + onnxruntime only) when `EDGECLF_RUNTIME_PYTHON` names it (CI does). "
        f"{strace_v}; onnxruntime {pc.ort_version()}; Python {platform.python_version()}; "
        f"{minutes:.1f} min.\n\n"
        + table(
            [
                "command",
                "install",
                "exit",
                "network calls",
                "files outside output/TMPDIR",
                "left in HOME/cache",
                "TMPDIR",
                "outcome",
            ],
            rows,
        )
        + "\n\nThe export case tolerates one thing, by name: urllib3 (imported by transformers) binds a "
        "socket to `::1` port 0 at import to learn whether IPv6 works; it never listens, connects or "
        "sends. torch's compiler cache (`torchinductor_root`) goes to TMPDIR.\n\n"
        "**The detector, on the real thing.** Each scenario must make the checks above fire (or, for "
        "a control, stay quiet), so a pass in the table means something:\n\n"
        + table(["scenario", "checks fired", "what strace and the disk showed", "outcome"], drows)
        + "\n\nWhy the long run: onnxruntime starts its upload about 10 s into a process, later than any "
        "of the commands above take, so an idle process is kept alive past the moment its opted-in "
        "twin goes online. What is and is not guaranteed: [privacy.md](privacy.md).\n"
    )
