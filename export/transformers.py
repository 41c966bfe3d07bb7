"""Any Hugging Face ``*ForSequenceClassification`` checkpoint -> an edgeclf bundle.

    edgeclf export transformers CHECKPOINT_DIR --out BUNDLE [--eval-data labelled.csv]

``CHECKPOINT_DIR`` is a local ``save_pretrained`` directory: ``config.json``,
the weights and the tokenizer files. Families are a small table
(:data:`FAMILIES`): what differs between them is only where their positions
end; everything else is one path:

1. ``config.json``: ``model_type`` must be in the table, the head single- or
   multi-label (``problem_type``; regression is refused), ``id2label`` names
   the labels, max positions bound ``max_length``.
2. The tokenizer is what ``AutoTokenizer.from_pretrained(CHECKPOINT_DIR)``
   loads (the fast one): its ``tokenizer.json`` as loaded goes into the
   bundle for :class:`edgeclf.tokenizers.hf_json.HFJsonTokenizer`, which must
   reproduce it id for id on the parity texts and a hostile set, or the export
   stops. Its truncation side is kept. ``token_type_ids`` are all 0 for one
   text in every supported template, so the ONNX model takes ``input_ids`` and
   ``attention_mask`` only (the model's own default is those zeros).
3. ``torch.onnx.export`` (TorchScript exporter, eager attention), shared
   weights stored once, and logits checked against PyTorch on real texts of
   several lengths and batch sizes (max |difference| <= 1e-4).
4. fp16 and int8 variants (``edgeclf.export.albert``'s variant step: ``int8``
   row-wise, batch-invariant, the CPU default; ``int8-dynamic`` by name), the model card, and, with ``--eval-data``, accuracy (single
   label) or per-label thresholds tuned for F1 (multi-label; 0.5 otherwise).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeclf._ort import import_onnxruntime

from . import bundle_writer, model_card, require
from .albert import FP16_TOLERANCE, _add_variants, deduplicate, export_logits_onnx, float_parity

os.environ.setdefault("USE_TF", "0")


@dataclass(frozen=True)
class Family:
    """What the exporter needs to know about a ``model_type`` beyond transformers' own classes."""

    name: str
    tokenizer: str  # the kind of its usual tokenizer (docs and refusals)
    #: RoBERTa-style position ids start after the padding index, so the last
    #: ``pad_token_id + 1`` positions can never be reached by a text
    position_offset: bool = False


FAMILIES: dict[str, Family] = {
    "bert": Family("BERT (MiniLM, TinyBERT)", "WordPiece"),
    "distilbert": Family("DistilBERT", "WordPiece"),
    "electra": Family("ELECTRA", "WordPiece"),
    "roberta": Family("RoBERTa", "byte-level BPE", position_offset=True),
    "xlm-roberta": Family("XLM-RoBERTa", "Unigram", position_offset=True),
    "deberta-v2": Family("DeBERTa-v2/v3", "Unigram"),
    "modernbert": Family("ModernBERT", "byte-level BPE"),
    "albert": Family("ALBERT", "Unigram"),
}

#: texts the runtime tokenizer must reproduce exactly before a bundle is written
HOSTILE = (
    "",
    "   ",
    "Family 👨‍👩‍👧‍👦, flag 🏳️‍🌈, heart ❤️, thumbs 👍🏽.",
    "Cafe\u0301 re\u0301sume\u0301 Ａ\u0301 n\u0303 a\u0308\u0301",
    "ｆｕｌｌ－ｗｉｄｔｈ　ＡＢＣ　１２３！",
    "مرحبا بالعالم! שלום עולם 123",
    "ctl\x00nul\x01\x07\x1b\x1c\x1f\x7f\x85\u200b\u200c\u200d\u2028\ufeff end",
    "tab\tnew\nline\r\nform\x0cfeed  many    spaces ",
    "ΣΑΣ ΌΣΟΣ İstanbul straße ǅ",
    "``quoted'' \"double\" 'single' [MASK] <mask> [CLS] </s> <unk>",
    "中文文本，没有空格。日本語のテキスト한국어 텍스트",
    "x" * 3000,
)
DEFAULT_TEXTS = (
    "A short one.",
    "Bad.",
    "This film was " + "really " * 60 + "good.",
    "I expected a lot more from the director; the plot drags and the ending makes no sense at all.",
    "One of the best performances I have seen this year. Funny, warm and smart: go and see it!",
)


def supported() -> str:
    return ", ".join(sorted(FAMILIES))


def read_config(ckpt: Path) -> tuple[dict[str, Any], Family, list[str], bool]:
    """(config, family, label names, multi-label) or a clear refusal."""
    path = ckpt / "config.json"
    if not path.is_file():
        raise ValueError(f"{ckpt}: no config.json (expected a save_pretrained checkpoint directory)")
    config = json.loads(path.read_text(encoding="utf-8"))
    model_type = config.get("model_type")
    if model_type not in FAMILIES:
        raise ValueError(f"{path}: model_type {model_type!r} is not supported; supported: {supported()}")
    archs = config.get("architectures") or []
    if archs and not any(a.endswith("ForSequenceClassification") for a in archs):
        raise ValueError(f"{path}: architectures {archs} hold no *ForSequenceClassification head")
    problem = config.get("problem_type")
    id2label = config.get("id2label") or {}
    n = len(id2label) or int(config.get("num_labels", 2))
    if problem == "regression" or n == 1:
        raise ValueError(
            f"{path}: a regression head (problem_type {problem!r}, {n} output) is not supported; "
            "supported heads: single_label_classification, multi_label_classification"
        )
    if problem not in (None, "single_label_classification", "multi_label_classification"):
        raise ValueError(f"{path}: problem_type {problem!r} is not supported")
    labels = [str(id2label.get(str(i), id2label.get(i, f"LABEL_{i}"))) for i in range(n)]
    if len(set(labels)) != n:
        raise ValueError(f"{path}: id2label names must be distinct, got {labels}")
    return config, FAMILIES[model_type], labels, problem == "multi_label_classification"


def max_positions(config: dict[str, Any], family: Family, tokenizer: Any) -> int:
    """Longest input the model takes: its position table, less RoBERTa's offset, and the tokenizer's bound."""
    positions = int(config.get("max_position_embeddings", 512))
    if family.position_offset:
        positions -= int(config.get("pad_token_id", 1)) + 1
    bound = getattr(tokenizer, "model_max_length", None)
    if isinstance(bound, int) and 0 < bound < positions:
        positions = bound
    return positions


def load_tokenizer(ckpt: Path, max_length: int | None = None) -> tuple[Any, dict[str, Any], Any]:
    """(transformers' fast tokenizer, its tokenizer.json as loaded, the runtime tokenizer)."""
    transformers = require("transformers", "transformers export")
    from edgeclf.tokenizers.hf_json import HFJsonTokenizer

    reference = transformers.AutoTokenizer.from_pretrained(str(ckpt))
    if not getattr(reference, "is_fast", False):
        raise ValueError(
            f"{ckpt}: AutoTokenizer loads {type(reference).__name__}, not a fast tokenizer; edgeclf "
            "reads tokenizer.json (save the checkpoint with its fast tokenizer)"
        )
    spec = json.loads(reference.backend_tokenizer.to_str())
    spec["truncation"] = spec["padding"] = None  # per call in transformers; the bundle's max_length rules
    try:
        mine = HFJsonTokenizer(
            spec,
            max_length=max_length or 512,
            truncation_side=reference.truncation_side,
            pad_id=reference.pad_token_id,
        )
    except ValueError as exc:
        raise ValueError(f"{ckpt}: tokenizer: {exc}") from None
    if any(mine.type_ids):
        raise ValueError(f"{ckpt}: the tokenizer's template gives one text token_type_ids {mine.type_ids}")
    return reference, spec, mine


def check_tokenizer(reference: Any, mine: Any, texts: Sequence[str], max_length: int) -> int:
    """Raise unless the runtime tokenizer equals transformers' on every text; returns how many."""
    for text in [*texts, *HOSTILE]:
        want = reference(text, truncation=True, max_length=max_length)["input_ids"]
        got = mine.encode(text)
        if want != got:
            raise RuntimeError(
                f"the runtime tokenizer differs from {type(reference).__name__} on {text[:80]!r}: "
                f"{want[:12]}... vs {got[:12]}... (please report it)"
            )
    return len(texts) + len(HOSTILE)


def to_onnx(ckpt: Path, path: Path, sample: list[list[int]], pad_id: int) -> Any:
    """Export eval-mode ``AutoModelForSequenceClassification``; returns the torch model."""
    torch = require("torch", "transformers export")
    transformers = require("transformers", "transformers export")
    from edgeclf.classifier import pad

    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        str(ckpt), attn_implementation="eager"
    ).eval()

    ids, mask = pad(sample, None, pad_id)
    export_logits_onnx(model, torch.from_numpy(ids), torch.from_numpy(mask.astype(np.int64)), path)
    return model


def parity(model: Any, seqs: list[list[int]], onnx_path: Path, pad_id: int) -> dict[str, Any]:
    """Max |logit| difference PyTorch vs onnxruntime, batches of 1, 3 and 8 (padding included)."""
    import torch

    from edgeclf.classifier import pad

    sess = import_onnxruntime().InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    worst, same, n = 0.0, 0, 0
    for bs in (1, 3, 8):
        for s in range(0, len(seqs), bs):
            ids, mask = pad(seqs[s : s + bs], None, pad_id)
            mask = mask.astype(np.int64)
            with torch.no_grad():
                want = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits
            got = sess.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]
            worst = max(worst, float(np.abs(want.numpy() - got).max()))
            same += int((want.numpy().argmax(1) == got.argmax(1)).sum())
            n += len(ids)
    lengths = sorted(len(s) for s in seqs)
    return {
        "texts": len(seqs),
        "batch_sizes": [1, 3, 8],
        "max_abs_logit_diff": worst,
        "label_agreement": same / n,
        "token_lengths": [lengths[0], lengths[len(lengths) // 2], lengths[-1]],
    }


def export_transformers(
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    name: str | None = None,
    description: str = "",
    max_length: int | None = None,
    parity_texts: Sequence[str] | None = None,
    eval_texts: Sequence[str] | None = None,
    eval_labels: Sequence[Any] | None = None,
    eval_dataset: str = "",
    eval_command: str = "",
    int8: bool = True,
    fp16: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Write a bundle (fp32, fp16, int8, int8-dynamic) for a checkpoint; returns the manifest.

    ``eval_labels``: label ids (single-label) or tuples of label ids (multi-label).
    """
    ckpt = Path(checkpoint)
    config, family, labels, multi = read_config(ckpt)
    reference, spec, _ = load_tokenizer(ckpt)
    limit = max_positions(config, family, reference)
    if max_length is not None and not 2 < max_length <= limit:
        raise ValueError(f"--max-length {max_length}: the model takes 3 to {limit} tokens")
    max_length = max_length or limit
    reference, spec, mine = load_tokenizer(ckpt, max_length)
    texts = list(parity_texts or DEFAULT_TEXTS)
    checked = check_tokenizer(reference, mine, texts, max_length)
    log(f"runtime tokenizer equals {type(reference).__name__} on {checked} texts")

    root = bundle_writer.fresh_dir(out)
    (root / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    seqs = [mine.encode(t) for t in texts]
    model = to_onnx(ckpt, root / "model.onnx", seqs[:2], mine.pad_id)
    pt_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    dedup = deduplicate(root / "model.onnx")
    par = parity(model, seqs, root / "model.onnx", mine.pad_id)
    log(f"parity PyTorch vs onnxruntime: {par}")
    if par["max_abs_logit_diff"] > 1e-4 or par["label_agreement"] < 1.0:
        raise RuntimeError(f"ONNX export does not match PyTorch: {par}")

    tok_config = {"truncation_side": mine.truncation_side, "pad_id": mine.pad_id}
    card = model_card.reads(model_card.read_for_checkpoint(ckpt), tok_config, max_length)
    manifest = bundle_writer.new_manifest(
        root,
        name=name or ckpt.name,
        task="multi-label-classification" if multi else "text-classification",
        labels=labels,
        tokenizer_kind=mine.kind,
        tokenizer_files={"tokenizer": "tokenizer.json"},
        tokenizer_config=tok_config,
        max_length=max_length,
        inputs=[
            {"name": "input_ids", "dtype": "int64", "shape": ["batch", "sequence"]},
            {"name": "attention_mask", "dtype": "int64", "shape": ["batch", "sequence"]},
        ],
        outputs=[{"name": "logits", "dtype": "float32", "shape": ["batch", len(labels)]}],
        output_kind="logits",
        padding="longest",
        description=description,
        model_card=card,
        extra={
            "architecture": type(model).__name__,
            "family": family.name,
            "parity": par,
            "deduplication": dedup,
            "pytorch_weight_bytes": pt_bytes,
            "config": {k: config.get(k) for k in ("model_type", "hidden_size", "num_hidden_layers", "dim")},
        },
    )
    manifest["head"] = (
        {"kind": "multi_label", "thresholds": [0.5] * len(labels)} if multi else {"kind": "single_label"}
    )

    def against_fp32(other: Path) -> dict[str, Any]:
        return float_parity(root / "model.onnx", other, reference, texts, max_length)

    _add_variants(manifest, root, fp16=fp16, int8=int8, default_variant="int8", log=log, check=against_fp32)
    log(f"fp16 tolerance {FP16_TOLERANCE} (probabilities vs fp32)")
    bundle_writer.save(root, manifest)
    if eval_texts is not None and eval_labels is not None:
        from .transformers_eval import evaluate

        evaluate(root, manifest, eval_texts, eval_labels, multi, eval_dataset, eval_command, log)
    return manifest
