"""The one place the runtime imports onnxruntime, with its telemetry off.

Why: onnxruntime wheels (measured: 1.32.0 on Linux) switch telemetry on by
default. ``import onnxruntime`` alone writes a persistent device id and an
SQLite queue of usage events (``$XDG_CACHE_HOME`` or
``~/.cache/Microsoft/DeveloperTools/.onnxruntime/deviceid`` and
``onnxruntime.db``, plus ``$TMPDIR/.ses``), and within seconds the process
resolves ``mobile.events.data.microsoft.com`` to upload them. edgeclf
promises no network and no files beyond what the user asked for, so:

- ``apply_privacy_defaults()`` (run by ``import edgeclf``, before edgeclf
  imports onnxruntime) sets ``ORT_DISABLE_TELEMETRY=1`` in the process
  environment. onnxruntime reads it once, while being imported; setting it
  afterwards, or calling ``onnxruntime.disable_telemetry_events()`` alone,
  does not stop the files (measured). The variable is inherited by child
  processes, which is what a user who runs edgeclf from a script wants too.
- ``import_onnxruntime()`` is how every runtime module gets onnxruntime. It
  also calls ``onnxruntime.disable_telemetry_events()`` where that exists, so
  no events are logged even by a build that ignores the variable.
- Opt-in: ``EDGECLF_ALLOW_ORT_TELEMETRY=1`` leaves onnxruntime's own default
  (and any ``ORT_DISABLE_TELEMETRY`` value) alone.
- If the host application imported onnxruntime before edgeclf, without
  ``ORT_DISABLE_TELEMETRY=1``, it is too late: the first
  ``import_onnxruntime()`` warns once (``OrtTelemetryWarning``), naming the
  variable to set before Python starts.

Only the standard library is imported here; onnxruntime itself is imported
on the first call of ``import_onnxruntime()``.
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from types import ModuleType

ORT_ENV = "ORT_DISABLE_TELEMETRY"
OPT_IN_ENV = "EDGECLF_ALLOW_ORT_TELEMETRY"
#: values of ORT_DISABLE_TELEMETRY that onnxruntime 1.32 takes as "off" (measured:
#: "1" and "true" turn it off; "0", "false", "no", "off", "2" and "" leave it on)
_DISABLING = ("1", "true")


class OrtTelemetryWarning(RuntimeWarning):
    """onnxruntime was initialized before edgeclf could turn its telemetry off."""


_lock = threading.Lock()
_applied = False
_imported_before = False  # onnxruntime was in sys.modules when edgeclf first acted
_env_before: str | None = None  # ORT_DISABLE_TELEMETRY as the process had it then
_warned = False


def telemetry_allowed() -> bool:
    """The user opted in to onnxruntime's telemetry (``EDGECLF_ALLOW_ORT_TELEMETRY=1``)."""
    return os.environ.get(OPT_IN_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _disables(value: str | None) -> bool:
    return value is not None and value.strip().lower() in _DISABLING


def apply_privacy_defaults() -> None:
    """Set ``ORT_DISABLE_TELEMETRY=1`` unless the user opted in (idempotent, stdlib only)."""
    global _applied, _imported_before, _env_before
    with _lock:
        if _applied:
            return
        _applied = True
        _imported_before = "onnxruntime" in sys.modules
        _env_before = os.environ.get(ORT_ENV)
        if not telemetry_allowed() and not _disables(_env_before):
            # a value onnxruntime reads as "on" ("0", "false", "") is replaced too:
            # the one documented way to keep telemetry is the opt-in above
            os.environ[ORT_ENV] = "1"


def telemetry_state() -> dict[str, object]:
    """What edgeclf did about telemetry in this process (for ``edgeclf info`` and tests)."""
    apply_privacy_defaults()
    return {
        "opted_in": telemetry_allowed(),
        "ORT_DISABLE_TELEMETRY": os.environ.get(ORT_ENV),
        "onnxruntime_imported_before_edgeclf": _imported_before,
        "guaranteed_off": not telemetry_allowed() and (not _imported_before or _disables(_env_before)),
    }


def import_onnxruntime() -> ModuleType:
    """``import onnxruntime``, with telemetry turned off first unless the user opted in."""
    global _warned
    apply_privacy_defaults()
    import onnxruntime

    if telemetry_allowed():
        return onnxruntime
    off = getattr(onnxruntime, "disable_telemetry_events", None)
    if off is not None:
        off()
    with _lock:
        too_late = _imported_before and not _disables(_env_before) and not _warned
        if too_late:
            _warned = True
    if too_late:
        warnings.warn(
            "onnxruntime was imported before edgeclf, without ORT_DISABLE_TELEMETRY=1: its telemetry "
            "may already have written a device id (~/.cache/Microsoft/DeveloperTools/.onnxruntime) and "
            "may send usage events. Set ORT_DISABLE_TELEMETRY=1 in the environment before Python "
            f"starts, or import edgeclf first; set {OPT_IN_ENV}=1 to keep telemetry and silence this.",
            OrtTelemetryWarning,
            stacklevel=3,
        )
    return onnxruntime
