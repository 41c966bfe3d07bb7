"""What ``edgeclf profile`` measures, with which texts, on which machine.

The settings and their defaults, the flag parsers, the texts (built-in or
sampled from a CSV, cut to exact token lengths) and the machine facts a
profile records. Standard library, numpy and onnxruntime only.
"""

from __future__ import annotations

import gzip
import os
import platform
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from .. import __version__
from .. import bundle as _bundle
from ..session import available_providers

SAMPLES_FILE = "profile_samples.txt"


@dataclass(frozen=True)
class ProfileSettings:
    """What to measure. ``None`` fields take defaults that depend on the bundle/machine."""

    variants: tuple[str, ...] | None = None  # None: every variant of the bundle
    providers: tuple[str, ...] | None = None  # None: cpu, plus cuda where onnxruntime offers it
    threads: tuple[int, ...] | None = None  # None: 1 and every usable core
    batch_sizes: tuple[int, ...] = (1, 8, 64)
    seq_lens: tuple[int | str, ...] | None = None  # ints and/or "real"; None: see default_seq_lens
    budget_s: float = 1.0  # timed seconds per configuration (after warm-up)
    warmup: int = 3
    min_runs: int = 10
    max_runs: int = 100_000
    cold_runs: int = 3  # fresh-subprocess cold starts per session group; 0 skips them

    def validate(self) -> None:
        """Refuse nonsense early (a ValueError is a usage error, exit 2)."""
        for name, values in (
            ("threads", self.threads),
            ("batch sizes", self.batch_sizes),
        ):
            if values is not None and (not values or any(v < 1 for v in values)):
                raise ValueError(f"{name} must be a non-empty list of integers >= 1")
        if self.variants is not None and not self.variants:
            raise ValueError("variants must not be empty")
        if self.providers is not None and not self.providers:
            raise ValueError("providers must not be empty")
        if self.seq_lens is not None:
            if not self.seq_lens:
                raise ValueError("seq lens must not be empty")
            for s in self.seq_lens:
                if s != "real" and (not isinstance(s, int) or s < 1):
                    raise ValueError(f"seq len {s!r}: expected an integer >= 1 or 'real'")
        if not self.budget_s > 0:
            raise ValueError("budget must be > 0 seconds")
        if self.warmup < 0 or self.cold_runs < 0:
            raise ValueError("warm-up and cold-start runs must be >= 0")
        if self.min_runs < 1 or self.max_runs < self.min_runs:
            raise ValueError("need 1 <= min_runs <= max_runs")


# ------------------------------------------------------------------ flags


def parse_int_list(text: str, what: str) -> tuple[int, ...]:
    """``"1,8,64"`` -> ``(1, 8, 64)`` (order kept, duplicates dropped)."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            value = int(part)
        except ValueError:
            raise ValueError(f"--{what}: {part!r} is not an integer (expected e.g. 1,8,64)") from None
        if value < 1:
            raise ValueError(f"--{what}: {value} must be >= 1")
        if value not in out:
            out.append(value)
    return tuple(out)


def parse_seq_lens(text: str) -> tuple[int | str, ...]:
    """``"64,128,real"`` -> ``(64, 128, "real")``."""
    out: list[int | str] = []
    for part in text.split(","):
        part = part.strip().lower()
        value: int | str = "real" if part == "real" else parse_int_list(part, "seq-lens")[0]
        if value not in out:
            out.append(value)
    return tuple(out)


def parse_word_list(text: str) -> tuple[str, ...]:
    words = tuple(dict.fromkeys(w.strip() for w in text.split(",") if w.strip()))
    if not words:
        raise ValueError(f"empty list {text!r}")
    return words


def default_threads() -> tuple[int, ...]:
    """1 (the embedded/desktop case) and all usable cores (the batch-job case)."""
    n = usable_cores()
    return tuple(dict.fromkeys((1, n)))


def default_providers() -> tuple[str, ...]:
    return ("cpu", "cuda") if "CUDAExecutionProvider" in available_providers() else ("cpu",)


def default_seq_lens(manifest: _bundle.Manifest) -> tuple[int | str, ...]:
    """Fixed-length bundles: their max_length. Others: 64, 128 and max_length (those that fit)."""
    if manifest.padding == "max_length":
        return (manifest.max_length,)
    return tuple(dict.fromkeys([n for n in (64, 128) if n < manifest.max_length] + [manifest.max_length]))


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # type: ignore[attr-defined]
    except AttributeError:
        return os.cpu_count() or 1


# ------------------------------------------------------------------ texts


def sample_texts() -> list[str]:
    """The built-in review-style texts (one per line; ``#`` lines are comments)."""
    try:
        raw = (resources.files(__package__) / SAMPLES_FILE).read_text(encoding="utf-8")
    except (FileNotFoundError, OSError):
        raise ValueError(
            f"the built-in sample texts ({SAMPLES_FILE}) are missing from this installation; "
            "pass --data FILE.csv"
        ) from None
    return [line for line in raw.splitlines() if line.strip() and not line.startswith("#")]


def load_texts(
    path: str | os.PathLike[str],
    *,
    text_column: str = "text",
    max_texts: int = 1000,
    delimiter: str = ",",
    encoding: str = "utf-8",
    seed: int = 0,
) -> list[str]:
    """Real texts from a CSV (``.gz`` too): a seeded uniform sample of ``max_texts`` rows.

    Sampled rather than the first rows because datasets are often sorted (the
    IMDB CSVs by polarity and id), and review length correlates with both.
    """
    from ..csvio import open_text, read_rows
    from ..texts import InputFileError

    if max_texts < 1:
        raise ValueError("--max-texts must be >= 1")
    name = os.fspath(path)
    if name.endswith(".gz"):
        try:
            fh = gzip.open(name, "rt", encoding="utf-8-sig", errors="surrogateescape", newline="")  # noqa: SIM115
        except FileNotFoundError:
            raise InputFileError(f"{name}: no such file") from None
    else:
        fh = open_text(name, encoding)
    rng = random.Random(seed)
    chosen: list[str] = []
    seen = 0
    with fh:
        try:
            for row in read_rows(fh, name=name, id_column=None, text_column=text_column, delimiter=delimiter):
                if row.error is not None or not row.text or not row.text.strip():
                    continue
                seen += 1
                if len(chosen) < max_texts:  # reservoir sampling: one pass, bounded memory
                    chosen.append(row.text)
                else:
                    j = rng.randrange(seen)
                    if j < max_texts:
                        chosen[j] = row.text
        except (OSError, EOFError) as exc:  # e.g. a truncated or non-gzip .gz file
            raise InputFileError(f"{name}: {exc}") from None
    if not chosen:
        raise InputFileError(f"{name}: no usable texts in column {text_column!r}")
    return chosen


def texts_of_length(
    encode: Callable[[str], list[int]], texts: Sequence[str], length: int, n: int
) -> list[str]:
    """``n`` texts of exactly ``length`` tokens (when possible), as windows over the real texts.

    The texts are joined into one stream of words; each window is the longest
    run of words, starting where the previous one ended (wrapping around),
    whose encoding (special tokens included) fits in ``length`` tokens. So a
    long review yields several windows and short ones are joined: every
    window is real prose, and its token count is the one asked for.
    """
    words = [w for t in texts for w in t.split()]
    if not words:
        raise ValueError("no words in the texts")
    limit = min(len(words), 2 * length + 8)

    def longest_fit(start: int) -> tuple[str, int, int]:
        window = (words[start:] + words[:start])[:limit]
        lo, hi = 1, len(window)  # largest k with len(encode(window[:k])) <= length
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if len(encode(" ".join(window[:mid]))) <= length:
                lo = mid
            else:
                hi = mid - 1
        text = " ".join(window[:lo])
        return text, lo, len(encode(text))

    out: list[str] = []
    start = 0
    for _ in range(n):
        # one whitespace word can be several tokens ("film.<br" is two words to Keras, a long
        # word several pieces to SentencePiece), so a window may end a token short: then try
        # starting a word later, a few times, and keep the closest
        best = longest_fit(start)
        for shift in range(1, 8):
            if best[2] == length:
                break
            candidate = longest_fit((start + shift) % len(words))
            if candidate[2] > best[2]:
                best = candidate
        out.append(best[0])
        start = (start + best[1]) % len(words)
    return out


# ------------------------------------------------------------------ machine


def machine_info() -> dict[str, Any]:
    """Enough about the machine to tell two profiles apart (and to spot a busy one)."""
    from .._ort import import_onnxruntime

    ort = import_onnxruntime()

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "system": platform.system(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cores": usable_cores(),
        "memory_bytes": _meminfo_total(),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "onnxruntime": ort.__version__,
        "numpy": np.__version__,
        "edgeclf": __version__,
        "providers_available": available_providers(),
    }
    return info


def cpu_model() -> str:
    """The CPU's marketing name: /proc/cpuinfo on Linux (x86 and ARM), else platform's guess."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            fields = {}
            for line in fh:
                key, sep, value = line.partition(":")
                if sep:
                    fields.setdefault(key.strip().lower(), value.strip())
        for key in ("model name", "hardware", "model", "cpu model", "cpu"):
            if fields.get(key):
                return fields[key]
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _meminfo_total() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def machine_busy(machine: dict[str, Any]) -> bool:
    """A 1-minute load average over half the usable cores makes timings noisy."""
    load = machine.get("load_average")
    return bool(load) and load[0] > 0.5 * max(1, machine.get("usable_cores") or 1)
