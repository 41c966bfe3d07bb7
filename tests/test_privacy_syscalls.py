"""No network, no files outside what was asked for: checked with strace, for every way users run edgeclf.

Each command (tests/privacy_cases.py, shared with docs/reliability.md) runs
under ``strace -f`` with HOME, XDG_CACHE_HOME and TMPDIR pointed at fresh
empty directories (tests/syscalls.py). It must create no AF_INET/AF_INET6
socket, write no file outside its requested output and TMPDIR, and leave
HOME and XDG_CACHE_HOME empty. The detector tests show the same checks
firing on the real thing: onnxruntime's telemetry (a device id, an event
database and a DNS lookup of its upload host) when the user opts in or the
host imported onnxruntime first, a socket opened from native code (which the
Python-level ``socket.socket`` patch this replaces could not see), and
transformers going to the Hub without ``hub_offline()``.

CI installs strace (.ci/run); where it is absent these tests skip.
``EDGECLF_RUNTIME_PYTHON`` (set by .ci/run) adds the runtime-only install
(``pip install .``, no extras) to the prediction checks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from . import privacy_cases as pc
from .syscalls import Sandbox, need_strace, run_traced


@pytest.fixture(scope="module", autouse=True)
def strace() -> str:
    return need_strace()


def _params():
    for case in pc.CASES:
        marks = [pytest.mark.export, pytest.mark.slow] if "export" in case.name else []
        for label, python in pc.interpreters():
            if label == "venv" or case.runtime_only_too:
                yield pytest.param(case, python, label, id=f"{case.name[:60]}-{label}", marks=marks)


# ---------------------------------------------------------------- every way users run edgeclf


@pytest.mark.parametrize(("case", "python", "label"), list(_params()))
def test_command_is_private(tmp_path, case, python, label):
    missing = case.missing()
    if missing:
        pytest.skip(missing)
    out = pc.run_case(case, tmp_path / "box", python, label)
    assert out.problems == [], "\n".join(out.problems)
    if not case.outputs and not case.loopback_probe:
        assert out.writes == [], out.writes  # not even TMPDIR
    if "profile" in case.name:
        assert (
            out.trace is not None and out.trace.raw.count("execve(") > 2
        )  # the cold starts were traced (-f)
    if case.loopback_probe:
        assert all(ev.detail == "AF_INET6" for ev in out.trace.loopback_probes())


def test_a_value_that_leaves_telemetry_on_is_replaced(tmp_path):
    """onnxruntime reads only "1"/"true" as off: a stray ORT_DISABLE_TELEMETRY=0 must not re-enable it."""
    box = Sandbox.create(tmp_path / "box")
    extra = {"ORT_DISABLE_TELEMETRY": "0"}
    t = run_traced([sys.executable, "-c", pc.predict_script("keras-imdb")], box, extra_env=extra)
    assert t.returncode == 0, t.stderr
    assert '"ORT_DISABLE_TELEMETRY": "1"' in t.stdout
    t.assert_private()
    assert box.leftovers() == []


# ---------------------------------------------------------------- the detector fires on the real thing


def test_opt_in_keeps_onnxruntime_telemetry_and_the_detector_sees_it(tmp_path, monkeypatch):
    # the runner's CI variables must not reach the child (onnxruntime goes quiet under them): set one
    # here too, so a run on a laptop checks what a run in CI does
    monkeypatch.setenv("CI", "true")
    d = pc.opt_in_telemetry(tmp_path)
    assert d.ok, f"{d.detail} (onnxruntime {pc.ort_version()})"
    assert {"deviceid", "onnxruntime.db"} <= set(d.extra["written"])
    with pytest.raises(AssertionError, match="deviceid"):
        d.extra["trace"].assert_private()


def test_onnxruntime_imported_first_warns_once_and_the_remedy_works(tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    limit, remedy = pc.imported_first(tmp_path)
    assert limit.ok, limit.detail
    assert remedy.ok, remedy.detail


def test_ci_variables_silence_onnxruntime_so_the_sandbox_never_passes_them_on(tmp_path):
    """Why Sandbox.env() is an allowlist: with CI=true onnxruntime writes no telemetry even when opted in,
    so a negative check run with the runner's environment would pass in CI whatever edgeclf did."""
    d = pc.ci_markers(tmp_path)
    assert d.ok, (
        f"{d.detail} (onnxruntime {pc.ort_version()}: if it now writes under CI=true, the list is stale)"
    )


def test_detector_sees_a_socket_from_native_code_that_a_python_patch_misses(tmp_path):
    d = pc.native_socket(tmp_path)
    assert d.ok, d.detail
    with pytest.raises(AssertionError, match=r"socket\(AF_INET"):
        d.extra["trace"].assert_private()


def test_detector_sees_files_written_outside_the_allowed_places(tmp_path):
    box = Sandbox.create(tmp_path / "box")
    script = (
        "import os, pathlib, tempfile\n"
        "p = pathlib.Path(os.environ['HOME'], '.config', 'x'); p.mkdir(parents=True)\n"
        "(p / 'f').write_text('1')\n"
        "os.rename(p / 'f', p / 'g')\n"
        "fd, name = tempfile.mkstemp(); os.close(fd)\n"  # TMPDIR: allowed
        "pathlib.Path('asked.txt').write_text('ok')\n"
    )
    t = run_traced([sys.executable, "-c", script], box)
    assert t.returncode == 0, t.stderr
    bad = {ev.path for ev in t.writes_outside(allowed=[box.work / "asked.txt"])}
    cfg = box.home / ".config"
    assert bad == {str(cfg), str(cfg / "x"), str(cfg / "x" / "f"), str(cfg / "x" / "g")}
    assert str(box.work / "asked.txt") in {ev.path for ev in t.writes_outside()}
    assert box.leftovers()


def test_detector_tells_a_transient_semaphore_from_one_left_in_dev_shm(tmp_path):
    """multiprocessing's SemLock unlinks its /dev/shm/sem.* at once (allowed); a kept one is flagged."""
    name = f"edgeclf-test-{os.getpid()}"
    script = (
        "import ctypes, multiprocessing, os\n"
        "multiprocessing.Lock()\n"  # SemLock: sem_open + sem_unlink
        "libc = ctypes.CDLL(None)\n"
        "libc.sem_open.restype = ctypes.c_void_p\n"
        f"assert libc.sem_open(b'/{name}', os.O_CREAT, 0o600, 0)\n"  # never unlinked
    )
    box = Sandbox.create(tmp_path / "box")
    try:
        t = run_traced([sys.executable, "-c", script], box)
        assert t.returncode == 0, t.stderr
        assert len(t.transient_semaphores()) >= 1
        assert {ev.path for ev in t.writes_outside()} == {f"/dev/shm/sem.{name}"}
    finally:
        Path(f"/dev/shm/sem.{name}").unlink(missing_ok=True)


def test_long_running_process_stays_offline_while_opt_in_phones_home(tmp_path):
    """onnxruntime's upload starts ~10 s into a process: stay alive past it, beside an opted-in twin."""
    opted, default = pc.long_run(tmp_path)
    assert opted.ok, f"{opted.detail} (onnxruntime {pc.ort_version()})"
    assert default.ok, default.detail


# ---------------------------------------------------------------- export: local checkpoints, no Hub


@pytest.mark.export
def test_export_commands_cannot_reach_the_hub(tmp_path):
    pytest.importorskip("transformers")
    offline, online = pc.hub_lookup(tmp_path)
    assert offline.ok, offline.detail
    assert online.ok, online.detail  # the detector fires without the switch


@pytest.mark.parametrize("command", ["edgeclf.export.cli", "edgeclf.quantize.prune_cli"])
def test_export_and_prune_commands_switch_the_hub_off_first(command):
    script = (
        "import os, sys\n"
        f"from {command} import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('ENV', [os.environ.get(k) for k in ('HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE')])\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert "ENV ['1', '1']" in r.stdout, r.stderr[-2000:]


def test_listening_server_helper_allows_only_its_own_socket(tmp_path):
    """The API a server test uses (tests/syscalls.py ``traced``), on a real HTTP server."""
    import socket
    import time
    import urllib.request

    from .syscalls import traced

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    box = Sandbox.create(tmp_path / "box")
    argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
    with traced(argv, box) as proc:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
                break
            except OSError:
                time.sleep(0.2)
    t = proc.trace
    assert b"Directory listing" in body
    assert t.listening == [("127.0.0.1", port)]
    t.assert_private(listen=[("127.0.0.1", port)])
    with pytest.raises(AssertionError, match="socket"):
        t.assert_private()  # without naming its address, the listening socket is a violation
    with pytest.raises(AssertionError, match="socket"):
        t.assert_private(listen=[("127.0.0.1", port + 1)])
