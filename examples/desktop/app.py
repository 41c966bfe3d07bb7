"""A desktop review classifier: Tk (standard library) + edgeclf.

    python examples/desktop/app.py [--model keras-imdb]

The window is up and answering input at once; the model loads in the
background (``edgeclf.load_async``). Typing re-classifies after a short
pause (debounced); predictions run on a worker thread so a long review
never freezes the window; the result shows label, score and which
model/variant/provider answered. Alt+1, Alt+2 ... (or the radio buttons)
switch between the embedded models; the previous one is closed, which frees
its memory.

Tk widgets are touched only from the Tk thread: background work hands back
``concurrent.futures.Future`` objects that the Tk thread polls with ``after``.

For tests: ``EDGECLF_DESKTOP_STATE=FILE`` makes the app write what it
displays (read back from the widgets) to FILE as JSON after every change.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tkinter as tk
from concurrent.futures import Future, ThreadPoolExecutor
from tkinter import ttk

import edgeclf

DEBOUNCE_MS = 250
POLL_MS = 30
HEARTBEAT_MS = 20
COLOURS = {"positive": "#1a7f37", "real": "#1a7f37", "negative": "#b42318", "fake": "#b42318"}


class App:
    def __init__(self, root: tk.Tk, model: str) -> None:
        self.root = root
        self.models = edgeclf.list_models()  # reads directory names only: no onnxruntime yet
        self.clf: edgeclf.Classifier | None = None
        self.loading: Future | None = None
        self.load_started = 0.0
        self.pending: Future | None = None
        self.pending_text: str | None = None
        self.debounce_id: str | None = None
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")
        self.state_file = os.environ.get("EDGECLF_DESKTOP_STATE")
        self.last_beat = time.perf_counter()
        self.max_gap_ms = 0.0  # longest the event loop went without running during the last load
        self.load_seconds: float | None = None

        root.title("edgeclf: review classifier")
        root.geometry("640x400")
        frame = ttk.Frame(root, padding=10)
        frame.pack(fill="both", expand=True)

        bar = ttk.Frame(frame)
        bar.pack(fill="x")
        ttk.Label(bar, text="Model:").pack(side="left")
        self.model_var = tk.StringVar(value=model)
        for i, name in enumerate(self.models, start=1):
            ttk.Radiobutton(
                bar, text=f"{name} (Alt+{i})", value=name, variable=self.model_var, command=self.on_model
            ).pack(side="left", padx=4)
            root.bind(f"<Alt-Key-{i}>", lambda _e, n=name: self.select(n))

        self.text = tk.Text(frame, height=10, wrap="word", font=("DejaVu Sans", 11), undo=True)
        self.text.pack(fill="both", expand=True, pady=8)
        self.text.bind("<<Modified>>", self.on_modified)

        self.result = ttk.Label(frame, text="", font=("DejaVu Sans", 18, "bold"))
        self.result.pack(anchor="w")
        self.status = ttk.Label(frame, text="", foreground="#555")
        self.status.pack(anchor="w")

        root.protocol("WM_DELETE_WINDOW", self.quit)
        self.text.focus_set()
        self.start_loading(model)
        root.after(POLL_MS, self.poll)
        root.after(HEARTBEAT_MS, self.heartbeat)

    # ------------------------------------------------------------ models

    def select(self, name: str) -> None:
        self.model_var.set(name)
        self.on_model()

    def on_model(self) -> None:
        name = self.model_var.get()
        if self.clf is not None and self.clf.manifest.name == name and self.loading is None:
            return
        self.start_loading(name)

    def start_loading(self, name: str) -> None:
        old, self.clf = self.clf, None
        if old is not None:
            old.close()  # frees its session and tokenizer now, not whenever the GC runs
        self.loading = edgeclf.load_async(name)
        self.load_started = self.last_beat = time.perf_counter()
        self.max_gap_ms = 0.0
        self.result.config(text="")
        self.status.config(text=f"loading {name} ...")
        self.write_state()

    # ------------------------------------------------------------ typing

    def on_modified(self, _event: object) -> None:
        self.text.edit_modified(False)  # re-arm <<Modified>>
        if self.debounce_id is not None:
            self.root.after_cancel(self.debounce_id)
        self.debounce_id = self.root.after(DEBOUNCE_MS, self.classify)

    def current_text(self) -> str:
        return self.text.get("1.0", "end-1c").strip()

    def classify(self) -> None:
        self.debounce_id = None
        text = self.current_text()
        if self.clf is None:
            return  # classified when the model arrives
        if not text:
            self.result.config(text="")
            self.write_state()
            return
        clf = self.clf
        self.pending_text = text
        self.pending = self.worker.submit(lambda: (clf, clf.predict(text)[0]))

    # ------------------------------------------------------------ the Tk thread's poll

    def poll(self) -> None:
        if self.loading is not None and self.loading.done():
            self.heartbeat(reschedule=False)  # count the stretch up to now as well
            future, self.loading = self.loading, None
            try:
                self.clf = future.result()
            except Exception as exc:  # a bad bundle: say so in the window, stay usable
                self.status.config(text=f"could not load: {exc}")
            else:
                self.load_seconds = time.perf_counter() - self.load_started
                self.status.config(text=f"{self.describe(self.clf)}, loaded in {self.load_seconds:.2f} s")
                self.classify()
            self.write_state()
        if self.pending is not None and self.pending.done():
            future, self.pending = self.pending, None
            try:
                clf, pred = future.result()
            except edgeclf.ClosedError:
                clf = None  # the model was switched meanwhile; the new one re-classifies
            if clf is not None and clf is self.clf and self.pending_text == self.current_text():
                self.result.config(
                    text=f"{pred.label}  {pred.score:.3f}", foreground=COLOURS.get(pred.label, "")
                )
                self.status.config(text=f"answered by {self.describe(clf)}")
                self.write_state()
        self.root.after(POLL_MS, self.poll)

    def heartbeat(self, reschedule: bool = True) -> None:
        """Measure how long the event loop went without running while a model loads."""
        now = time.perf_counter()
        if self.loading is not None:
            self.max_gap_ms = max(self.max_gap_ms, (now - self.last_beat) * 1000)
        self.last_beat = now
        if reschedule:
            self.root.after(HEARTBEAT_MS, self.heartbeat)

    @staticmethod
    def describe(clf: edgeclf.Classifier) -> str:
        return (
            f"{clf.manifest.name} / {clf.variant.name} on {clf.providers[0].replace('ExecutionProvider', '')}"
        )

    # ------------------------------------------------------------ test hook and exit

    def write_state(self) -> None:
        if not self.state_file:
            return
        state = {
            "model": self.model_var.get(),
            "loaded": self.clf is not None,
            "text": self.current_text(),
            "result": self.result.cget("text"),  # what the window shows, read back from the widget
            "status": self.status.cget("text"),
            "load_seconds": self.load_seconds,
            "max_event_gap_ms_while_loading": round(self.max_gap_ms, 1),
        }
        tmp = f"{self.state_file}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(state, fh, ensure_ascii=False)
        os.replace(tmp, self.state_file)

    def quit(self) -> None:
        self.worker.shutdown(wait=False, cancel_futures=True)
        if self.clf is not None:
            self.clf.close()
        self.root.destroy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="keras-imdb", help="embedded model to start with")
    args = parser.parse_args(argv)
    root = tk.Tk()
    App(root, args.model)
    root.mainloop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
