"""Compare two `edgeclf predict --format jsonl --probabilities` outputs row by row.

Used by emulated-test.sh: the x86_64 host's answers against the emulated
arm64 Raspberry Pi OS's, for the same wheel, model, variant and input. Rows
must match one to one (same ids, same order, same errors), labels must be
identical and every probability within --tolerance. Prints one summary line;
exits 1 with the differing rows on a mismatch. Standard library only.

    python3 compare_predictions.py A.jsonl B.jsonl --tolerance 1e-4 --name keras-imdb/int8
"""

from __future__ import annotations

import argparse
import json
import sys


def read(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def compare(host: list[dict], pi: list[dict], tolerance: float) -> tuple[list[str], float, int]:
    """Problems found, the largest probability difference, and the number of rows classified."""
    problems: list[str] = []
    if len(host) != len(pi):
        problems.append(f"row count differs: host {len(host)}, pi {len(pi)}")
    worst, classified = 0.0, 0
    for i, (h, p) in enumerate(zip(host, pi, strict=False), start=1):
        where = f"row {i} (id {h.get('id')!r})"
        if h.get("id") != p.get("id"):
            problems.append(f"{where}: id differs: host {h.get('id')!r}, pi {p.get('id')!r}")
            continue
        if h.get("error") != p.get("error"):
            problems.append(f"{where}: error differs: host {h.get('error')!r}, pi {p.get('error')!r}")
            continue
        if h.get("error"):
            continue
        classified += 1
        hp, pp = h["probabilities"], p["probabilities"]
        if set(hp) != set(pp):
            problems.append(f"{where}: labels differ: host {sorted(hp)}, pi {sorted(pp)}")
            continue
        diff = max(abs(hp[k] - pp[k]) for k in hp)
        worst = max(worst, diff)
        if h["label"] != p["label"]:
            problems.append(
                f"{where}: label differs: host {h['label']} {hp}, pi {p['label']} {pp} (max diff {diff:.2e})"
            )
        elif diff > tolerance:
            problems.append(
                f"{where}: probabilities differ by {diff:.2e} > {tolerance:g}: host {hp}, pi {pp}"
            )
    return problems, worst, classified


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("host")
    ap.add_argument("pi")
    ap.add_argument("--tolerance", type=float, default=1e-4)
    ap.add_argument("--name", default="")
    args = ap.parse_args(argv)
    host, pi = read(args.host), read(args.pi)
    problems, worst, classified = compare(host, pi, args.tolerance)
    status = "MISMATCH" if problems else "ok"
    print(
        f"{status:8s} {args.name:32s} {len(host):5d} rows, {classified:5d} classified, "
        f"labels {'identical' if not any('label' in p for p in problems) else 'DIFFER'}, "
        f"max |p_a - p_b| = {worst:.2e} (tolerance {args.tolerance:g})"
    )
    for p in problems[:20]:
        print(f"    {p}")
    if len(problems) > 20:
        print(f"    ... and {len(problems) - 20} more")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
