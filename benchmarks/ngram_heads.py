"""The n-gram heads of the shipped ALBERT bundles: fitted, chosen on validation texts, written.

    python benchmarks/ngram_heads.py [--only en|zh] [--variant int8] [--write [--not-default]]

Per bundle (``export/ngram_fuse.py`` does the work):

1. The training texts are tokenized by the bundle's own tokenizer; the
   student's validation texts (``teacher.split_indices``: 2,500 reviews /
   600 posts, never trained on by the ALBERT students) are held out.
2. A TF-IDF + logistic regression head is fitted on token-id n-grams of the
   remaining texts. A bundle that reads long texts in windows (its manifest's
   ``long_texts``) is scored and blended on the validation texts' windows,
   averaged per text as the runtime averages them.
3. On the validation texts, three routes are scored: the transformer variant
   alone, the head alone, and the two blended (weights by a logistic
   regression on the two margins, scored out of fold by 5-fold cross-fitting).
   For Chinese, also on the validation posts with no near-duplicate among the
   training posts (a stand-in for next month's posts), and the head's spec is
   the one that did best when trained on Weibo posts and tested on CED posts
   (training data only).
4. ``--write``: the winning route becomes the bundle's default CPU variant
   (``ngram-<variant>``: the head grafted onto the variant's graph, or
   ``ngram``: the head alone); the plain variants stay by name. Test-set
   metrics and the temperature are stamped afterwards by
   ``benchmarks/model_table.py --write-manifests``.

Validation numbers go to benchmarks/results/ngram_heads.json. The test sets
are never read here.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine

import edgeclf
from edgeclf.bundle import open_bundle
from edgeclf.export import bundle_writer, require, teacher
from edgeclf.export import ngram_fuse as nf
from edgeclf.export import ngram_head as ng
from edgeclf.export.data import load_imdb, shared_data_dir
from edgeclf.export.zh_rumor import load_split, metrics
from edgeclf.tokenizers import build

RESULTS = ROOT / "benchmarks" / "results" / "ngram_heads.json"
CACHE = Path("/tmp/edgeclf-ngram-heads")


@dataclass(frozen=True)
class Lang:
    bundle: str
    validation: int
    spec: ng.HeadSpec


LANGS = {
    # English: sentencepiece ids, 1-2-gram presence scaled by naive Bayes ratios, which beat TF-IDF on
    # validation (results: "en" against "en, tf-idf head, windows"); 100,000 kept keeps the default under 6 MB
    "en": Lang("albert-imdb", 2500, ng.HeadSpec(max_n=2, min_df=2, C=8.0, max_ngrams=100_000, features="nb")),
    # Chinese: WordPiece ids are characters: 1-3-grams, as the character n-gram baseline
    "zh": Lang("albert-zh-rumor", 600, ng.HeadSpec(max_n=3, min_df=2, C=8.0, max_ngrams=100_000)),
}


def tokenizer(bundle: str) -> Any:
    b = open_bundle(bundle)
    man = b.manifest
    files = {k: b.read_verified(r) for k, r in man.tokenizer.files.items()}
    return build(man.tokenizer.kind, files, man.tokenizer.config, man.max_length)


def special_ids(tok: Any) -> set[int]:
    """[CLS], [SEP] and padding: the ids no pooled n-gram may contain."""
    return {tok.cls_id, tok.sep_id, tok.pad_id}


def encode(bundle: str, texts: list[str]) -> list[list[int]]:
    """The bundle tokenizer's ids, cached by the texts' and tokenizer settings' hash."""
    man = open_bundle(bundle).manifest
    key = json.dumps([man.tokenizer.config, man.max_length, texts], sort_keys=True, default=str)
    path = CACHE / f"{bundle}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"
    if path.is_file():
        return json.loads(path.read_text())
    ids = tokenizer(bundle).encode_batch(texts)
    CACHE.mkdir(exist_ok=True)
    path.write_text(json.dumps(ids))
    return ids


def training_texts(lang: str) -> tuple[list[str], np.ndarray]:
    data = shared_data_dir()
    if data is None:
        raise SystemExit("needs ../shared/data")
    if lang == "en":
        x, y = load_imdb("train", data / "imdb")
    else:
        x, y = load_split(data / "zh-rumor")["train"]
    return list(x), np.asarray(y)


def fit(lang: str, texts: list[str], labels: np.ndarray) -> ng.NgramHead:
    """The language's head fitted on ``texts`` (also used for the CED hold-out in model_table)."""
    cfg = LANGS[lang]
    return ng.fit_head(encode(cfg.bundle, texts), labels, special_ids(tokenizer(cfg.bundle)), cfg.spec)


def fitted_head(
    cfg: Lang, seqs: list[list[int]], y: np.ndarray, special: set[int]
) -> tuple[ng.NgramHead, int]:
    """:func:`ng.fit_head` and its seconds, cached as a head-only model file keyed by the spec and the
    data (a re-run that only writes the variant does not refit)."""
    key = json.dumps([asdict(cfg.spec), sorted(special), seqs, y.tolist()])
    path = CACHE / f"{cfg.bundle}-head-{hashlib.sha256(key.encode()).hexdigest()[:16]}.onnx"
    if path.is_file():
        return nf.read_head(path)[0], json.loads(path.with_suffix(".json").read_text())["fit_seconds"]
    t0 = time.perf_counter()
    head = ng.fit_head(seqs, y, special, cfg.spec)
    seconds = round(time.perf_counter() - t0)
    CACHE.mkdir(exist_ok=True)
    nf.standalone(path, head)
    path.with_suffix(".json").write_text(json.dumps({"fit_seconds": seconds}))
    return head, seconds


def transformer_logits(bundle: str, variant: str, seqs: list[list[int]]) -> np.ndarray:
    clf = edgeclf.load(bundle, variant=variant, providers="cpu", batch_size=128, temperature=1.0)
    return np.log(np.clip(clf.proba_from_ids(seqs), 1e-12, 1.0))


def checkpoint_logits(checkpoint: Path, seqs: list[list[int]]) -> np.ndarray:
    """Logits of a PyTorch checkpoint (export extra) on already-tokenized sequences, one thread."""
    key = hashlib.sha256((Path(checkpoint) / "model.safetensors").read_bytes() + json.dumps(seqs).encode())
    path = CACHE / f"logits-{key.hexdigest()[:16]}.npy"
    if path.is_file():
        return np.load(path)
    torch = require("torch", "--blend-checkpoint")
    from transformers import AlbertForSequenceClassification

    from edgeclf.classifier import pad

    torch.set_num_threads(1)
    model = AlbertForSequenceClassification.from_pretrained(str(checkpoint)).eval()
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    out = np.zeros((len(seqs), 2), dtype=np.float32)
    with torch.inference_mode():
        for s in range(0, len(order), 32):
            idx = order[s : s + 32]
            ids, mask = pad([seqs[i] for i in idx], None)
            feeds = {
                "input_ids": torch.from_numpy(ids),
                "attention_mask": torch.from_numpy(mask.astype(np.int64)),
            }
            out[idx] = model(**feeds).logits.numpy()
    CACHE.mkdir(exist_ok=True)
    np.save(path, out)
    return out


def near_duplicate_free(train: list[str], val: list[str], below: float = 0.5) -> np.ndarray:
    """Validation posts whose closest training post (cosine of character 2-3-gram TF-IDF) is below
    ``below``: posts about events the models did not train on."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(analyzer="char", ngram_range=(2, 3)).fit(train)
    sim = (vec.transform(val) @ vec.transform(train).T).max(axis=1).toarray().ravel()
    return sim < below


def score(y: np.ndarray, logits: np.ndarray, lang: str) -> dict[str, float]:
    pred = logits.argmax(1)
    out = {"accuracy": round(float((pred == y).mean()), 4), "n": len(y)}
    if lang == "zh":
        out["fake_f1"] = metrics(list(y), list(pred))["fake_f1"]
    return out


def routes(lang: str, lt: np.ndarray, margin: np.ndarray, y: np.ndarray) -> dict[str, dict[str, float]]:
    """Validation scores of the transformer alone, the head alone, the cross-fitted blend."""
    head = np.stack([-margin / 2, margin / 2], axis=1)
    return {
        "transformer": score(y, lt, lang),
        "head": score(y, head, lang),
        "blend": score(y, ng.cross_fit_blend(lt, margin, y), lang),
    }


def _per_text(values: np.ndarray, owner: np.ndarray | None, n: int) -> np.ndarray:
    """Window rows averaged per text as the runtime pools them (``owner`` None: one row per text)."""
    if owner is None:
        return values
    from edgeclf.windows import pool

    return pool(values.reshape(len(values), -1), owner, n, "mean").reshape(n, *values.shape[1:])


def run(
    lang: str,
    variant: str,
    write: bool,
    blend_checkpoint: Path | None = None,
    default: bool = True,
    command: str = "python benchmarks/ngram_heads.py",
) -> dict[str, Any]:
    cfg = LANGS[lang]
    texts, y = training_texts(lang)
    tr, va = teacher.split_indices(len(texts), cfg.validation, 42)
    seqs = encode(cfg.bundle, texts)
    special = special_ids(tokenizer(cfg.bundle))
    head, fit_s = fitted_head(cfg, [seqs[i] for i in tr], y[tr], special)
    vseqs, yv = [seqs[i] for i in va], y[va]
    owner = None  # window row -> text, when the bundle reads long texts in windows
    if open_bundle(cfg.bundle).manifest.long_texts.mode == "windows":
        # the runtime averages the windows' blended logits, which is the blend of the averaged
        # transformer logits and head margins: fit it on those
        enc = edgeclf.load(cfg.bundle, variant=variant, providers="cpu").encode_texts([texts[i] for i in va])
        vseqs, owner = enc.ids, enc.owner
    margin = _per_text(head.margin(vseqs, special), owner, len(va))
    lt = _per_text(transformer_logits(cfg.bundle, variant, vseqs), owner, len(va))
    out: dict[str, Any] = {
        "bundle": cfg.bundle,
        "variant": variant,
        "spec": asdict(cfg.spec),
        "ngrams": len(head.ngrams),
        "fit_seconds": round(fit_s),
        "machine": machine(),
        "made_by": command,
        "validation": routes(lang, lt, margin, yv),
    }
    if lang == "zh":
        novel = near_duplicate_free([texts[i] for i in tr], [texts[i] for i in va])
        out["validation_no_near_duplicate"] = routes(lang, lt[novel], margin[novel], yv[novel])
    checks = [out["validation"]] + ([out["validation_no_near_duplicate"]] if lang == "zh" else [])
    if blend_checkpoint is not None:  # a transformer that never saw the validation texts fits the blend
        lt = _per_text(checkpoint_logits(blend_checkpoint, vseqs), owner, len(va))
        out["blend_fitted_on"] = str(blend_checkpoint)
        out["validation_blend_checkpoint"] = routes(lang, lt, margin, yv)
        checks = [out["validation_blend_checkpoint"]]
    blend = ng.fit_blend(lt, margin, yv)
    out["blend"] = blend.as_dict()
    blend_wins = all(c["blend"]["accuracy"] > c["head"]["accuracy"] for c in checks)
    out["route"] = "blend" if blend_wins else "head"
    print(json.dumps(out, indent=1), flush=True)
    if write:
        out["written"] = write_variant(cfg.bundle, variant, head, blend if blend_wins else None, out, default)
    return out


def write_variant(
    bundle: str, variant: str, head: ng.NgramHead, blend: ng.Blend | None, info: dict, default: bool = True
) -> str:
    """Add the chosen route as a variant (the bundle's default CPU variant if ``default``); returns its name."""
    b = open_bundle(bundle)
    root = b.root
    man = bundle_writer.load(root)
    src = man["variants"][variant]
    kind = "TF-IDF" if head.sublinear else "naive Bayes-scaled presence"
    n = f"{kind} features of {len(head.ngrams):,} token-id 1-{info['spec']['max_n']}-grams"
    if blend is None:
        name, rel = "ngram", "model.ngram.onnx"
        nf.standalone(root / rel, head)
        desc = f"the n-gram head alone (logistic regression on {n}; no transformer)"
        id_map = None
    else:
        name, rel = f"ngram-{variant}", f"model.ngram-{variant}.onnx"
        id_map = src.get("id_map", {}).get("path")
        ids = None
        if id_map:
            ids = np.frombuffer((root / id_map).read_bytes(), dtype="<i4").astype(np.int64)
        nf.graft(root / src["file"]["path"], root / rel, head, blend, id_map=ids)
        desc = f"{variant} + a fused n-gram head (logistic regression on {n}), blended"
    bundle_writer.add_variant(
        man,
        root,
        name,
        rel,
        description=desc,
        default=default,
        id_map=id_map,
        precision=src.get("precision", "") if blend else "fp32",  # the head alone is float32 math
    )
    if not default:  # another transformer variant with the same head: its blend is recorded beside
        man["extra"].setdefault("ngram_head_variants", {})[name] = {
            "grafted_onto": variant, "blend": info["blend"], "blend_fitted_on": info.get("blend_fitted_on"),
            "made_by": info["made_by"],
        }  # fmt: skip
        bundle_writer.save(root, man)
        return name
    man.setdefault("provider_variants", {})["cpu"] = name
    man["extra"]["ngram_head"] = {
        "route": info["route"],
        "grafted_onto": variant if blend else None,
        "blend": info["blend"],
        "blend_fitted_with": variant,
        "blend_fitted_on": info.get("blend_fitted_on", f"the {variant} variant's validation logits"),
        "spec": info["spec"],
        "ngrams": info["ngrams"],
        "fit_seconds": info["fit_seconds"],
        **{k: v for k, v in info.items() if k.startswith("validation")},
        "made_by": info["made_by"],
    }
    bundle_writer.save(root, man)
    return name


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=sorted(LANGS), default=None)
    p.add_argument("--variant", default="int8", help="the transformer variant the head is grafted onto")
    p.add_argument("--write", action="store_true", help="write the chosen variant into the bundle")
    p.add_argument(
        "--blend-checkpoint",
        type=Path,
        default=None,
        help="fit the blend (and choose the route) on this checkpoint's validation logits instead of the "
        "variant's: for a variant whose training saw the validation texts (albert-imdb: "
        "checkpoints/albert-imdb-ffn1024, its parent)",
    )
    p.add_argument(
        "--not-default", action="store_true", help="write the variant beside the default, not as it"
    )
    p.add_argument("--record-as", default=None, help="the results key (default: the language)")
    a = p.parse_args(argv)
    command = " ".join(["python benchmarks/ngram_heads.py", *(sys.argv[1:] if argv is None else argv)])
    done = {
        (a.record_as or (lang if not a.not_default else f"{lang} {a.variant}")): run(
            lang, a.variant, a.write, a.blend_checkpoint if lang == "en" else None, not a.not_default, command
        )
        for lang in ([a.only] if a.only else list(LANGS))
    }
    old = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.is_file() else {}
    res = {**old.get("languages", {}), **done}  # a one-language run keeps the other's results
    RESULTS.write_text(
        json.dumps({"languages": res}, indent=1, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
