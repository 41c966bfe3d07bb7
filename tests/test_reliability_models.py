"""Tampered bundles are refused before any parser sees a byte; the runtime has no
pickle, eval/exec or network code.

tests/test_bundle.py checks the messages for the common cases; here every
attack also proves, by spying on ``edgeclf.session.make_session``,
``onnxruntime.InferenceSession`` and the tokenizer builder, that the altered
bytes never reached onnxruntime or a tokenizer. Network and file-system
privacy is checked with strace in tests/test_privacy_syscalls.py (not
duplicated here).
"""

from __future__ import annotations

import re
import shutil
import textwrap
from pathlib import Path

import pytest

from edgeclf.bundle import embedded_root

from . import hostile

ATTACKS = hostile.bundle_attacks()


def _param(a: hostile.BundleAttack) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=a.known_bug)] if a.known_bug else []
    return pytest.param(a, id=a.name, marks=marks)


@pytest.mark.parametrize("attack", [_param(a) for a in ATTACKS])
def test_attack_is_refused_before_any_parser(attack: hostile.BundleAttack, tmp_path: Path) -> None:
    message, spy = hostile.attack_bundle(attack, tmp_path)
    assert message != "ACCEPTED"
    assert not message.startswith("NOT A BundleError"), message
    assert spy.sessions == 0 and spy.ort_sessions == 0, "onnxruntime saw the bytes"
    if attack.target in ("vocab", "manifest"):
        assert spy.tokenizers == 0, "a tokenizer parsed unverified bytes"
    assert re.search(attack.message, message), message


def test_the_spy_sees_a_good_load(tmp_path: Path) -> None:
    """Without an attack the same spies count one session and one tokenizer (so zero above means something)."""
    import edgeclf

    shutil.copytree(embedded_root() / "keras-imdb", tmp_path / "b")
    with hostile.spy_on_parsers() as spy:
        edgeclf.load(tmp_path / "b", providers="cpu")
    assert (spy.sessions, spy.ort_sessions, spy.tokenizers) == (1, 1, 1)


def test_tampered_bundle_through_the_cli_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "b"
    shutil.copytree(embedded_root() / "keras-imdb", root)
    f = root / "model.int8.onnx"
    data = bytearray(f.read_bytes())
    data[1000] ^= 0x80
    f.write_bytes(bytes(data))
    src = tmp_path / "in.csv"
    src.write_text("id,text\n1,a fine film\n")
    out = tmp_path / "out.csv"
    run = hostile.run_inprocess(["predict", str(src), "-o", str(out), "--model", str(root)])
    assert run.returncode == 2 and "checksum mismatch" in run.stderr and "model.int8.onnx" in run.stderr
    assert not out.exists() and not hostile.temp_litter(tmp_path)


def test_runtime_sources_have_no_pickle_eval_exec_or_network() -> None:
    files, violations = hostile.scan_runtime_sources()
    assert files >= 8
    assert violations == [], violations


def test_the_source_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    pkg = tmp_path / "runtime"
    pkg.mkdir()
    (pkg / "bad.py").write_text(
        textwrap.dedent(
            '''
            """Docstrings may say pickle, socket and eval( freely."""
            import os, pickle
            from http import client
            from urllib.request import urlopen

            def f(x):
                import socket
                np.load(x, allow_pickle=True)
                return eval(x) or exec(x)
            '''
        )
    )
    _, violations = hostile.scan_runtime_sources(pkg)
    found = sorted(v.split(": ", 1)[1] for v in violations)
    assert found == sorted(
        ["pickle", "http", "urllib.request", "socket", "allow_pickle=", "eval()", "exec()"]
    )


def test_a_fifo_in_place_of_a_model_is_refused_without_hanging(bundle_copy):
    import os

    import edgeclf
    from edgeclf.bundle import BundleError

    target = bundle_copy / "model.int8.onnx"
    target.unlink()
    os.mkfifo(target)
    with pytest.raises(BundleError, match="not a regular file"):
        edgeclf.load(bundle_copy)
