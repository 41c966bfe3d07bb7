"""The example desktop app (examples/desktop/app.py) driven like a user, in a real X server.

Xvfb is the display, xdotool types and presses keys through XTEST (real
key events, not calls into the app), and the app reports what its widgets
display through ``EDGECLF_DESKTOP_STATE``. The test types reviews, reads the
label the window shows, switches model with the keyboard shortcut, checks
each answer against the model run directly, and screenshots the window
(``xwd | xwdtopnm | pnmtopng``). ``EDGECLF_SCREENSHOT=docs/img/desktop-app.png``
also writes the screenshot there (how the README's image is made).

Needs Debian's xvfb (+ xfonts-base), xdotool, x11-apps and netpbm (CI installs them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import edgeclf

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "examples" / "desktop" / "app.py"
TOOLS = ("Xvfb", "xdotool", "xwd", "xwdtopnm", "pnmtopng")
missing = [t for t in TOOLS if shutil.which(t) is None]
pytestmark = pytest.mark.skipif(
    bool(missing),
    reason=f"needs {', '.join(missing)} (apt-get install xvfb xdotool x11-apps netpbm; CI installs them)",
)

POSITIVE = "A moving, beautifully acted film. The best performance of the year, I loved it."
NEGATIVE = "Dull, predictable and far too long. A waste of time and money, the worst film I have seen."


@pytest.fixture()
def display():
    pytest.importorskip("tkinter", reason="this Python has no tkinter")
    r, w = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(w), "-screen", "0", "800x600x24", "-nolisten", "tcp"],
        pass_fds=(w,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(w)
    with os.fdopen(r) as fh:
        number = fh.readline().strip()  # Xvfb writes the display number once it accepts clients
    assert number, "Xvfb did not start"
    yield f":{number}"
    xvfb.terminate()
    xvfb.wait(10)


def run(display: str, *args: str) -> str:
    return subprocess.run(
        list(args),
        env={**os.environ, "DISPLAY": display},
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout


def wait_state(path: Path, accept, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    state: dict = {}
    while time.monotonic() < deadline:
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            state = {}
        if state and accept(state):
            return state
        time.sleep(0.05)
    raise AssertionError(f"the window never showed the expected state; last: {state}")


def expected(model: str, text: str) -> str:
    with edgeclf.load(model) as clf:  # the app uses the default providers too
        p = clf.predict(text)[0]
    return f"{p.label}  {p.score:.3f}"


def test_type_review_read_label_switch_model_screenshot(display, tmp_path):
    state_file = tmp_path / "state.json"
    env = {**os.environ, "DISPLAY": display, "EDGECLF_DESKTOP_STATE": str(state_file)}
    started = time.perf_counter()
    app = subprocess.Popen([sys.executable, str(APP), "--model", "keras-imdb"], env=env)
    try:
        wid = run(display, "xdotool", "search", "--sync", "--name", "edgeclf: review classifier").split()[0]
        # the window is up while the model loads; once loaded, the empty text shows no label
        wait_state(state_file, lambda s: s["loaded"])
        # click into the text box as a user would, then type
        run(display, "xdotool", "mousemove", "--window", wid, "320", "150", "click", "1")
        run(display, "xdotool", "type", "--delay", "15", POSITIVE)
        want = expected("keras-imdb", POSITIVE)
        s = wait_state(state_file, lambda s: s["text"] == POSITIVE and s["result"])
        assert s["result"] == want and want.startswith("positive")
        assert s["status"].startswith("answered by keras-imdb / int8")

        # select all (Tk: Ctrl+/), type over it: a negative review
        run(display, "xdotool", "key", "ctrl+slash", "BackSpace")
        run(display, "xdotool", "type", "--delay", "15", NEGATIVE)
        want = expected("keras-imdb", NEGATIVE)
        s = wait_state(state_file, lambda s: s["text"] == NEGATIVE and s["result"])
        assert s["result"] == want and want.startswith("negative")

        # Alt+N picks the N-th embedded model: albert-imdb loads in the background, then answers
        run(display, "xdotool", "key", f"alt+{edgeclf.list_models().index('albert-imdb') + 1}")
        want = expected("albert-imdb", NEGATIVE)
        s = wait_state(state_file, lambda s: s["model"] == "albert-imdb" and s["result"] and s["loaded"])
        assert s["result"] == want and want.startswith("negative")
        assert s["status"].startswith("answered by albert-imdb / ngram-int8")  # its default CPU variant
        # loading ran beside the event loop, not on it: a load on the Tk thread stalls it for the whole load
        assert s["max_event_gap_ms_while_loading"] < 0.8 * 1000 * s["load_seconds"]
        print(
            f"\nloaded albert-imdb in {s['load_seconds']:.2f} s; longest event-loop gap while loading: "
            f"{s['max_event_gap_ms_while_loading']} ms; whole UI session {time.perf_counter() - started:.1f} s"
        )

        shot = tmp_path / "desktop-app.png"
        xwd = run(display, "xwd", "-id", wid, "-silent", "-out", str(tmp_path / "w.xwd"))
        assert xwd == ""
        ppm = subprocess.run(["xwdtopnm", str(tmp_path / "w.xwd")], check=True, capture_output=True).stdout
        shot.write_bytes(subprocess.run(["pnmtopng"], input=ppm, check=True, capture_output=True).stdout)
        assert len(set(ppm[-640 * 400 * 3 :][::3])) > 8, "the screenshot is blank"
        if os.environ.get("EDGECLF_SCREENSHOT"):
            shutil.copy(shot, os.environ["EDGECLF_SCREENSHOT"])
    finally:
        app.terminate()
        app.wait(10)
