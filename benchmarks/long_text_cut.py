"""The long-text cut: same ids as the transformers tokenizers on whole corpora, and what a 10 MB field costs.

A bundle's model reads at most its window (albert-imdb: the last 254 pieces), and with windows
over long texts at most ``max_windows`` of them; :func:`edgeclf.tokenizers.read_ids` reads only
the words those can hold. This script checks, against the slow transformers tokenizers the
bundles were trained with (``AlbertTokenizer`` on tests/data/albert/spiece.model, the same model
as albert-imdb's; ``BertTokenizer`` on albert-zh-rumor's vocab.txt):

1. every IMDB test review (25,000) and every zh-rumor post (weibo_train, weibo_test, CED), and
   texts made of consecutive reviews / posts up to 4x the window, through the shipped tokenizer
   (its kept side), the other side, and what the most windows read on both sides;
2. the time to tokenize one 10 MB field (IMDB reviews run together) the whole way (the
   reference's cost, and this runtime's before the cut) and with the cut, and
   ``predict_proba`` on it, truncated and with windows.

    python benchmarks/long_text_cut.py [--limit N]

Needs the [export] extra (transformers, sentencepiece) and ../shared/data. Writes
benchmarks/results/long_text_cut.json and .md (``--tables``: only the .md, from the .json;
``--field-only``: only part 2, into the stored .json).
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, imdb_test_texts, machine, markdown_table, save

import edgeclf
from edgeclf.bundle import embedded_root
from edgeclf.export.data import shared_data_dir
from edgeclf.tokenizers import CUT_MARGIN, read_ids

FIELD_CHARS = 10_800_000


def weibo_posts() -> list[str]:
    base = shared_data_dir() / "zh-rumor"
    out: list[str] = []
    for name in ("weibo_train.csv", "weibo_test.csv", "ced.csv"):
        with open(base / name, encoding="utf-8", newline="") as fh:
            out += [row["text"] for row in csv.DictReader(fh)]
    return out


def runs_up_to(texts: list[str], n_pieces, window: int, times: int = 4) -> list[str]:
    """Consecutive texts joined until each of 1x .. ``times`` x the window is passed."""
    out, i = [], 0
    for k in range(1, times + 1):
        for _ in range(len(texts) // 40):
            parts, size = [], 0
            while size <= k * window and i < len(texts):
                parts.append(texts[i])
                size += n_pieces(texts[i])
                i = (i + 1) % len(texts)
            out.append(" ".join(parts))
    return out


def check(name: str, texts: list[str], clf, whole) -> dict:
    """Compare the runtime's ids with ``whole(text)`` (the reference's untruncated ids)."""
    tok = clf.tokenizer
    inner = getattr(tok, "inner", tok)
    width, reach = clf.windows.width, clf.windows.reach
    bad = {
        "encode (shipped side)": 0,
        "left, window": 0,
        "right, window": 0,
        "left, windows": 0,
        "right, windows": 0,
    }
    t0 = time.perf_counter()
    for text in texts:
        ids = whole(text)
        kept = ids[-width:] if clf.windows.side == "left" else ids[:width]
        bad["encode (shipped side)"] += tok.encode(text) != inner.wrap(kept)
        for cap, label in ((width, "window"), (reach, "windows")):
            bad[f"left, {label}"] += read_ids(inner, text, cap, "left") != ids[max(0, len(ids) - cap) :]
            bad[f"right, {label}"] += read_ids(inner, text, cap, "right") != ids[:cap]
    row = {"texts": len(texts), "differ": bad, "seconds": round(time.perf_counter() - t0, 1)}
    print(name, row, flush=True)
    return row


def naive_cut(clf, reviews: list[str]) -> dict:
    """Why SentencePiece reads a kept end whole up to whole_tail_chars: the end of each review read
    alone (16 words beyond the window) against the whole review's ids."""
    inner = clf.tokenizer.inner
    width = clf.windows.width
    cut = differ = 0
    saved, inner.whole_tail_chars = inner.whole_tail_chars, 0
    try:
        for text in reviews:
            if len(text.split()) <= width + CUT_MARGIN:
                continue
            cut += 1
            differ += read_ids(inner, text, width, "left") != inner.tokenize_ids(text)[-width:]
    finally:
        inner.whole_tail_chars = saved
    out = {"reviews cut": cut, "differ": differ}
    print("naive cut", out, flush=True)
    return out


def best_of(fn, repeats: int = 5) -> float:
    """Seconds of the fastest of ``repeats`` calls (the machine is shared: the minimum is the cost)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return round(min(times), 4)


def field_timing(clf, reviews: list[str], chars: int) -> dict:
    text = " ".join(reviews)
    while len(text) < chars:
        text += " " + text
    text = text[:chars]
    inner = clf.tokenizer.inner
    width = clf.windows.width
    out = {"chars": len(text)}
    t0 = time.perf_counter()
    all_ids = inner.tokenize_ids(text)  # the whole text, as before the cut
    whole = inner.wrap(all_ids[-width:])
    out["tokenize whole text s"] = round(time.perf_counter() - t0, 3)
    out["pieces"] = len(all_ids)
    out["running score at the end (float64 sum)"] = round(sum(inner._score_of[i] for i in all_ids))
    del all_ids
    gc.collect()
    cut = clf.tokenizer.encode(text)
    out["tokenize with the cut s"] = best_of(lambda: clf.tokenizer.encode(text))
    out["same ids"] = cut == whole
    names = {i: p for p, i in inner._token_to_id.items()}
    out["pieces that differ (whole, cut)"] = [
        [names[a], names[b]] for a, b in zip(whole, cut, strict=False) if a != b
    ]
    for mode in ("truncate", "windows"):
        out[f"predict_proba {mode} s"] = best_of(lambda m=mode: clf.predict_proba([text], long_texts=m))
    out["predict_proba one review s"] = best_of(lambda: clf.predict_proba([reviews[0]]))
    print(out, flush=True)
    return out


def tables(result: dict) -> str:
    """benchmarks/results/long_text_cut.md, included in docs/tokenizers.md."""
    ex = result["exactness"]
    checks = list(next(iter(ex.values()))["differ"])
    rows = [[name, r["texts"], *(r["differ"][c] for c in checks)] for name, r in ex.items()]
    out = [markdown_table(["texts", "n", *(f"differ: {c}" for c in checks)], rows), ""]
    f = result["10 MB field, albert-imdb"]
    m = result["machine"]
    out.append(
        markdown_table(
            [f"one field of {f['chars']:,} characters (IMDB reviews), albert-imdb", "seconds"],
            [
                [
                    "tokenize the whole text (this runtime before the cut; the reference does the same work)",
                    f["tokenize whole text s"],
                ],
                ["tokenize with the cut (`encode`)", f["tokenize with the cut s"]],
                ["`predict_proba` of the field, truncate", f["predict_proba truncate s"]],
                ["`predict_proba` of the field, windows (8)", f["predict_proba windows s"]],
                ["`predict_proba` of one ordinary review", f["predict_proba one review s"]],
            ],
        )
    )
    naive = result["end read alone, IMDB test reviews"]
    diff = ", ".join(f"`{a}` vs `{b}`" for a, b in f["pieces that differ (whole, cut)"]) or "none"
    out += [
        "",
        f"On that field the whole text's {f['pieces']:,} pieces end at a running score of about "
        f"{f['running score at the end (float64 sum)']:,}; pieces that differ between the whole text "
        f"and its end read alone: {diff}. Without `whole_tail_chars`, the end of a review read alone "
        f"(16 words beyond the window) differs in {naive['differ']} of the {naive['reviews cut']:,} "
        f"IMDB test reviews that long. {m['cpu']}, {m['cores']} cores, load average "
        f"{m['load_average']:.1f}, onnxruntime {m['onnxruntime']}; `python benchmarks/long_text_cut.py`.",
    ]
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=None, help="every k-th review / post only (a quick run)")
    ap.add_argument("--tables", action="store_true", help="only rewrite the .md from the stored .json")
    ap.add_argument("--field-only", action="store_true", help="only re-measure the 10 MB field")
    args = ap.parse_args()
    md = ROOT / "benchmarks" / "results" / "long_text_cut.md"
    if args.field_only:  # re-measure the 10 MB field, keep the stored exactness results
        stored = json.loads(md.with_suffix(".json").read_text(encoding="utf-8"))
        albert = edgeclf.load("albert-imdb", providers="cpu")
        stored["10 MB field, albert-imdb"] = field_timing(
            albert, imdb_test_texts(None)[0][:2000], FIELD_CHARS
        )
        stored["machine"] = machine()
        save("long_text_cut", stored)
        args.tables = True
    if args.tables:
        md.write_text(
            tables(json.loads(md.with_suffix(".json").read_text(encoding="utf-8"))), encoding="utf-8"
        )
        return
    from transformers import AlbertTokenizer, BertTokenizer

    albert = edgeclf.load("albert-imdb", providers="cpu")
    zh = edgeclf.load("albert-zh-rumor", providers="cpu")
    sp_ref = AlbertTokenizer(str(ROOT / "tests" / "data" / "albert" / "spiece.model"))
    wp_ref = BertTokenizer(str(embedded_root() / "albert-zh-rumor" / "vocab.txt"))
    sp_whole = lambda t: sp_ref.encode(t, add_special_tokens=False)  # noqa: E731
    wp_whole = lambda t: wp_ref.encode(t, add_special_tokens=False)  # noqa: E731

    reviews, _ = imdb_test_texts(args.limit)
    posts = weibo_posts()
    if args.limit:
        posts = posts[:: max(1, len(posts) // args.limit)]
    result = {"machine": machine(), "limit": args.limit, "exactness": {}}
    ex = result["exactness"]
    ex["IMDB test reviews, albert-imdb"] = check("imdb", reviews, albert, sp_whole)
    width = albert.windows.width
    sp_len = lambda t: len(albert.tokenizer.inner.tokenize_ids(t))  # noqa: E731
    ex["reviews run together, 1x-4x the window"] = check(
        "imdb 1-4x", runs_up_to(reviews, sp_len, width), albert, sp_whole
    )
    ex["zh-rumor posts, albert-zh-rumor"] = check("weibo", posts, zh, wp_whole)
    wp_len = lambda t: len(zh.tokenizer.tokenize_ids(t))  # noqa: E731
    ex["posts run together, 1x-4x the window"] = check(
        "weibo 1-4x", runs_up_to(posts, wp_len, zh.windows.width), zh, wp_whole
    )
    result["end read alone, IMDB test reviews"] = naive_cut(albert, reviews)
    result["10 MB field, albert-imdb"] = field_timing(
        albert, reviews[:2000], 300_000 if args.limit else FIELD_CHARS
    )
    save("long_text_cut", result)
    if not args.limit:
        md.write_text(tables(result), encoding="utf-8")


if __name__ == "__main__":
    main()
