"""Structural pruning of the Hugging Face families ``edgeclf export transformers`` reads.

A ``save_pretrained`` directory goes in, a smaller one comes out, still an
ordinary checkpoint of the same class, so the exporter, ``from_pretrained``
and the user's own code read it as they read any:

- **attention heads** (BERT, DistilBERT, RoBERTa, XLM-RoBERTa, ELECTRA):
  transformers' ``prune_heads``, recorded in ``config.pruned_heads``. A head
  is ranked by |dL/dm| of a mask on its output (Michel et al., 2019), taken
  per text as the sum of activation x gradient over the head's slice of the
  attention output projection's input, so no ``head_mask`` argument (which
  newer attention kernels ignore) is needed;
- **FFN neurons**: first-order Taylor importance |activation x gradient| at
  the FFN output projection's input; every layer keeps the same count, since
  the config has one ``intermediate_size`` (ModernBERT's GLU keeps a neuron's
  value and gate rows together);
- **layers**: the top ones go (dropping from the top costs least, Sajjad et
  al., 2023), so the kept layers keep their indices, ``pruned_heads`` and
  ModernBERT's global/local attention pattern.

DeBERTa-v2/v3 and ModernBERT have no ``prune_heads`` (nor a config field that
would rebuild a pruned attention), so they prune FFN and layers only and
refuse ``heads`` by name. ALBERT (one shared layer) has its own path,
:mod:`edgeclf.quantize.prune`, whose recovery fine-tune and accuracy loop are
reused here.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeclf.export import require

Data = tuple[Sequence[Sequence[int]], Sequence[int]]


@dataclass(frozen=True)
class Family:
    """Where a family keeps what pruning touches (dotted attribute paths) and its config keys."""

    name: str
    layers: str  # from the *ForSequenceClassification model to the layer list
    attn_out: str  # from a layer to the Linear reading every head's context
    ffn_in: str
    ffn_out: str
    n_layers: str = "num_hidden_layers"
    n_heads: str = "num_attention_heads"
    ffn_size: str = "intermediate_size"
    hidden: str = "hidden_size"
    prunes_heads: bool = True
    glu: bool = False


_BERT_LIKE = dict(attn_out="attention.output.dense", ffn_in="intermediate.dense", ffn_out="output.dense")

#: model_type -> family; ALBERT is pruned by edgeclf.quantize.prune
FAMILIES: dict[str, Family] = {
    "bert": Family("BERT", "bert.encoder.layer", **_BERT_LIKE),
    "roberta": Family("RoBERTa", "roberta.encoder.layer", **_BERT_LIKE),
    "xlm-roberta": Family("XLM-RoBERTa", "roberta.encoder.layer", **_BERT_LIKE),
    "electra": Family("ELECTRA", "electra.encoder.layer", **_BERT_LIKE),
    "distilbert": Family(
        "DistilBERT",
        "distilbert.transformer.layer",
        "attention.out_lin",
        "ffn.lin1",
        "ffn.lin2",
        n_layers="n_layers",
        n_heads="n_heads",
        ffn_size="hidden_dim",
        hidden="dim",
    ),
    "deberta-v2": Family("DeBERTa-v2/v3", "deberta.encoder.layer", prunes_heads=False, **_BERT_LIKE),
    "modernbert": Family(
        "ModernBERT", "model.layers", "attn.Wo", "mlp.Wi", "mlp.Wo", prunes_heads=False, glu=True
    ),
}


def model_type(checkpoint: str | Path) -> str:
    """``model_type`` of a ``save_pretrained`` directory's config.json."""
    path = Path(checkpoint) / "config.json"
    try:
        return str(json.loads(path.read_text(encoding="utf-8"))["model_type"])
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{path}: not a transformers checkpoint config ({exc})") from None


def family_of(config: Any) -> Family:
    fam = FAMILIES.get(config.model_type)
    if fam is None:
        raise ValueError(
            f"edgeclf prune cannot prune model_type {config.model_type!r}; it prunes "
            f"{', '.join(sorted(FAMILIES))} (and albert through its own path)"
        )
    if config.problem_type not in (None, "single_label_classification") or config.num_labels < 2:
        raise ValueError(
            f"pruning recovers on single-label data; this checkpoint's head is "
            f"{config.problem_type or 'regression'!r} with {config.num_labels} labels (vocabulary pruning, "
            f"which is exact, works for every head)"
        )
    return fam


def _get(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _set(obj: Any, path: str, value: Any) -> None:
    *head, last = path.split(".")
    setattr(_get(obj, ".".join(head)) if head else obj, last, value)


def shape(model: Any, fam: Family) -> dict[str, int]:
    """Heads (most in any layer), FFN width, layers and vocabulary of a model, as pruning reports them."""
    cfg = model.config
    head_size = getattr(cfg, fam.hidden) // getattr(cfg, fam.n_heads)
    layers = _get(model, fam.layers)
    return {
        "heads": max(_get(layer, fam.attn_out).in_features // head_size for layer in layers),
        "ffn": getattr(cfg, fam.ffn_size),
        "layers": len(layers),
        "vocab": cfg.vocab_size,
    }


def importance(model: Any, fam: Family, data: Data, batch_size: int = 16) -> tuple[list[Any], list[Any]]:
    """Per layer: (head scores [heads in that layer], FFN neuron scores [intermediate]) on ``data``."""
    torch = require("torch", "pruning")
    from edgeclf.export.albert_loops import tensor_batch

    cfg = model.config
    head_size = getattr(cfg, fam.hidden) // getattr(cfg, fam.n_heads)
    layers = list(_get(model, fam.layers))
    heads = [torch.zeros(_get(la, fam.attn_out).in_features // head_size) for la in layers]
    ffn = [torch.zeros(_get(la, fam.ffn_out).in_features) for la in layers]
    captured: dict[tuple[str, int], Any] = {}

    def hook(key: tuple[str, int]) -> Callable[[Any, tuple[Any, ...]], None]:
        def capture(_module: Any, inputs: tuple[Any, ...]) -> None:
            inputs[0].retain_grad()
            captured[key] = inputs[0]

        return capture

    handles = [
        _get(la, fam.attn_out).register_forward_pre_hook(hook(("a", i))) for i, la in enumerate(layers)
    ]
    handles += [
        _get(la, fam.ffn_out).register_forward_pre_hook(hook(("f", i))) for i, la in enumerate(layers)
    ]
    model.eval()
    seqs, labels = data
    try:
        for s in range(0, len(seqs), batch_size):
            ids, mask = tensor_batch(torch, seqs[s : s + batch_size])
            y = torch.tensor(labels[s : s + batch_size])
            captured.clear()
            model(input_ids=ids, attention_mask=mask, labels=y).loss.backward()
            for i in range(len(layers)):
                a, f = captured[("a", i)], captured[("f", i)]
                per_text = (a * a.grad).sum(1)  # [batch, heads * head_size]: d loss / d head mask, per text
                heads[i] += per_text.reshape(len(per_text), -1, head_size).sum(-1).abs().sum(0).detach()
                ffn[i] += (f * f.grad).sum(1).abs().sum(0).detach()
            model.zero_grad()
    finally:
        for h in handles:
            h.remove()
    return heads, ffn


def drop_layers(model: Any, fam: Family, keep: int) -> None:
    """Keep the bottom ``keep`` layers."""
    layers = _get(model, fam.layers)
    if not 1 <= keep <= len(layers):
        raise ValueError(f"--layers must be between 1 and {len(layers)} (the model's layers), got {keep}")
    _set(model, fam.layers, type(layers)(list(layers)[:keep]))
    setattr(model.config, fam.n_layers, keep)
    pruned = getattr(model.config, "pruned_heads", None) or {}
    model.config.pruned_heads = {k: v for k, v in pruned.items() if int(k) < keep}


def _linear(torch: Any, weight: Any, bias: Any) -> Any:
    out = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    out.weight.data = weight.clone()
    if bias is not None:
        out.bias.data = bias.clone()
    return out


def prune_ffn(model: Any, fam: Family, keep: Sequence[Sequence[int]]) -> None:
    """Keep FFN neurons ``keep[layer]`` (the same count in every layer) in each layer."""
    torch = require("torch", "pruning")
    width = {len(k) for k in keep}
    if len(width) != 1:
        raise ValueError("every layer must keep the same number of FFN neurons (the config has one size)")
    for layer, k in zip(_get(model, fam.layers), keep, strict=True):
        fin, fout = _get(layer, fam.ffn_in), _get(layer, fam.ffn_out)
        idx = torch.tensor(sorted(k))
        rows = torch.cat([idx, idx + fout.in_features]) if fam.glu else idx  # GLU: value rows, then gate rows
        _set(
            layer,
            fam.ffn_in,
            _linear(torch, fin.weight.data[rows], None if fin.bias is None else fin.bias.data[rows]),
        )
        _set(
            layer,
            fam.ffn_out,
            _linear(torch, fout.weight.data[:, idx], None if fout.bias is None else fout.bias.data),
        )
    setattr(model.config, fam.ffn_size, width.pop())


def prune_heads(model: Any, fam: Family, drop: dict[int, Sequence[int]]) -> None:
    """Remove heads ``drop[layer]`` (indices among the heads the layer has now)."""
    if not fam.prunes_heads:
        raise ValueError(
            f"{fam.name} attention heads cannot be pruned (transformers has no prune_heads for it, nor a "
            "config field that rebuilds a pruned attention); prune --ffn and --layers"
        )
    n = getattr(model.config, fam.n_heads)
    already = {int(k): set(v) for k, v in (getattr(model.config, "pruned_heads", None) or {}).items()}
    original = {}  # prune_heads takes indices among the config's original heads
    for layer, heads in drop.items():
        alive = [h for h in range(n) if h not in already.get(layer, set())]
        original[layer] = [alive[h] for h in heads]
    model.prune_heads(original)


def cut(
    model: Any, *, heads: int | None, ffn: int | None, layers: int | None, calibration: Data
) -> dict[str, Any]:
    """Remove the least important heads and FFN neurons and the top layers, in place; the report."""
    torch = require("torch", "pruning")
    fam = family_of(model.config)
    before = shape(model, fam)
    report: dict[str, Any] = {"family": fam.name, "from": before}
    want_heads = heads is not None and heads < before["heads"]
    if want_heads and not fam.prunes_heads:
        prune_heads(model, fam, {})  # refuses, naming the family, before any work
    if layers is not None:
        drop_layers(model, fam, layers)
    if want_heads or (ffn is not None and ffn < before["ffn"]):
        head_scores, ffn_scores = importance(model, fam, calibration)
        report["head_scores"] = [[round(float(v), 5) for v in s] for s in head_scores]
        if ffn is not None and ffn < before["ffn"]:
            if ffn < 1:
                raise ValueError(f"--ffn must be at least 1, got {ffn}")
            prune_ffn(model, fam, [torch.argsort(s, descending=True)[:ffn].tolist() for s in ffn_scores])
        if want_heads:
            if heads < 1:
                raise ValueError(f"--heads must be at least 1, got {heads}")
            drop = {i: torch.argsort(s)[: len(s) - heads].tolist() for i, s in enumerate(head_scores)}
            prune_heads(model, fam, {i: d for i, d in drop.items() if d})
    report["to"] = shape(model, fam)
    return report


#: files of a checkpoint that are not weights or config: copied to the pruned one unchanged
_TOKENIZER_FILES = (
    "tokenizer",
    "special_tokens",
    "vocab",
    "merges",
    "added_tokens",
    "spiece",
    "sentencepiece",
)


def save(model: Any, src: Path, dst: Path, report: dict[str, Any]) -> None:
    """The pruned checkpoint: weights and config, the source's tokenizer files, ``pruning.json``, model card."""
    from edgeclf.export import model_card

    dst.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(dst), safe_serialization=True)
    for f in sorted(src.iterdir()):
        if f.is_file() and f.name.startswith(_TOKENIZER_FILES):
            shutil.copyfile(f, dst / f.name)
    (dst / "pruning.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    if (src / model_card.FILE).is_file():
        model_card.write_for_checkpoint(dst, model_card.pruned(model_card.read_for_checkpoint(src), report))


def prune_checkpoint(
    checkpoint: str | Path,
    out: str | Path,
    *,
    heads: int | None = None,
    ffn: int | None = None,
    layers: int | None = None,
    calibration: Data,
    train: Data | None = None,
    val: Data | None = None,
    recovery_steps: int = 300,
    batch_size: int = 32,
    lr: float = 5e-5,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Prune ``checkpoint`` to ``heads`` heads per layer, ``ffn`` neurons and ``layers`` layers; save to ``out``.

    Then recover for ``recovery_steps`` steps on ``train``, distilled from
    the unpruned model (:func:`edgeclf.quantize.recovery.recover`).
    """
    torch = require("torch", "pruning")
    transformers = require("transformers", "pruning")
    from .recovery import accuracy, recover

    torch.manual_seed(seed)
    src = Path(checkpoint)
    load = transformers.AutoModelForSequenceClassification.from_pretrained
    teacher = load(str(src)).eval()
    model = load(str(src))
    report = cut(model, heads=heads, ffn=ffn, layers=layers, calibration=calibration)
    if train is not None and recovery_steps > 0:
        report["recovery"] = recover(
            model, teacher, train, val, steps=recovery_steps, batch_size=batch_size, lr=lr,
            distill=0.5, temperature=2.0, seed=seed, log=log,
        )  # fmt: skip
    elif val is not None:
        report["val_accuracy"] = accuracy(model, val)
    save(model, src, Path(out), report)
    log(f"pruned {report['family']}: {report['from']} -> {report['to']}")
    return report


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
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """``edgeclf prune`` for the families here: ``<name>`` and ``<name>-int8`` variants in ``bundle``.

    ``bundle`` must be ``edgeclf export transformers``'s export of
    ``checkpoint`` (same tokenizer). The pruned checkpoint is exported by the
    same exporter (parity-checked against PyTorch), its fp32 and int8 files
    join the bundle. ``vocab_min_count`` then keeps only the embedding rows of
    pieces seen that often in ``train_texts`` (:mod:`.vocab_prune`); with no
    structural cut it prunes the vocabulary of the bundle's own fp32 and int8.
    """
    import tempfile

    from edgeclf.export import bundle_writer
    from edgeclf.export.transformers import export_transformers, load_tokenizer

    from .recovery import Split
    from .vocab_prune import prune_bundle

    root, src = Path(bundle), Path(checkpoint)
    manifest = bundle_writer.load(root)
    max_length = int(manifest["max_length"])
    reference, spec, _ = load_tokenizer(src, max_length)
    ours = manifest["tokenizer"]["files"].get("tokenizer")
    if ours is None or json.loads((root / ours["path"]).read_text(encoding="utf-8")) != spec:
        raise ValueError(f"{root} is not the export of {src}: its tokenizer differs (export it first)")
    pairs = {"fp32": name, "int8": f"{name}-int8"}
    if any(v is not None for v in (heads, ffn, layers)):
        data = Split.of(reference, train_texts, train_labels, max_length, seed, calibration)
        with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
            ckpt = Path(save_checkpoint) if save_checkpoint is not None else Path(tmp) / "pruned"
            report = prune_checkpoint(
                src, ckpt, heads=heads, ffn=ffn, layers=layers, calibration=data.calibration,
                train=data.train, val=data.val, recovery_steps=recovery_steps, seed=seed, log=log,
            )  # fmt: skip
            parity = [train_texts[i] for i in data.order[:24]]
            pruned = export_transformers(
                ckpt, Path(tmp) / "bundle", max_length=max_length, parity_texts=parity, fp16=False, log=log
            )
            for old, new in pairs.items():
                entry = pruned["variants"][old]
                dst = f"model.{new}.onnx"
                shutil.copyfile(Path(tmp) / "bundle" / entry["file"]["path"], root / dst)
                bundle_writer.add_variant(
                    manifest, root, new, dst, precision=entry.get("precision", ""),
                    description=f"pruned ({_describe(report, recovery_steps)}): {entry.get('description', old)}",
                )  # fmt: skip
        manifest["extra"].setdefault("pruning", {})[name] = report
        bundle_writer.save(root, manifest)
        sources, rename = list(pairs.values()), str
    else:
        if vocab_min_count is None:
            raise ValueError("nothing to prune: give --heads, --ffn, --layers or --vocab-min-count")
        sources, rename = list(pairs), pairs.__getitem__
    if vocab_min_count is not None:
        prune_bundle(root, train_texts, min_count=vocab_min_count, variants=sources, rename=rename, log=log)
    if eval_texts is not None and eval_labels is not None:
        bundle_writer.record_metrics(
            root, bundle_writer.load(root), eval_texts, eval_labels, dataset=eval_dataset,
            measured_by=lambda v: f"edgeclf evaluate {root} --variant {v} --data <test csv>",
            variants=["fp32", *pairs.values()], record=list(pairs.values()),
        )  # fmt: skip
    return bundle_writer.load(root)


def _describe(report: dict[str, Any], steps: int) -> str:
    to = report["to"]
    return f"{to['heads']} heads per layer, FFN {to['ffn']}, {to['layers']} layers; recovered {steps} steps"
