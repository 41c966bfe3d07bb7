"""Refuse, with a useful message, platforms that onnxruntime does not ship for.

onnxruntime publishes no wheels for 32-bit ARM (armv7l / armv6l: 32-bit
Raspberry Pi OS, older Pis), so there ``pip install edgeclf`` installs
without it (pyproject.toml's environment marker) and ``import edgeclf`` stops
here and tells the user what to do instead of failing later with a bare
``No module named 'onnxruntime'``. A user who built onnxruntime for 32-bit
ARM themselves is not stopped: the check only fires when it is missing.

This runs at ``import edgeclf``, so it must stay cheap: ``find_spec`` looks
for onnxruntime on sys.path without importing it.
"""

from __future__ import annotations

import importlib.util
import platform
import sys

ARM32_MACHINES = ("armv6l", "armv7l", "armv8l", "arm")


def is_arm32(machine: str, pointer_bits: int) -> bool:
    """32-bit ARM userland, also under a 64-bit kernel (uname says aarch64, the interpreter is 32-bit)."""
    m = machine.lower()
    return m in ARM32_MACHINES or (m in ("aarch64", "arm64") and pointer_bits == 32)


def unsupported_platform_message(machine: str, pointer_bits: int, has_onnxruntime: bool) -> str | None:
    """The error to raise for this platform, or None when edgeclf can run here."""
    if has_onnxruntime or not is_arm32(machine, pointer_bits):
        return None
    return (
        f"edgeclf needs onnxruntime, which publishes no wheels for 32-bit ARM "
        f"(this is {machine}, a {pointer_bits}-bit Python). On a Raspberry Pi, install the "
        "64-bit Raspberry Pi OS (aarch64; Pi 3, 4, 5, Zero 2 W) and `pip install edgeclf` there. "
        "(Or build onnxruntime for this platform from source and install it first.) "
        "See docs/raspberry-pi.md."
    )


def check_platform() -> None:
    """Raise ImportError on a 32-bit ARM system without onnxruntime."""
    machine = platform.machine()
    bits = 64 if sys.maxsize > 2**32 else 32
    if not is_arm32(machine, bits):
        return
    message = unsupported_platform_message(machine, bits, importlib.util.find_spec("onnxruntime") is not None)
    if message:
        raise ImportError(message)
