"""Regenerate docs/benchmarks.md: run every benchmark, then render their results.

    python benchmarks/run_all.py            # run all (about 15 minutes on 2 cores), then render
    python benchmarks/run_all.py --render   # only render benchmarks/results/*.json

Run it on a quiet machine: the benchmarks time candidates side by side in
interleaved rounds, so noise hits all of them alike, but a busy machine still
widens the spread. Each table says which machine produced it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from common import ROOT, markdown_table

RESULTS = ROOT / "benchmarks" / "results"
DOC = ROOT / "docs" / "benchmarks.md"

#: (script and arguments, file that keeps its printed table or None)
STEPS = [
    (["bench_keras.py"], None),
    (["bench_albert.py"], None),
    (["bench_tokenizer_sentencepiece.py", "--max-length", "256"], "tokenizer_sentencepiece.txt"),
    (["bench_tokenizer_wordpiece.py"], "tokenizer_wordpiece.txt"),
    (["zh_rumor.py"], None),
    (["bench_predict.py", "--before", "c1b0792"], None),
    (
        ["bench_spark.py", "--albert-rows", "500"],
        None,
    ),  # writes results/spark.md (needs edgeclf[spark], Java)
    (["batch_peers.py"], None),
    (["bench_serve.py"], None),
    (["bench_albert_base.py"], None),
]


def run() -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    for step, keep in STEPS:
        print(f"== {' '.join(step)}", file=sys.stderr, flush=True)
        r = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / step[0]), *step[1:]],
            check=True,
            cwd=ROOT / "benchmarks",
            stdout=subprocess.PIPE,
            text=True,
        )
        print(r.stdout)
        if keep:
            (RESULTS / keep).write_text(r.stdout, encoding="utf-8")
    profiles = (
        ("keras-imdb", "keras", []),
        ("albert-imdb", "albert", ["--batch-sizes", "1,8", "--seq-lens", "128,256"]),
    )
    for model, name, flags in profiles:
        html = ROOT / "docs" / "img" / f"profile-{model}.html"
        cmd = [sys.executable, "-m", "edgeclf", "profile", "-m", model, *flags, "--html", str(html)]
        subprocess.run([*cmd, "--json", str(RESULTS / f"profile_{name}.json")], check=True)


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def machine_line(m: dict) -> str:
    return (
        f"_Machine: {m.get('cpu')}, {m.get('cores')} cores, {m.get('platform')}, Python {m.get('python')}, "
        f"onnxruntime {m.get('onnxruntime')}; load average at start {m.get('load_average')}._"
    )


def albert_base_section(res: dict) -> list[str]:
    """benchmarks/bench_albert_base.py: export, int8 and pruning at albert-base / albert_chinese_* size."""
    out = [
        "## ALBERT at the size users bring",
        "",
        "From `python benchmarks/bench_albert_base.py`: a **randomly initialised** checkpoint of each shape "
        "(random weights: the computation and the bytes are a trained model's, accuracy is not measured), "
        "written with `save_pretrained`, through the real `edgeclf export albert` (fp32, fp16, int8) and "
        "`edgeclf prune` (half the heads, FFN and layer passes; no recovery steps). The English one reuses "
        "the project's 16,000-piece SentencePiece model with `vocab_size` 30,000 (albert-base-v2's "
        "embedding size; ids >= 16,000 never occur); the Chinese one the 21,128-token WordPiece vocabulary. "
        "Speed: median ms per batch, texts in and labels out, ratio against PyTorch eager one text at a "
        "time, measured side by side in one run.",
        "",
    ]
    for name, r in res["shapes"].items():
        c = r["config"]
        out += [
            f"### {name} shape: hidden {c['hidden_size']}, {c['num_attention_heads']} heads, "
            f"FFN {c['intermediate_size']}, {c['num_hidden_layers']} layer passes, embedding "
            f"{c['embedding_size']}, vocabulary {c['vocab_size']:,} ({r['tokenizer']})",
            "",
        ]
        ck = r["sizes_bytes"]["checkpoint model.safetensors"]
        rows = [[k, v / 1e6, v / ck] for k, v in r["sizes_bytes"].items()]
        out += [markdown_table(["file", "MB", "x checkpoint"], rows), ""]
        par = r["parity"]
        pr = r["pruning"]
        out += [
            "Parity: fp32 ONNX vs PyTorch max |logit diff| "
            f"{par['fp32 vs pytorch']['max_abs_logit_diff']:.1e} (labels agree "
            f"{par['fp32 vs pytorch']['label_agreement']:.0%}); fp16 vs fp32 max |prob diff| "
            f"{par['fp16 vs fp32']['max_abs_prob_diff']:.1e}; int8 vs fp32 max |prob diff| "
            f"{par['int8 vs fp32']['max_abs_prob_diff']:.1e}; pruned ONNX vs pruned PyTorch max |logit diff| "
            f"{par['pruned fp32 vs pruned pytorch']['max_abs_logit_diff']:.1e}. Pruned from "
            f"{pr['from']['heads']} heads / FFN {pr['from']['ffn']} / {pr['from']['layers']} passes to "
            f"{pr['to']['heads']} / {pr['to']['ffn']} / {pr['to']['layers']}. Seconds: "
            + ", ".join(f"{k} {v}" for k, v in r["seconds"].items())
            + ".",
            "",
        ]
        rows = []
        for key, t in r["timing"].items():
            b, s, th = (int(x[1:]) for x in key.split("_"))
            eager = t["pytorch eager, per text"]["median_s"]
            rows += [[b, s, th, n, v["median_s"] * 1e3, eager / v["median_s"]] for n, v in t.items()]
        out += [markdown_table(["batch", "seq", "threads", "candidate", "median ms", "x eager"], rows), ""]
        goal = r["timing"].get("b1_s128_t2")
        if goal:
            eager = goal["pytorch eager, per text"]["median_s"]
            x = {n: eager / goal[n]["median_s"] for n in ("edgeclf int8", "edgeclf pruned-int8") if n in goal}
            out += [
                "Goal at batch 1, 128 tokens, 2 threads: int8 >= 4x eager, pruned-int8 >= 6x; "
                "measured " + ", ".join(f"{n.split()[-1]} **{v:.2f}x**" for n, v in x.items()) + ".",
                "",
            ]
    return [*out, machine_line(res["machine"]), ""]


def render() -> str:
    out = [
        "# Benchmarks",
        "",
        "Every speed table behind README.md and docs/speed.md, with the command and the machine that "
        "measured it. Generated by `python benchmarks/run_all.py` from `benchmarks/results/*.json`. "
        "Speeds are ratios "
        "measured side by side in one run (interleaved rounds, medians); absolute numbers are for the "
        "machine named under each table.",
        "",
    ]
    out += keras_section() + render_predict() + albert_section()
    base = load("albert_base")
    if base:
        out += albert_base_section(base)
    out += pruning_section()
    out += text_sections(
        "txt",
        ("tokenizer_sentencepiece", "SentencePiece tokenizer (IMDB test reviews, max 256)"),
        ("tokenizer_wordpiece", "WordPiece tokenizer (zh-rumor posts)"),
    )
    out += zh_section()
    out += text_sections(
        "md",
        (
            "spark",
            "Spark: `edgeclf spark-predict` local[1] / local[2] vs `edgeclf predict` (docs/scale-out.md)",
        ),
        ("batch_peers", "How much a score depends on its batch peers (`benchmarks/batch_peers.py`)"),
    )
    out += serve_section() + profile_sections()
    return "\n".join(out) + "\n"


def keras_section() -> list[str]:
    keras = load("keras")
    if not keras:
        return []
    out = [
        "## Keras IMDB model",
        "",
        "Latency per call (Keras gets pre-tokenized arrays; edgeclf includes tokenization):",
        "",
    ]
    rows = []
    for key, res in keras["latency"].items():
        bs = int(key.split("_")[1])
        base = res["keras model.predict"]["median_s"]
        for name, r in res.items():
            rows.append([bs, name, r["median_s"] * 1e3, bs / r["median_s"], base / r["median_s"]])
    out += [markdown_table(["batch", "candidate", "median ms", "reviews/s", "x model.predict"], rows), ""]
    e = keras["end_to_end"]
    return [
        *out,
        f"End to end, `edgeclf predict` on {e['reviews']:,} IMDB test reviews in a fresh process (CSV in, "
        f"CSV out, int8, default `--jobs`, on the machine below): **{e['reviews_per_s']:,} reviews/s** "
        f"({e['median_seconds']} s). The next section times the same command against a stdlib floor.",
        "",
        machine_line(keras["machine"]),
        "",
    ]


def albert_section() -> list[str]:
    albert = load("albert")
    if not albert:
        return []
    rows = []
    for key, res in albert["results"].items():
        b, s, t = (int(x[1:]) for x in key.split("_"))
        base = res["pytorch eager, per text"]["median_s"]
        for name, r in res.items():
            rows.append([b, s, t, name, r["median_s"] * 1e3, base / r["median_s"]])
    return [
        "## ALBERT",
        "",
        "Median milliseconds per batch, texts in and labels out (tokenization "
        "included for every candidate); speed-up against PyTorch eager one text at a time, as the "
        "seed project ran it." + (f" Bundle: {albert['bundle']}." if albert.get("bundle") else ""),
        "",
        markdown_table(["batch", "seq", "threads", "candidate", "median ms", "x eager"], rows),
        "",
        machine_line(albert["machine"]),
        "",
    ]


def pruning_section() -> list[str]:
    pruning = RESULTS / "pruning.md"
    if not pruning.exists():
        return []
    p = load("pruning") or {}
    out = [
        "## Pruning",
        "",
        "From `python benchmarks/pruning.py` (see docs/pruning.md): heads/FFN/layer "
        "passes kept, file size, p50 latency of the ONNX session (tokenized input) with speed-ups "
        "against fp32 from the same interleaved rounds, accuracy on the IMDB test reviews.",
        "",
        pruning.read_text().strip(),
        "",
        "![pruning curve](img/pruning.svg)",
        "",
    ]
    return out + ([machine_line(p["machine"]), ""] if p.get("machine") else [])


def text_sections(suffix: str, *sections: tuple[str, str]) -> list[str]:
    """Results a script wrote as text (``results/NAME.SUFFIX``), each under its title, where present."""
    out = []
    for name, title in sections:
        path = RESULTS / f"{name}.{suffix}"
        if path.exists():
            out += [f"## {title}", "", path.read_text(encoding="utf-8").strip(), ""]
    return out


def zh_section() -> list[str]:
    zh = load("zh_rumor")
    if not zh:
        return []
    rows = [
        [k, r["accuracy"], r["fake_precision"], r["fake_recall"], r["fake_f1"], r["n"]]
        for k, r in zh["results"].items()
    ]
    return [
        "## Chinese rumor detection (weibo_test)",
        "",
        markdown_table(["model", "accuracy", "fake precision", "fake recall", "fake F1", "posts"], rows),
        "",
    ]


def serve_section() -> list[str]:
    serve = load("serve")
    if not serve:
        return []
    from bench_serve import table as serve_table

    return [
        "## `edgeclf serve` under load",
        "",
        f"From `{serve['command']}` (see docs/serve.md): real server processes on 127.0.0.1, "
        "closed-loop clients sending one review per request, every answer checked; modes "
        f"interleaved over {serve['rounds']} rounds, requests/s the median of the rounds, latencies "
        "pooled. The client shares the 2 cores with the server.",
        "",
        serve_table(serve),
        machine_line(serve["machine"]),
        "",
    ]


def profile_sections() -> list[str]:
    out = []
    headers = [
        "variant",
        "threads",
        "session create ms",
        "cold start ms (fresh process to first prediction)",
        "of which imports ms",
        "peak RSS MiB",
    ]
    for name, title in (("profile_keras", "keras-imdb"), ("profile_albert", "albert-imdb")):
        prof = load(name)
        if not prof:
            continue
        rows = [
            [s["variant"], s["threads"], s["session_create_ms"]]
            + [s["cold_start"].get(k) for k in ("wall_ms", "import_ms", "peak_rss_mib")]
            for s in prof.get("sessions", [])
        ]
        out += [
            f"## `edgeclf profile {title}`",
            "",
            markdown_table(headers, rows),
            "",
            f"Full report with plots: [img/profile-{title}.html](img/profile-{title}.html).",
            "",
        ]
    return out


def render_predict() -> list[str]:
    """``edgeclf predict`` as a whole command against the stdlib floor (benchmarks/bench_predict.py)."""
    from bench_predict import render_model

    res = load("predict")
    if not res:
        return []
    out = [
        "## `edgeclf predict FILE.csv`: whole commands against a stdlib floor",
        "",
        "From `python benchmarks/bench_predict.py`. The floor (`benchmarks/floor_predict.py`) reads the CSV, "
        "lowercases and splits each text and writes `id,label,score,error`: the least a CSV-to-CSV classifier "
        "does. Each command is a fresh process (imports, model load, output fsync'ed); rounds are interleaved "
        "(floor, `--jobs 1`, default, ...), medians. `x floor` is the ratio to the floor "
        "of the same run: lower is better, 1.0 means as fast as the floor. CPU seconds are user + system of "
        "the process and its workers. The machine is shared with other jobs while it runs: wall times say "
        "what a user of a busy machine sees, CPU seconds what the command costs.",
        "",
    ]
    if res.get("before"):
        out += [f"`edgeclf before` is the runtime of commit {res['before']} (one process, no `--jobs`).", ""]
    for model, r in res["models"].items():
        out += [render_model(model, r), ""]
    out += [machine_line(res["machine"]), ""]
    keras = res["models"].get("keras-imdb", {}).get("results", {})
    floor, jobs1 = keras.get("floor (stdlib script)"), keras.get("edgeclf --jobs 1")
    if floor and jobs1:
        out += [
            f"Why the default command stays above the floor: one edgeclf process spends "
            f"{jobs1['cpu_s'] / floor['cpu_s']:.1f}x the floor's CPU time (the floor only splits words; "
            "edgeclf also imports numpy and onnxruntime, looks up the last 256 words of every review, "
            "runs the model and checks every row), so spread perfectly over two cores it would still "
            f"take about {jobs1['cpu_s'] / floor['cpu_s'] / 2:.1f}x the floor's wall time; other jobs on "
            "the machine (load average above) take cores from the workers as well. Read `wall x floor` "
            "for `--jobs 1` and the default side by side, and CPU seconds for what each command costs.",
            "",
        ]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--render", action="store_true", help="only render existing results")
    args = p.parse_args()
    if not args.render:
        run()
    DOC.write_text(render(), encoding="utf-8")
    print(f"wrote {DOC}", file=sys.stderr)


if __name__ == "__main__":
    main()
