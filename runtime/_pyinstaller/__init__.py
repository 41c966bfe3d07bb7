"""PyInstaller support, found through the ``pyinstaller40`` entry point.

``pyinstaller app.py`` on a script that imports edgeclf then needs no extra
options: the hook in this directory collects the embedded model bundles and
the other data files the runtime opens through ``importlib.resources``, and
the runtime modules it imports lazily. See docs/desktop.md.
"""

from __future__ import annotations

import os


def get_hook_dirs() -> list[str]:
    return [os.path.dirname(__file__)]
