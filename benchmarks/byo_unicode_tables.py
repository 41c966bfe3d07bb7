"""Regenerate the Unicode exception tables of ``edgeclf.tokenizers.hf_unicode``.

The ``tokenizers`` library classifies characters with its own Unicode tables
(Rust crates and Oniguruma, each of its own Unicode version); the runtime uses
Python's ``unicodedata``. This script probes the library on every code point
and prints, as Python literals, where the two disagree, for the character
classes the pure-Python tokenizer.json pipeline uses:

- ``LETTER_EXTRA`` / ``NUMBER_EXTRA``: what Oniguruma's ``\\p{L}`` / ``\\p{N}``
  match beyond Python's ``L*`` / ``N*`` (ByteLevel's split regex);
- ``CONTROL_KEPT``: ``Cc``/``Cf``/``Co`` characters BertNormalizer's
  ``clean_text`` keeps;
- ``PUNCT_EXTRA`` / ``PUNCT_NOT``: BertPreTokenizer's punctuation beyond /
  short of Python's ``P*`` plus ASCII symbols.

    python benchmarks/byo_unicode_tables.py > /tmp/tables.txt   # needs the export extra

Runs in about 30 s; the printed Python version's ``unicodedata`` is the one
the tables complement.
"""

from __future__ import annotations

import unicodedata

from tokenizers import Regex, normalizers, pre_tokenizers


def code_points() -> list[int]:
    return [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF and c != 1]


def matching(pattern: str, cps: list[int]) -> set[int]:
    """Code points a one-character onig regex matches (the library replaces each by \\x01)."""
    rep = normalizers.Replace(Regex(pattern), "\x01")
    out: set[int] = set()
    for s in range(0, len(cps), 20000):
        chunk = cps[s : s + 20000]
        res = rep.normalize_str("".join(map(chr, chunk)))
        assert len(res) == len(chunk)
        out.update(c for c, r in zip(chunk, res, strict=False) if r == "\x01")
    return out


def ranges(points: set[int]) -> tuple[tuple[int, int], ...]:
    out: list[list[int]] = []
    for c in sorted(points):
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return tuple((a, b) for a, b in out)


def main() -> None:
    cps = code_points()
    cat = {c: unicodedata.category(chr(c)) for c in cps}
    letters = matching(r"\p{L}", cps)
    numbers = matching(r"\p{N}", cps)
    bert = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False
    )
    removed = {c for c in cps if bert.normalize_str(chr(c)) == ""}
    pre = pre_tokenizers.BertPreTokenizer()
    punct = {c for c in cps if len(pre.pre_tokenize_str("a" + chr(c) + "a")) == 3}
    py_punct = {
        c
        for c in cps
        if 33 <= c <= 47 or 58 <= c <= 64 or 91 <= c <= 96 or 123 <= c <= 126 or cat[c].startswith("P")
    }
    py_control = {c for c in cps if cat[c] in ("Cc", "Cf", "Co") and chr(c) not in "\t\n\r"} | {0, 0xFFFD}
    print(f"# unicodedata {unicodedata.unidata_version}")
    print("LETTER_EXTRA =", ranges(letters - {c for c in cps if cat[c].startswith("L")}))
    print("NUMBER_EXTRA =", ranges(numbers - {c for c in cps if cat[c].startswith("N")}))
    print("CONTROL_KEPT =", ranges(py_control - removed))
    print("CONTROL_EXTRA =", ranges(removed - py_control))
    print("PUNCT_EXTRA =", ranges(punct - py_punct))
    print("PUNCT_NOT =", ranges(py_punct - punct))
    uncovered(cps, cat)


def uncovered(cps: list[int], cat: dict[int, str]) -> None:
    """Print, as comments, where the parts that follow ``unicodedata`` differ from the library."""
    checks = {
        "Lowercase": (normalizers.Lowercase(), lambda ch: ch.lower() if ch != "Σ" else "σ"),
        "NFKC": (normalizers.NFKC(), lambda ch: unicodedata.normalize("NFKC", ch)),
        "NFD": (normalizers.NFD(), lambda ch: unicodedata.normalize("NFD", ch)),
        "StripAccents": (
            normalizers.StripAccents(),
            lambda ch: "" if unicodedata.category(ch).startswith("M") else ch,
        ),
    }
    for name, (library, python) in checks.items():
        differ = [c for c in cps if library.normalize_str(chr(c)) != python(chr(c))]
        assigned = [c for c in differ if cat[c] != "Cn"]
        ages = sorted({unicodedata.name(chr(c), "?").split()[0] for c in assigned})[:8]
        print(f"# {name}: {len(differ)} code points differ, e.g. {[hex(c) for c in differ[:6]]} ({ages})")


if __name__ == "__main__":
    main()
