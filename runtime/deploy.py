"""Deployment files shipped in the package, so a machine with only the wheel can install them.

    edgeclf deploy systemd > edgeclf-serve.service      (or: python -m edgeclf.deploy systemd)

prints the systemd unit that runs ``edgeclf serve`` as an unprivileged, sandboxed service
(docs/raspberry-pi.md, "Run it as a service"). Standard library only.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib import resources

UNIT_NAME = "edgeclf-serve.service"
DEFAULT_EXECUTABLE = "/opt/edgeclf/bin/edgeclf"
DEFAULT_MODELS = ("keras-imdb",)


def systemd_unit(executable: str = DEFAULT_EXECUTABLE, models: Sequence[str] = DEFAULT_MODELS) -> str:
    """The text of ``edgeclf-serve.service``.

    ``executable``: the ``edgeclf`` script of the environment the service runs (an absolute path).
    ``models``: the ``--model`` arguments of ``edgeclf serve``, the first being the default model.
    """
    if not executable.startswith("/"):
        raise ValueError(f"executable must be an absolute path (systemd needs one), got {executable!r}")
    if not models or any(not m or any(c.isspace() for c in m) for m in models):
        raise ValueError(f"models must be one or more names or paths without spaces, got {list(models)!r}")
    text = resources.files("edgeclf").joinpath(UNIT_NAME).read_text(encoding="utf-8")
    default = f"{DEFAULT_EXECUTABLE} serve " + " ".join(f"--model {m}" for m in DEFAULT_MODELS)
    wanted = f"{executable} serve " + " ".join(f"--model {m}" for m in models)
    if default not in text:  # the shipped unit and this module disagree: a packaging error
        raise RuntimeError(f"{UNIT_NAME} has no ExecStart starting {default!r}")
    return text.replace(default, wanted, 1)


def main(argv: Sequence[str] | None = None, prog: str = "python -m edgeclf.deploy") -> int:
    """``edgeclf deploy`` / ``python -m edgeclf.deploy``: print a shipped deployment file."""
    import argparse

    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=["systemd"], help="systemd: print edgeclf-serve.service")
    p.add_argument("--executable", default=DEFAULT_EXECUTABLE, help=f"default: {DEFAULT_EXECUTABLE}")
    p.add_argument("--model", action="append", dest="models", help="repeat for more (default: keras-imdb)")
    args = p.parse_args(argv)
    try:
        sys.stdout.write(systemd_unit(args.executable, args.models or DEFAULT_MODELS))
    except ValueError as exc:
        p.error(str(exc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
