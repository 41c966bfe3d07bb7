"""Any Hugging Face ALBERT sequence classifier -> an edgeclf bundle.

    edgeclf export albert CHECKPOINT_DIR --out my-bundle [--name NAME] [--eval-data test.csv]

``CHECKPOINT_DIR`` is a local ``save_pretrained`` directory of
``AlbertForSequenceClassification`` with its tokenizer files (``spiece.model``
for SentencePiece checkpoints, ``vocab.txt`` for the BERT-WordPiece Chinese
ones). The tokenizer kind is detected from those files and written into the
bundle for the runtime's pure-Python shims.

What the export takes care of (each one measured, see docs/albert.md):

- ``torch.onnx.export`` (TorchScript exporter) in eval mode, dynamic batch and
  sequence axes, ``input_ids`` + ``attention_mask`` inputs, ``logits`` output,
  checked against PyTorch on real texts of several lengths and batch sizes.
- ALBERT shares one layer's weights across all layers; exporters write them
  once per layer and route them through ``Identity`` nodes. We deduplicate
  initializers by content and bypass Identity nodes that merely forward an
  initializer, so the fp32 file holds each weight once.
- That also lets int8 quantization (row-wise, and dynamic by name) see every
  MatMul weight (behind an Identity they are skipped), which is where the
  size and speed come from.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgeclf._ort import import_onnxruntime

from . import bundle_writer, model_card, require
from .albert_loops import ARCH_KEYS

os.environ.setdefault("USE_TF", "0")  # transformers would otherwise import TensorFlow when present
os.environ.setdefault("USE_TORCH", "1")

OPSET = 17


# ------------------------------------------------------------------ tokenizer


def detect_tokenizer(checkpoint: Path) -> str:
    """'sentencepiece-unigram' or 'wordpiece', from the files a checkpoint ships."""
    cfg = {}
    if (checkpoint / "tokenizer_config.json").is_file():
        cfg = json.loads((checkpoint / "tokenizer_config.json").read_text(encoding="utf-8"))
    cls = str(cfg.get("tokenizer_class", ""))
    if (checkpoint / "vocab.txt").is_file() and (
        "Bert" in cls or not (checkpoint / "spiece.model").is_file()
    ):
        return "wordpiece"
    if (checkpoint / "spiece.model").is_file():
        return "sentencepiece-unigram"
    raise FileNotFoundError(
        f"{checkpoint}: no tokenizer files (spiece.model for ALBERT SentencePiece, vocab.txt for WordPiece)"
    )


def reference_tokenizer(checkpoint: Path) -> Any:
    """The transformers (slow) tokenizer the runtime shim must match."""
    transformers = require("transformers", "ALBERT export")
    if detect_tokenizer(checkpoint) == "wordpiece":
        return transformers.BertTokenizer.from_pretrained(str(checkpoint))
    return transformers.AlbertTokenizer.from_pretrained(str(checkpoint))


def write_tokenizer_files(checkpoint: Path, out: Path) -> tuple[str, dict[str, str], dict[str, Any]]:
    kind = detect_tokenizer(checkpoint)
    if kind == "wordpiece":
        shutil.copyfile(checkpoint / "vocab.txt", out / "vocab.txt")
        cfg = {}
        if (checkpoint / "tokenizer_config.json").is_file():
            cfg = json.loads((checkpoint / "tokenizer_config.json").read_text(encoding="utf-8"))
        config = {
            "do_lower_case": bool(cfg.get("do_lower_case", True)),
            "strip_accents": cfg.get("strip_accents"),
            "tokenize_chinese_chars": bool(cfg.get("tokenize_chinese_chars", True)),
        }
        if cfg.get("truncation_side", "right") != "right":  # "left": keep the end of long texts
            config["truncation_side"] = cfg["truncation_side"]
        return kind, {"vocab": "vocab.txt"}, config
    from .spm_convert import tokenizer_files_for_checkpoint

    return tokenizer_files_for_checkpoint(checkpoint, out)


# ------------------------------------------------------------------ ONNX


def to_onnx(checkpoint: Path, path: Path) -> Any:
    """Export eval-mode ``AlbertForSequenceClassification`` to ONNX; returns the torch model."""
    torch = require("torch", "ALBERT export")
    transformers = require("transformers", "ALBERT export")

    model = transformers.AlbertForSequenceClassification.from_pretrained(str(checkpoint))
    model.eval()

    ids = torch.tensor([[2, 10, 11, 12, 3], [2, 13, 3, 0, 0]], dtype=torch.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    export_logits_onnx(model, ids, (ids != 0).long(), path)
    return model


def deduplicate(path: Path) -> dict[str, int]:
    """Keep each weight once: merge identical initializers, bypass Identity forwards.

    Returns counts, so the export log and tests can show what was removed.
    """
    onnx = require("onnx", "ALBERT export")
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    by_digest: dict[str, str] = {}
    rename: dict[str, str] = {}
    keep = []
    for init in graph.initializer:
        arr = numpy_helper.to_array(init)
        digest = hashlib.sha256(arr.dtype.str.encode() + str(arr.shape).encode() + arr.tobytes()).hexdigest()
        if digest in by_digest:
            rename[init.name] = by_digest[digest]
        else:
            by_digest[digest] = init.name
            keep.append(init)
    removed_inits = len(graph.initializer) - len(keep)
    del graph.initializer[:]
    graph.initializer.extend(keep)
    init_names = {i.name for i in keep}
    # Identity nodes that only forward a (shared) initializer
    nodes = []
    removed_identity = 0
    outputs = {o.name for o in graph.output}
    for node in graph.node:
        src = rename.get(node.input[0], node.input[0]) if node.input else None
        if node.op_type == "Identity" and src in init_names and node.output[0] not in outputs:
            rename[node.output[0]] = src
            removed_identity += 1
            continue
        nodes.append(node)
    for node in nodes:
        node.input[:] = [rename.get(n, n) for n in node.input]
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return {"duplicate_initializers_removed": removed_inits, "identity_nodes_removed": removed_identity}


def parity(
    model: Any,
    tokenizer: Any,
    onnx_path: Path,
    texts: Sequence[str],
    max_length: int,
    batch_sizes: Sequence[int] = (1, 3, 8),
    id_map: np.ndarray | None = None,
) -> dict[str, Any]:
    """Max |logit| difference PyTorch vs onnxruntime and label agreement."""
    import torch

    from edgeclf.classifier import pad

    ort = import_onnxruntime()

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    seqs = [tokenizer.encode(t, truncation=True, max_length=max_length) for t in texts]
    worst, same, n = 0.0, 0, 0
    for bs in batch_sizes:
        for s in range(0, len(seqs), bs):
            ids, mask = pad(seqs[s : s + bs], None, 0)
            if id_map is not None:  # a vocabulary-pruned model reads remapped ids
                ids = id_map[ids]
            with torch.no_grad():
                want = model(
                    input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask.astype(np.int64))
                ).logits.numpy()
            got = sess.run(["logits"], {"input_ids": ids, "attention_mask": mask.astype(np.int64)})[0]
            worst = max(worst, float(np.abs(want - got).max()))
            same += int((want.argmax(1) == got.argmax(1)).sum())
            n += len(ids)
    lengths = sorted(len(s) for s in seqs)
    return {
        "texts": len(texts),
        "batch_sizes": list(batch_sizes),
        "max_abs_logit_diff": worst,
        "label_agreement": same / n,
        "token_lengths": [lengths[0], lengths[len(lengths) // 2], lengths[-1]],
    }


# ------------------------------------------------------------------ bundle


#: fp16 vs fp32, largest probability difference allowed on the parity texts (labels must agree)
FP16_TOLERANCE = 5e-3


def float_parity(
    fp32: Path, other: Path, tokenizer: Any, texts: Sequence[str], max_length: int
) -> dict[str, Any]:
    """Probabilities of two ONNX files of one model on the same texts (CPU provider)."""
    import numpy as np

    ort = import_onnxruntime()

    enc = [tokenizer.encode(t, truncation=True, max_length=max_length) for t in texts]
    probs = []
    for path in (fp32, other):
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        rows = []
        for seq in enc:  # one at a time: no padding effects in the comparison
            ids = np.asarray([seq], dtype=np.int64)
            logits = sess.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0]
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            rows.append(e / e.sum(axis=1, keepdims=True))
        probs.append(np.concatenate(rows))
    a, b = probs
    return {
        "texts": len(texts),
        "max_abs_prob_diff": round(float(np.abs(a - b).max()), 6),
        "label_agreement": float((a.argmax(1) == b.argmax(1)).mean()),
    }


def _provenance(ckpt: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, name in (("training", "training.json"), ("derived_by_pruning", "pruning.json")):
        if (ckpt / name).is_file():
            out[key] = json.loads((ckpt / name).read_text(encoding="utf-8"))
    return out


def export_albert(
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    name: str | None = None,
    task: str = "text-classification",
    description: str = "",
    max_length: int | None = None,
    parity_texts: Sequence[str] | None = None,
    eval_texts: Sequence[str] | None = None,
    eval_labels: Sequence[int] | None = None,
    eval_dataset: str = "",
    eval_command: str = "",
    int8: bool = True,
    fp16: bool = True,
    default_variant: str = "int8",
    log: Callable[[str], None] = print,
    card: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write a bundle (fp32 [+ fp16] [+ int8]) for an ALBERT checkpoint; returns the manifest.

    ``card``: the model card (export/model_card.py); by default the
    checkpoint's ``model_card.json``, or a card saying the data was not recorded.
    """
    ckpt = Path(checkpoint)
    root = bundle_writer.fresh_dir(out)
    config = json.loads((ckpt / "config.json").read_text(encoding="utf-8"))
    max_length = max_length or min(512, int(config.get("max_position_embeddings", 512)))
    kind, tok_files, tok_config = write_tokenizer_files(ckpt, root)
    model, extra = _export_fp32(ckpt, root, log)
    reference = reference_tokenizer(ckpt)
    texts = list(parity_texts or ["A short one.", "This film was " + "really " * 60 + "good.", "", "Bad."])
    par = _check_parity(model, reference, root / "model.onnx", texts, max_length, log)
    labels = _labels(config)
    manifest = bundle_writer.new_manifest(
        root,
        name=name or ckpt.name,
        task=task,
        labels=labels,
        tokenizer_kind=kind,
        tokenizer_files=tok_files,
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
        model_card=model_card.reads(
            model_card.read_for_checkpoint(ckpt) if card is None else card, tok_config, max_length
        ),
        extra={
            "architecture": "AlbertForSequenceClassification",
            "parity": par,
            **extra,
            "config": {k: config.get(k) for k in ARCH_KEYS},
            # how the checkpoint was made, where its tools recorded it (export/albert_recipe.py,
            # edgeclf prune --save-checkpoint): the bundle says what it is without the checkpoint
            **_provenance(ckpt),
        },
    )

    def against_fp32(other: Path) -> dict[str, Any]:
        return float_parity(root / "model.onnx", other, reference, texts, max_length)

    _add_variants(
        manifest, root, fp16=fp16, int8=int8, default_variant=default_variant, log=log, check=against_fp32
    )
    bundle_writer.save(root, manifest)
    if eval_texts is not None and eval_labels is not None:
        bundle_writer.record_metrics(
            root, manifest, eval_texts, eval_labels, dataset=eval_dataset, measured_by=eval_command, log=log
        )
    return manifest


def _check_parity(
    model: Any, reference: Any, path: Path, texts: list[str], max_length: int, log: Callable[[str], None]
) -> dict[str, Any]:
    """PyTorch against onnxruntime on ``texts``; raises unless logits agree within 1e-4 and labels match."""
    par = parity(model, reference, path, texts, max_length)
    log(f"parity PyTorch vs onnxruntime: {par}")
    if par["max_abs_logit_diff"] > 1e-4 or par["label_agreement"] < 1.0:
        raise RuntimeError(f"ONNX export does not match PyTorch: {par}")
    return par


def _labels(config: dict[str, Any]) -> list[str]:
    """Label names in id order, from the checkpoint's ``id2label`` (keys may be strings or ints)."""
    id2label = config.get("id2label") or {"0": "LABEL_0", "1": "LABEL_1"}
    return [id2label[str(i)] if str(i) in id2label else id2label[i] for i in range(len(id2label))]


def _export_fp32(ckpt: Path, root: Path, log: Callable[[str], None]) -> tuple[Any, dict[str, Any]]:
    """``model.onnx`` with each shared weight stored once; the torch model and what the manifest records."""
    model = to_onnx(ckpt, root / "model.onnx")
    pt_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    before = (root / "model.onnx").stat().st_size
    dedup = deduplicate(root / "model.onnx")
    after = (root / "model.onnx").stat().st_size
    log(
        f"fp32 ONNX {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB after de-duplication {dedup}; "
        f"PyTorch weights {pt_bytes / 1e6:.1f} MB"
    )
    return model, {"deduplication": dedup, "pytorch_weight_bytes": pt_bytes}


def _add_variants(
    manifest: dict[str, Any],
    root: Path,
    *,
    fp16: bool,
    int8: bool,
    default_variant: str,
    log: Callable[[str], None],
    check: Callable[[Path], dict[str, Any]],
) -> None:
    """fp32, then fp16 (checked against fp32 by ``check``) and int8 where asked, and the provider defaults."""
    from edgeclf.quantize.int8 import quantize_weights
    from edgeclf.quantize.rowwise import quantize_rowwise

    bundle_writer.add_variant(
        manifest,
        root,
        "fp32",
        "model.onnx",
        precision="fp32",
        description="torch.onnx export, float32, shared weights stored once",
    )
    if fp16:
        from edgeclf.quantize.fp16 import to_fp16

        to_fp16(root / "model.onnx", root / "model.fp16.onnx")
        half = check(root / "model.fp16.onnx")
        log(f"fp16 vs fp32: {half}")
        if half["label_agreement"] < 1.0 or half["max_abs_prob_diff"] > FP16_TOLERANCE:
            raise RuntimeError(f"fp16 variant does not match fp32 within {FP16_TOLERANCE}: {half}")
        bundle_writer.add_variant(
            manifest,
            root,
            "fp16",
            "model.fp16.onnx",
            precision="fp16",
            metrics={"parity_vs_fp32": half},
            description="float16 weights and math (GPUs), float32 inputs/outputs",
        )
    if int8:
        # the default int8 is row-wise (a text's scores do not depend on its batch, docs/quantization.md);
        # dynamic int8, a little faster and batch-dependent, stays available by name
        quantize_rowwise(root / "model.onnx", root / "model.int8.onnx")
        bundle_writer.add_variant(
            manifest,
            root,
            "int8",
            "model.int8.onnx",
            precision="int8",
            default=default_variant == "int8",
            description="row-wise int8: every MatMul (one activation scale per token row) and the embeddings",
        )
        quantize_weights(root / "model.onnx", root / "model.int8-dynamic.onnx")
        bundle_writer.add_variant(
            manifest,
            root,
            "int8-dynamic",
            "model.int8-dynamic.onnx",
            precision="int8",
            description="dynamic int8: every MatMul and the embeddings (one activation scale per batch)",
        )
    # providers="auto": a float variant on CUDA (fp16 where shipped), int8 on CPUs (docs/gpu.md)
    prefs = {}
    if "fp16" in manifest["variants"] or "fp32" in manifest["variants"]:
        prefs["cuda"] = "fp16" if "fp16" in manifest["variants"] else "fp32"
    prefs["cpu"] = "int8" if "int8" in manifest["variants"] else "fp32"
    manifest["provider_variants"] = prefs


def export_logits_onnx(model: Any, ids: Any, mask: Any, path: Path) -> None:
    """Write a ``*ForSequenceClassification`` model as ONNX: ``input_ids`` + ``attention_mask``
    (int64, dynamic batch and sequence) in, ``logits`` out. The one export every family shares."""
    torch = require("torch", "ONNX export")

    class Logits(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits

    wrapper = Logits(model).eval()  # .eval() again: the legacy exporter can flip dropout back on
    with torch.no_grad():
        torch.onnx.export(
            wrapper,
            (ids, mask),
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"},
                "attention_mask": {0: "batch", 1: "sequence"},
                "logits": {0: "batch"},
            },
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
