"""Structured pruning that pays: fewer heads, a narrower FFN, fewer layer passes.

Zeroing weights (unstructured pruning) neither shrinks an ONNX file nor
speeds up ONNX Runtime on a CPU, so everything here removes computation:

- attention heads of ALBERT's shared layer, ranked by the gradient of the
  loss with respect to a head mask on a calibration set (Michel et al.,
  2019), summed over every pass through the shared layer;
- FFN neurons (``intermediate_size``), ranked by first-order Taylor
  importance |activation x gradient| at the FFN output projection;
- depth: ALBERT applies one shared layer N times, so running it fewer times
  (``num_hidden_layers``) removes compute without touching a weight;
- then a short recovery fine-tune (:mod:`edgeclf.quantize.recovery`),
  distilled from the unpruned model, and the usual export and int8
  quantization.

The pruned model stays an ordinary ``AlbertForSequenceClassification``
checkpoint (``pruned_heads`` and ``intermediate_size`` in its config), so
``edgeclf export albert`` and ``from_pretrained`` read it as they read any.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgeclf.export import model_card, require

from .recovery import Split, accuracy, recover


def _load(checkpoint: Path, eager: bool = False) -> Any:
    transformers = require("transformers", "pruning")
    kwargs = {"attn_implementation": "eager"} if eager else {}
    return transformers.AlbertForSequenceClassification.from_pretrained(str(checkpoint), **kwargs)


def importance(
    model: Any, seqs: Sequence[Sequence[int]], labels: Sequence[int], batch_size: int = 16
) -> tuple[Any, Any]:
    """(head scores [heads], FFN neuron scores [intermediate]) on a calibration set."""
    torch = require("torch", "pruning")
    from edgeclf.export.albert_loops import tensor_batch as _tensor_batch

    cfg = model.config
    layer = model.albert.encoder.albert_layer_groups[0].albert_layers[0]
    heads = layer.attention.num_attention_heads
    head_mask = torch.ones(cfg.num_hidden_layers, heads, requires_grad=True)
    ffn_scores = torch.zeros(layer.ffn.out_features)
    captured: list[Any] = []

    def hook(_module: Any, inputs: tuple[Any, ...]) -> None:
        x = inputs[0]
        x.retain_grad()
        captured.append(x)

    handle = layer.ffn_output.register_forward_pre_hook(hook)
    model.eval()
    try:
        for s in range(0, len(seqs), batch_size):
            ids, mask = _tensor_batch(torch, seqs[s : s + batch_size])
            y = torch.tensor(labels[s : s + batch_size])
            captured.clear()
            out = model(input_ids=ids, attention_mask=mask, labels=y, head_mask=head_mask)
            out.loss.backward()
            m = mask.unsqueeze(-1).float()
            for x in captured:  # one per pass through the shared layer
                ffn_scores += (x * x.grad * m).sum(dim=(0, 1)).abs().detach()
            model.zero_grad()
    finally:
        handle.remove()
    head_scores = head_mask.grad.abs().sum(0).detach()
    return head_scores, ffn_scores


def prune_ffn(model: Any, keep: Sequence[int]) -> None:
    torch = require("torch", "pruning")
    layer = model.albert.encoder.albert_layer_groups[0].albert_layers[0]
    idx = torch.tensor(sorted(keep))
    ffn = torch.nn.Linear(layer.ffn.in_features, len(idx))
    ffn.weight.data = layer.ffn.weight.data[idx].clone()
    ffn.bias.data = layer.ffn.bias.data[idx].clone()
    out = torch.nn.Linear(len(idx), layer.ffn_output.out_features)
    out.weight.data = layer.ffn_output.weight.data[:, idx].clone()
    out.bias.data = layer.ffn_output.bias.data.clone()
    layer.ffn, layer.ffn_output = ffn, out
    model.config.intermediate_size = len(idx)


def prune_vocab(model: Any, keep: Sequence[int], unk_id: int) -> Any:
    """Keep only the embedding rows of ``keep`` (plus pad 0 and unk); return the id map."""
    torch = require("torch", "pruning")
    old = model.albert.embeddings.word_embeddings
    kept = sorted(set(keep) | {0, unk_id})
    id_map = np.full(old.num_embeddings, kept.index(unk_id), dtype=np.int64)
    id_map[kept] = np.arange(len(kept))
    new = torch.nn.Embedding(len(kept), old.embedding_dim, padding_idx=0)
    new.weight.data = old.weight.data[torch.tensor(kept)].clone()
    model.albert.embeddings.word_embeddings = new
    model.config.vocab_size = len(kept)
    return id_map


def _unk_id(checkpoint: Path) -> int:
    from edgeclf.export.albert import reference_tokenizer

    return int(reference_tokenizer(checkpoint).unk_token_id)


def prune(
    checkpoint: str | Path,
    out: str | Path,
    *,
    heads: int | None = None,
    ffn: int | None = None,
    layers: int | None = None,
    calibration: tuple[Sequence[Sequence[int]], Sequence[int]],
    train: tuple[Sequence[Sequence[int]], Sequence[int]] | None = None,
    val: tuple[Sequence[Sequence[int]], Sequence[int]] | None = None,
    recovery_steps: int = 300,
    batch_size: int = 32,
    lr: float = 3e-4,
    distill: float = 0.5,
    temperature: float = 2.0,
    seed: int = 0,
    keep_tokens: Sequence[int] | None = None,
    unlabeled: Sequence[Sequence[int]] = (),
    unlabeled_probs: Any = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Prune a checkpoint to ``heads`` heads, ``ffn`` neurons and ``layers`` passes; save to ``out``.

    ``keep_tokens`` also prunes the vocabulary to those token ids: the model
    keeps only their embedding rows and ``out/id_map.i32`` maps every
    tokenizer id to its row (dropped tokens to the unknown token's row).
    """
    torch = require("torch", "pruning")
    torch.manual_seed(seed)
    src = Path(checkpoint)
    teacher = _load(src).eval()
    model = _load(src, eager=True)
    report, id_map = _cut(
        model, src, heads=heads, ffn=ffn, layers=layers, calibration=calibration, keep_tokens=keep_tokens
    )
    model.config._attn_implementation = "sdpa"
    if train is not None and recovery_steps > 0:
        report["recovery"] = recover(
            model,
            teacher,
            train,
            val,
            steps=recovery_steps,
            batch_size=batch_size,
            lr=lr,
            distill=distill,
            temperature=temperature,
            seed=seed,
            log=log,
            id_map=id_map,
            unlabeled=unlabeled,
            unlabeled_probs=unlabeled_probs,
        )
    elif val is not None:
        report["val_accuracy"] = accuracy(model, val, id_map=id_map)
    _save_pruned(model, src, Path(out), report, id_map)
    log(f"pruned: {report['from']} -> {report['to']}")
    return report


def _cut(
    model: Any,
    src: Path,
    *,
    heads: int | None,
    ffn: int | None,
    layers: int | None,
    calibration: tuple[Sequence[Sequence[int]], Sequence[int]],
    keep_tokens: Sequence[int] | None,
) -> tuple[dict[str, Any], Any]:
    """Remove the least important heads and FFN neurons, layer passes and vocabulary rows, in place.

    Returns the report (shape before and after, head scores) and the id map
    (None unless the vocabulary was cut).
    """
    torch = require("torch", "pruning")
    cfg = model.config
    layer = model.albert.encoder.albert_layer_groups[0].albert_layers[0]
    n_heads = layer.attention.num_attention_heads
    n_ffn = layer.ffn.out_features
    report: dict[str, Any] = {
        "from": {"heads": n_heads, "ffn": n_ffn, "layers": cfg.num_hidden_layers, "vocab": cfg.vocab_size}
    }
    if (heads is not None and heads < n_heads) or (ffn is not None and ffn < n_ffn):
        head_scores, ffn_scores = importance(model, calibration[0], calibration[1])
        report["head_scores"] = [round(float(v), 5) for v in head_scores]
        if heads is not None and heads < n_heads:
            drop = torch.argsort(head_scores)[: n_heads - heads].tolist()
            model.prune_heads({0: drop})  # AlbertModel maps layer 0 to the shared layer
        if ffn is not None and ffn < n_ffn:
            keep = torch.argsort(ffn_scores, descending=True)[:ffn].tolist()
            prune_ffn(model, keep)
    if layers is not None:
        cfg.num_hidden_layers = layers
    id_map = None
    if keep_tokens is not None:
        unk = getattr(cfg, "unk_token_id", None)
        id_map = prune_vocab(model, keep_tokens, unk_id=int(unk) if unk is not None else _unk_id(src))
    report["to"] = {
        "heads": layer.attention.num_attention_heads,
        "ffn": model.config.intermediate_size,
        "layers": cfg.num_hidden_layers,
        "vocab": model.config.vocab_size,
    }
    return report, id_map


def _save_pruned(model: Any, src: Path, dst: Path, report: dict[str, Any], id_map: Any) -> None:
    """The pruned checkpoint: weights, id map, the source's tokenizer files, ``pruning.json``, the model card."""
    dst.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(dst), safe_serialization=True)
    if id_map is not None:
        (dst / "id_map.i32").write_bytes(id_map.astype("<i4").tobytes())
    for name in (
        "spiece.model",
        "vocab.txt",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "training.json",  # how the unpruned model was trained; pruning.json (below) says the rest
    ):
        if (src / name).is_file():
            (dst / name).write_bytes((src / name).read_bytes())
    (dst / "pruning.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    if (src / model_card.FILE).is_file():  # same data; the notes say what was cut
        model_card.write_for_checkpoint(dst, model_card.pruned(model_card.read_for_checkpoint(src), report))


def prune_into_bundle(
    checkpoint: str | Path,
    bundle: str | Path,
    *,
    heads: int | None,
    ffn: int | None,
    layers: int | None,
    train_texts: Sequence[str],
    train_labels: Sequence[int],
    eval_texts: Sequence[str] | None = None,
    eval_labels: Sequence[int] | None = None,
    eval_dataset: str = "",
    name: str = "pruned",
    recovery_steps: int = 300,
    calibration: int = 256,
    work_dir: str | Path | None = None,
    seed: int = 0,
    vocab_min_count: int | None = None,
    save_checkpoint: str | Path | None = None,
    unlabeled_texts: Sequence[str] = (),
    unlabeled_teacher: str | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Prune, recover, export ``<name>`` and ``<name>-int8`` variants into an existing ALBERT bundle.

    ``unlabeled_texts`` join the recovery, distilled from the unpruned
    checkpoint, or from the bundle's variant ``unlabeled_teacher`` (such as
    an n-gram-fused one: an ensemble teacher) as the runtime reads them.

    ``save_checkpoint``: also keep the pruned PyTorch checkpoint there (to
    export it as a bundle of its own, or prune it further).

    ``vocab_min_count``: also drop the embedding rows of tokens seen fewer
    times in ``train_texts`` (the domain); those tokens then read as unknown.
    """
    import tempfile

    from edgeclf.export import bundle_writer
    from edgeclf.export.albert import reference_tokenizer

    root = Path(bundle)
    manifest = bundle_writer.load(root)
    max_length = int(manifest["max_length"])
    tok = reference_tokenizer(Path(checkpoint))
    data = Split.of(tok, train_texts, train_labels, max_length, seed, calibration)
    keep_tokens = None if vocab_min_count is None else data.tokens_seen(vocab_min_count, tok.all_special_ids)
    unlabeled = [tok.encode(t, truncation=True, max_length=max_length) for t in unlabeled_texts]
    unlabeled_probs = None
    if unlabeled_teacher is not None:
        import edgeclf

        t0 = time.perf_counter()
        with edgeclf.load(root, variant=unlabeled_teacher, temperature=1.0) as scorer:
            unlabeled_probs = scorer.predict_proba(list(unlabeled_texts))
        log(
            f"{unlabeled_teacher} scored {len(unlabeled_texts):,} unlabeled texts ({time.perf_counter() - t0:.0f} s)"
        )
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        ckpt = Path(tmp) / "pruned"
        report = prune(
            checkpoint,
            ckpt,
            heads=heads,
            ffn=ffn,
            layers=layers,
            calibration=data.calibration,
            train=data.train,
            val=data.val,
            recovery_steps=recovery_steps,
            seed=seed,
            keep_tokens=keep_tokens,
            unlabeled=unlabeled,
            unlabeled_probs=unlabeled_probs,
            log=log,
        )
        if unlabeled_teacher is not None and "recovery" in report:
            report["recovery"]["unlabeled_targets"] = f"variant {unlabeled_teacher} of the bundle"
        if save_checkpoint is not None:
            import shutil

            shutil.copytree(ckpt, save_checkpoint, dirs_exist_ok=True)
            log(f"pruned checkpoint saved to {save_checkpoint}")
        parity_texts = [train_texts[i] for i in data.order[:24]]
        id_map_rel = _export_pruned(ckpt, root, name, tok, parity_texts, max_length, report)
    _add_pruned_variants(manifest, root, name, report, recovery_steps, vocab_min_count, id_map_rel)
    bundle_writer.save(root, manifest)
    if eval_texts is not None and eval_labels is not None:
        bundle_writer.record_metrics(
            root,
            manifest,
            eval_texts,
            eval_labels,
            dataset=eval_dataset,
            measured_by=lambda vname: f"edgeclf evaluate {root} --variant {vname} --data <test csv>",
            variants=["fp32", name, f"{name}-int8"],
            record=[name, f"{name}-int8"],
        )
    return manifest


def _export_pruned(
    ckpt: Path, root: Path, name: str, tok: Any, texts: list[str], max_length: int, report: dict[str, Any]
) -> str | None:
    """``model.<name>.onnx`` and its int8 twin in the bundle, checked against PyTorch; the id map's path."""
    from edgeclf.export.albert import deduplicate, parity, to_onnx
    from edgeclf.quantize.rowwise import quantize_rowwise

    fp32, q8 = f"model.{name}.onnx", f"model.{name}-int8.onnx"
    id_map_rel = id_map = None
    if (ckpt / "id_map.i32").is_file():
        import numpy as np

        id_map_rel = f"model.{name}.idmap.i32"
        (root / id_map_rel).write_bytes((ckpt / "id_map.i32").read_bytes())
        id_map = np.frombuffer((ckpt / "id_map.i32").read_bytes(), dtype="<i4").astype(np.int64)
    model = to_onnx(ckpt, root / fp32)
    report["deduplication"] = deduplicate(root / fp32)
    report["parity"] = parity(model, tok, root / fp32, texts, max_length, id_map=id_map)
    if report["parity"]["max_abs_logit_diff"] > 1e-4:
        raise RuntimeError(f"pruned export does not match PyTorch: {report['parity']}")
    quantize_rowwise(root / fp32, root / q8)  # the batch-invariant int8 the bundles default to
    return id_map_rel


def _add_pruned_variants(
    manifest: dict[str, Any],
    root: Path,
    name: str,
    report: dict[str, Any],
    recovery_steps: int,
    vocab_min_count: int | None,
    id_map_rel: str | None,
) -> None:
    """The ``<name>`` and ``<name>-int8`` variants, described by their shape, and the pruning report."""
    from edgeclf.export import bundle_writer

    shape = report["to"]
    desc = f"{shape['heads']} heads, FFN {shape['ffn']}, {shape['layers']} layer passes; recovered {recovery_steps} steps"
    if id_map_rel is not None:
        desc += (
            f"; vocabulary {shape['vocab']} tokens (seen >= {vocab_min_count} times in the training texts)"
        )
    bundle_writer.add_variant(
        manifest,
        root,
        name,
        f"model.{name}.onnx",
        description=f"pruned: {desc}",
        id_map=id_map_rel,
        precision="fp32",
    )
    bundle_writer.add_variant(
        manifest,
        root,
        f"{name}-int8",
        f"model.{name}-int8.onnx",
        description=f"pruned + row-wise int8: {desc}",
        id_map=id_map_rel,
        precision="int8",
    )
    manifest["extra"].setdefault("pruning", {})[name] = report
