"""Vocabulary pruning inside a bundle: keep the embedding rows a user's own texts use.

A generic vocabulary meets a narrow domain: most of XLM-RoBERTa's 250,002
embedding rows (most of its file) are pieces a given user's texts never
produce. This works on any bundle, whatever its family, at the ONNX level:

- the bundle's own runtime tokenizer reads the texts, so the kept ids are
  exactly the ids the runtime will produce for them; special tokens (the
  template's, padding, unknown) are always kept;
- every kept id keeps its own row, in id order; an id map
  (``model.<name>.idmap.i32``, one little-endian int32 per tokenizer id),
  applied by the runtime before the session, sends each tokenizer id to its
  row and every dropped id to the unknown token's row. The tokenizer keeps
  its ids, so its files stay as they are;
- a graph that reads the ids for anything besides the lookup (RoBERTa and
  XLM-RoBERTa compute position ids from ``input_ids != pad``) keeps every id
  up to padding, so padding keeps its number and no other id takes it;
- the embedding table is the initializer of the ``Gather`` that reads
  ``input_ids``: float, or int8 with a per-tensor scale (int8 variants keep
  their quantization and are sliced the same way).

A text whose pieces were all kept gets exactly the unpruned variant's
output; a text with a dropped piece reads it as unknown.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgeclf.export import require

_UNK_NAMES = ("<unk>", "[UNK]", "<UNK>")


def unk_id(tokenizer: Any) -> int:
    """The unknown token's id in a runtime tokenizer (its model's, or an added ``<unk>`` / ``[UNK]``)."""
    for holder in (tokenizer, getattr(tokenizer, "model", None)):
        value = getattr(holder, "unk_id", None)
        if value is not None:
            return int(value)
    for added in (getattr(tokenizer, "_raw", None), getattr(tokenizer, "_normalized", None)):
        for name in _UNK_NAMES:
            if added is not None and name in added.tokens:
                return int(added.tokens[name]["id"])
    raise ValueError(
        f"the bundle's tokenizer ({type(tokenizer).__name__}) has no unknown token: dropped pieces would "
        "have no row to read, so its vocabulary cannot be pruned"
    )


def special_ids(tokenizer: Any) -> set[int]:
    """Ids a tokenizer adds on its own: its template's, padding and unknown."""
    ids = {int(tokenizer.pad_id), unk_id(tokenizer)}
    wrap = getattr(tokenizer, "wrap", None)
    if wrap is not None:
        ids.update(int(i) for i in wrap([]))
    return ids


def count_ids(tokenizer: Any, texts: Iterable[str]) -> Counter[int]:
    """How often each id occurs in the texts, as the runtime encodes them (truncated, with specials)."""
    counts: Counter[int] = Counter()
    for text in texts:
        counts.update(tokenizer.encode(text))
    return counts


def keep_rows(
    counts: Counter[int], min_count: int, specials: Iterable[int], rows: int, pad: int | None = None
) -> list[int]:
    """Sorted ids to keep: seen >= ``min_count`` times and the specials; with ``pad``, also every id up to
    it, so that padding keeps its number (for a graph that compares ids with it)."""
    if min_count < 1:
        raise ValueError(f"min_count must be at least 1, got {min_count}")
    keep = {i for i, c in counts.items() if c >= min_count} | set(specials)
    if pad is not None:
        keep |= set(range(pad + 1))
    if max(keep) >= rows:
        raise ValueError(f"token id {max(keep)} is outside the model's embedding ({rows} rows)")
    return sorted(keep)


def id_map(kept: Sequence[int], rows: int, unk: int) -> np.ndarray:
    """Tokenizer id -> row of the pruned table; dropped ids -> the unknown token's row."""
    out = np.full(rows, kept.index(unk), dtype="<i4")
    out[np.asarray(kept)] = np.arange(len(kept), dtype="<i4")
    return out


def _id_sources(graph: Any, ids_input: str) -> set[str]:
    """``ids_input`` and its copies through Cast / Identity."""
    sources = {ids_input}
    for node in graph.node:  # nodes are topologically sorted
        if node.op_type in ("Cast", "Identity") and node.input[0] in sources:
            sources.update(node.output)
    return sources


def embedding_initializers(model: Any, ids_input: str = "input_ids") -> list[str]:
    """Names of the initializers that ``Gather`` rows by ``ids_input`` (through Cast / Identity)."""
    graph = model.graph
    sources = _id_sources(graph, ids_input)
    if any(o.startswith("ngram_head/") for n in graph.node if sources & set(n.input) for o in n.output):
        raise ValueError("the graph pools token ids itself (a fused n-gram head): prune the vocabulary first")
    inits = {i.name: i for i in graph.initializer}
    found = [
        n.input[0]
        for n in graph.node
        if n.op_type == "Gather" and n.input[1] in sources and n.input[0] in inits
        and len(inits[n.input[0]].dims) == 2
    ]  # fmt: skip
    if not found:
        raise ValueError(f"no embedding lookup of {ids_input!r} found in the graph")
    for name in found:
        users = sum(name in n.input for n in graph.node)
        if users != 1:
            raise ValueError(
                f"embedding table {name!r} is read by {users} nodes; only a lookup can be sliced"
            )
    return found


def reads_ids(model: Any, ids_input: str = "input_ids") -> bool:
    """Whether the graph reads the ids' values beyond the embedding lookup and shapes (RoBERTa's position
    ids compare them with padding)."""
    sources = _id_sources(model.graph, ids_input)
    lookups = set(embedding_initializers(model, ids_input))
    for node in model.graph.node:
        if not sources.intersection(node.input) or node.op_type in ("Shape", "Cast", "Identity"):
            continue
        if not (node.op_type == "Gather" and node.input[0] in lookups):
            return True
    return False


def table_rows(model: Any) -> int:
    """Rows of the graph's embedding table(s) (the vocabulary the graph accepts)."""
    names = set(embedding_initializers(model))
    rows = {int(i.dims[0]) for i in model.graph.initializer if i.name in names}
    if len(rows) != 1:
        raise ValueError(f"embedding tables of different sizes {sorted(rows)}")
    return rows.pop()


def prune_graph(model: Any, kept: Sequence[int]) -> None:
    """Keep only rows ``kept`` of the graph's embedding table(s), in place."""
    from onnx import numpy_helper

    names = set(embedding_initializers(model))
    idx = np.asarray(kept)
    for init in model.graph.initializer:
        if init.name in names:
            table = numpy_helper.to_array(init)
            init.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(table[idx]), init.name))


def prune_bundle(
    bundle: str | Path,
    texts: Sequence[str],
    *,
    min_count: int = 1,
    variants: Sequence[str] | None = None,
    rename: Callable[[str], str] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Add a vocabulary-pruned twin of each variant (default: every variant without an id map).

    ``rename`` names the twin (default: ``vocab`` for fp32, ``vocab-<variant>``
    otherwise); a twin may replace its source (``rename=str``). Returns the
    report, also stored in the manifest's ``extra.vocab_pruning``.
    """
    import edgeclf
    from edgeclf.export import bundle_writer

    onnx = require("onnx", "vocabulary pruning")
    root = Path(bundle)
    manifest = bundle_writer.load(root)
    names = list(variants) if variants else [v for v, d in manifest["variants"].items() if "id_map" not in d]
    for v in names:
        if v not in manifest["variants"]:
            raise ValueError(f"{root}: no variant {v!r} (has {', '.join(manifest['variants'])})")
        if "id_map" in manifest["variants"][v]:
            raise ValueError(f"{root}: variant {v!r} is already vocabulary-pruned")
    rename = rename or (lambda v: "vocab" if v == "fp32" else f"vocab-{v}")
    with edgeclf.load(root, variant=names[0]) as clf:
        tok = clf.tokenizer
        counts = count_ids(tok, texts)
        specials, unk, pad = special_ids(tok), unk_id(tok), int(tok.pad_id)
    report: dict[str, Any] = {"texts": len(texts), "min_count": min_count, "variants": {}}
    map_rel, map_rows = f"model.{rename(names[0])}.idmap.i32", None
    for v in names:
        entry = manifest["variants"][v]
        src, new = root / entry["file"]["path"], rename(v)
        model = onnx.load(str(src))
        rows = table_rows(model)
        if map_rows not in (None, rows):
            raise ValueError(f"{root}: variants have embeddings of {map_rows} and {rows} rows")
        kept = keep_rows(counts, min_count, specials, rows, pad if reads_ids(model) else None)
        prune_graph(model, kept)
        before = src.stat().st_size
        dst = root / f"model.{new}.onnx"
        tmp = dst.with_name(f".{dst.name}.tmp")
        onnx.save(model, str(tmp))
        del model
        tmp.replace(dst)
        if map_rows is None:
            map_rows = rows
            (root / map_rel).write_bytes(id_map(kept, rows, unk).tobytes())
        after = dst.stat().st_size
        report["variants"][new] = {"from": v, "rows": [rows, len(kept)], "bytes": [before, after]}
        log(f"{new}: {rows:,} -> {len(kept):,} embedding rows, {before:,} -> {after:,} bytes")
        desc = (
            f"{entry.get('description') or v}; vocabulary: the {len(kept):,} of {rows:,} pieces its texts use"
        )
        bundle_writer.add_variant(manifest, root, new, dst.name, description=desc, id_map=map_rel)
        for key, value in entry.items():  # precision, temperature...: the twin computes the same function
            if key not in ("file", "description", "metrics", "id_map"):
                manifest["variants"][new][key] = value
    manifest.setdefault("extra", {})["vocab_pruning"] = report
    bundle_writer.save(root, manifest)
    return report
