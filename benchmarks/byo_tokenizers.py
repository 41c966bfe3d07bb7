"""Exactness and speed of the tokenizer.json runtime tokenizers against the ``tokenizers`` library.

For every family's tokenizer of tests/byo_checkpoints.py (trained on 1,000
IMDB training reviews + 500 Weibo posts, saved by the family's fast
tokenizer class):

- exactness: ``HFJsonTokenizer.encode`` against the library on all 25,000
  IMDB test reviews and every post of the Weibo files (weibo_train,
  weibo_test, ced), at max_length 512, keeping the start (``right``) and the
  end (``left``) of long texts. The library's ids are its untruncated
  encoding cut as transformers cuts it (its truncation is that slice);
- speed: texts per second at batch 1 (``Tokenizer.encode`` vs ``encode``)
  and batch 64 (``encode_batch`` vs ``encode_batch``, the library on all its
  threads) on 2,000 IMDB test reviews, timed in interleaved rounds in one run.

    python benchmarks/byo_tokenizers.py [--families roberta,bert-uncased] [--limit N] [--work DIR]

Writes benchmarks/results/byo_tokenizers.json (families measured earlier stay in it, so families
can be measured by parallel runs) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import interleaved, machine, markdown_table, round_robin, save
from tests.byo_checkpoints import FAMILIES, _tokenizer_dir, training_texts

MAX_LENGTH = 512


def corpora(shared: Path, limit: int | None) -> dict[str, list[str]]:
    from edgeclf.export.data import load_imdb

    reviews = load_imdb("test", shared / "imdb")[0]
    posts: list[str] = []
    for name in ("weibo_train.csv", "weibo_test.csv", "ced.csv"):
        with open(shared / "zh-rumor" / name, encoding="utf-8", newline="") as fh:
            posts += [row["text"] for row in csv.DictReader(fh)]
    return {"imdb_test": reviews[:limit], "weibo_posts": posts[:limit]}


def exactness(family: str, directory: Path, texts: list[str]) -> dict[str, Any]:
    """Texts whose ids differ from the library's, per truncation side (and the first few of them)."""
    from tokenizers import Tokenizer

    from edgeclf.tokenizers.hf_json import HFJsonTokenizer

    raw = (directory / "tokenizer.json").read_text(encoding="utf-8")
    spec = json.loads(raw)
    lib = Tokenizer.from_str(raw)
    lib.no_truncation()
    lib.no_padding()
    full = [e.ids for e in lib.encode_batch(texts, add_special_tokens=False)]
    out: dict[str, Any] = {}
    for side in ("right", "left"):
        mine = HFJsonTokenizer(spec, max_length=MAX_LENGTH, truncation_side=side)
        keep = MAX_LENGTH - len(mine.before) - len(mine.after)
        differ = []
        t0 = time.perf_counter()
        for i, (text, ids) in enumerate(zip(texts, full, strict=False)):
            cut = ids[:keep] if side == "right" else ids[max(0, len(ids) - keep) :]
            if mine.encode(text) != mine.wrap(cut):
                differ.append(i)
        out[side] = {"texts": len(texts), "differ": len(differ), "first_differing": differ[:5]}
        print(f"{family} {side}: {len(differ)} of {len(texts)} differ ({time.perf_counter() - t0:.0f} s)")
    return out


def speed(directory: Path, texts: list[str]) -> dict[str, Any]:
    from tokenizers import Tokenizer

    from edgeclf.tokenizers.hf_json import HFJsonTokenizer

    raw = (directory / "tokenizer.json").read_text(encoding="utf-8")
    lib = Tokenizer.from_str(raw)
    lib.enable_truncation(MAX_LENGTH)
    mine = HFJsonTokenizer(json.loads(raw), max_length=MAX_LENGTH)
    one, batch = round_robin(texts), round_robin([texts[i : i + 64] for i in range(0, len(texts) - 63, 64)])
    for t in texts:  # both warm: the runtime's word caches filled, as in a serving process
        mine.encode(t)
    res = interleaved(
        {
            "library_b1": lambda: lib.encode(one()),
            "runtime_b1": lambda: mine.encode(one()),
            "library_b64": lambda: lib.encode_batch(batch()),
            "runtime_b64": lambda: mine.encode_batch(batch()),
        },
        rounds=5,
        min_time=0.5,
    )
    per_s = {k: (64 if k.endswith("b64") else 1) / v["median_s"] for k, v in res.items()}
    return {
        "texts_per_s": {k: round(v, 1) for k, v in per_s.items()},
        "runtime_vs_library_b1": round(per_s["library_b1"] / per_s["runtime_b1"], 2),
        "runtime_vs_library_b64": round(per_s["library_b64"] / per_s["runtime_b64"], 2),
    }


def _save_merged(result: dict[str, Any]) -> None:
    """Save, keeping the families an earlier (or a parallel) run of this script measured."""
    path = Path(__file__).resolve().parent / "results" / "byo_tokenizers.json"
    if path.is_file():
        earlier = json.loads(path.read_text(encoding="utf-8")).get("families", {})
        result["families"] = {
            **{k: v for k, v in earlier.items() if k not in result["families"]},
            **result["families"],
        }
    save("byo_tokenizers", result)


def main() -> None:
    from edgeclf.export.data import shared_data_dir

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--families", default=",".join(FAMILIES))
    p.add_argument("--limit", type=int, default=None, help="texts per corpus (default: all)")
    p.add_argument("--work", default="/tmp/edgeclf-byo", help="where the trained tokenizers are kept")
    p.add_argument("--speed-texts", type=int, default=2000)
    args = p.parse_args()
    shared = shared_data_dir()
    if shared is None:
        sys.exit("needs ../shared/data (IMDB, zh-rumor)")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    train = training_texts(shared)
    texts = corpora(shared, args.limit)
    result: dict[str, Any] = {"machine": machine(), "max_length": MAX_LENGTH, "families": {}}
    for family in args.families.split(","):
        directory = _tokenizer_dir(FAMILIES[family][0], family, train, work, 1200)
        row: dict[str, Any] = {"kind": FAMILIES[family][0]}
        for name, corpus in texts.items():
            row[name] = exactness(family, directory, corpus)
        row["speed"] = speed(directory, texts["imdb_test"][: args.speed_texts])
        print(family, row["speed"], flush=True)
        result["families"][family] = row
        _save_merged(result)
    rows = [
        [
            f,
            r["kind"],
            sum(r[c][s]["differ"] for c in texts for s in ("right", "left")),
            sum(r[c][s]["texts"] for c in texts for s in ("right", "left")),
            r["speed"]["texts_per_s"]["runtime_b1"],
            r["speed"]["runtime_vs_library_b1"],
            r["speed"]["runtime_vs_library_b64"],
        ]
        for f, r in result["families"].items()
    ]
    headers = [
        "family",
        "kind",
        "texts differing",
        "texts compared",
        "runtime texts/s b1",
        "x lib b1",
        "x lib b64",
    ]
    print(markdown_table(headers, rows))


if __name__ == "__main__":
    main()
