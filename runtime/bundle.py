"""Model bundles: a directory with ``manifest.json`` and the files it names.

A bundle is the only thing the runtime trusts, and only after checking it:
the manifest is parsed strictly, every path it names must stay inside the
bundle directory (no ``..``, no absolute paths, no symlinks that leave it),
and every file is verified against its recorded size and sha256 *before*
onnxruntime or a tokenizer parses a byte of it. Nothing is unpickled and
nothing is fetched: embedded bundles ship inside the wheel and are found with
``importlib.resources``.

The manifest format is versioned (``format_version``); readers refuse a major
version they do not know instead of guessing.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

FORMAT = "edgeclf-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_MAX_MANIFEST_BYTES = 1 << 20


class BundleError(ValueError):
    """A bundle is missing, malformed, tampered with or unsafe."""


@dataclass(frozen=True)
class FileRef:
    """A file inside the bundle with the digest it must have."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str
    shape: tuple[str | int, ...]


@dataclass(frozen=True)
class Variant:
    """One ONNX file of the model (fp32, int8, pruned ...) and what it scored."""

    name: str
    file: FileRef
    metrics: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    #: vocabulary-pruned variants: little-endian int32 array, tokenizer id -> model row
    id_map: FileRef | None = None
    #: weight precision: "fp32", "fp16", "int8" ("" when the manifest does not say)
    precision: str = ""
    #: softmax temperature fitted on validation data (calibration); logits are divided by it
    temperature: float = 1.0


@dataclass(frozen=True)
class TokenizerSpec:
    kind: str
    files: dict[str, FileRef]
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Head:
    """How logits become labels: ``single_label`` (softmax, the most probable label) or
    ``multi_label`` (a sigmoid per label; every label whose probability reaches its threshold)."""

    kind: str = "single_label"
    thresholds: tuple[float, ...] | None = None  # multi_label: one per label, in label order


@dataclass(frozen=True)
class LongTexts:
    """Texts longer than the window: ``truncate`` (keep the tokenizer's side) or ``windows``
    (overlapping windows ``stride`` pieces apart, at most ``max_windows``, outputs pooled per
    text; None: the classifier's defaults). docs/long-texts.md."""

    mode: str = "truncate"
    stride: int | None = None
    max_windows: int | None = None


@dataclass(frozen=True)
class Manifest:
    name: str
    task: str
    labels: tuple[str, ...]
    tokenizer: TokenizerSpec
    max_length: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    output_kind: str  # "sigmoid" (one probability of labels[1]) or "logits"
    variants: dict[str, Variant]
    default_variant: str
    padding: str = "longest"  # "longest" or "max_length"
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    #: training data and vocabulary sources with their terms (``training_data``: a list)
    model_card: dict[str, Any] = field(default_factory=dict)
    #: provider ("cpu", "cuda" ...) -> the variant to run there, in order of preference.
    #: Written by the exporter from measurements; ``providers="auto"`` only picks from it.
    provider_variants: dict[str, str] = field(default_factory=dict)
    head: Head = field(default_factory=Head)
    long_texts: LongTexts = field(default_factory=LongTexts)

    def summary(self) -> dict[str, Any]:
        """What ``edgeclf models --json`` and ``GET /models`` show for this bundle."""
        return {
            "name": self.name,
            "task": self.task,
            "labels": list(self.labels),
            "default_variant": self.default_variant,
            "variants": {v.name: {"size_bytes": v.file.size, **v.metrics} for v in self.variants.values()},
            "description": self.description,
            "head": {"kind": self.head.kind}
            | ({"thresholds": list(self.head.thresholds)} if self.head.thresholds else {}),
        }

    def variant(self, name: str | None) -> Variant:
        key = name or self.default_variant
        try:
            return self.variants[key]
        except KeyError:
            raise BundleError(
                f"bundle {self.name!r} has no variant {key!r}; available: {', '.join(sorted(self.variants))}"
            ) from None


@dataclass(frozen=True)
class Bundle:
    """A verified bundle on disk."""

    root: Path
    manifest: Manifest

    def path(self, ref: FileRef) -> Path:
        return self.root / ref.path

    def read_verified(self, ref: FileRef) -> bytes:
        """Read a file and check it against the manifest in one pass.

        Returning the verified bytes (rather than a path) closes the gap in
        which a file could be swapped between the check and the parse.
        """
        path = _safe_path(self.root, ref.path)
        try:
            st = path.stat()
            if not stat.S_ISREG(st.st_mode):
                raise BundleError(f"{self.manifest.name}: {ref.path!r} is not a regular file")
            if st.st_size != ref.size:  # checked before reading: a huge or growing file is never loaded
                raise BundleError(
                    f"{self.manifest.name}: {ref.path!r} is {st.st_size} bytes, manifest says {ref.size} "
                    "(truncated or replaced file)"
                )
            data = path.read_bytes()
        except FileNotFoundError:
            raise BundleError(f"{self.manifest.name}: missing file {ref.path!r} in {self.root}") from None
        except OSError as exc:
            raise BundleError(f"{self.manifest.name}: cannot read {ref.path!r}: {exc}") from None
        if len(data) != ref.size:
            raise BundleError(
                f"{self.manifest.name}: {ref.path!r} is {len(data)} bytes, manifest says {ref.size} "
                "(truncated or replaced file)"
            )
        digest = hashlib.sha256(data).hexdigest()
        if digest != ref.sha256:
            raise BundleError(
                f"{self.manifest.name}: checksum mismatch for {ref.path!r} "
                f"(sha256 {digest[:16]}..., manifest {ref.sha256[:16]}...): the file was altered"
            )
        return data


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_ref(root: Path, relpath: str) -> FileRef:
    """Describe a bundle file for a manifest (used by the writers)."""
    path = _safe_path(root, relpath)
    return FileRef(path=relpath, size=path.stat().st_size, sha256=sha256_file(path))


# ---------------------------------------------------------------- locating


def embedded_root() -> Path:
    return Path(str(resources.files("edgeclf") / "models"))


def embedded_names() -> list[str]:
    root = embedded_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / MANIFEST).is_file())


def resolve(name_or_path: str | os.PathLike[str]) -> Path:
    """An embedded model name, or a bundle directory / its manifest.json."""
    text = os.fspath(name_or_path)
    candidate = Path(text)
    if candidate.name == MANIFEST and candidate.is_file():
        return candidate.parent
    if candidate.is_dir():
        return candidate
    if "/" not in text and os.sep not in text:
        root = embedded_root() / text
        if (root / MANIFEST).is_file():
            return root
        names = ", ".join(embedded_names()) or "none"
        raise BundleError(f"no embedded model named {text!r} and no such directory; embedded: {names}")
    raise BundleError(f"bundle directory not found: {text}")


def open_bundle(name_or_path: str | os.PathLike[str]) -> Bundle:
    root = resolve(name_or_path)
    return Bundle(root=root, manifest=read_manifest(root))


# ---------------------------------------------------------------- parsing


def read_manifest(root: Path) -> Manifest:
    path = root / MANIFEST
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BundleError(f"not a bundle: {path} does not exist") from None
    if len(raw) > _MAX_MANIFEST_BYTES:
        raise BundleError(f"{path}: manifest larger than {_MAX_MANIFEST_BYTES} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: malformed manifest: {exc}") from None
    except RecursionError:
        raise BundleError(f"{path}: malformed manifest: nested too deeply") from None
    try:
        return parse_manifest(data, root)
    except BundleError as exc:
        raise BundleError(f"{path}: {exc}") from None


def parse_manifest(data: Any, root: Path) -> Manifest:
    obj = _Obj(data, "manifest")
    if obj.str("format") != FORMAT:
        raise BundleError(f"format is not {FORMAT!r}")
    version = obj.int("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(f"format_version {version} is not supported (this edgeclf reads {FORMAT_VERSION})")
    name = obj.str("name")
    labels = tuple(obj.list_of_str("labels"))
    if len(labels) < 2:
        raise BundleError("labels: need at least two labels")

    tok = obj.obj("tokenizer")
    tokenizer = TokenizerSpec(
        kind=tok.str("kind"),
        files={k: _file_ref(v, f"tokenizer.files.{k}", root) for k, v in tok.dict("files").items()},
        config=tok.dict("config", default={}),
    )
    variants = {}
    for vname, vdata in obj.dict("variants").items():
        v = _Obj(vdata, f"variants.{vname}")
        variants[vname] = Variant(
            name=vname,
            file=_file_ref(v.raw("file"), f"variants.{vname}.file", root),
            metrics=v.dict("metrics", default={}),
            description=v.str("description", default=""),
            id_map=_file_ref(v.raw("id_map"), f"variants.{vname}.id_map", root)
            if "id_map" in vdata
            else None,
            precision=v.str("precision", default=""),
            temperature=_temperature(vdata.get("temperature", 1.0), f"variants.{vname}.temperature"),
        )
    if not variants:
        raise BundleError("variants: at least one variant is required")
    default_variant = obj.str("default_variant")
    if default_variant not in variants:
        raise BundleError(f"default_variant {default_variant!r} is not among the variants")
    provider_variants = {str(k).lower(): v for k, v in obj.dict("provider_variants", default={}).items()}
    for prov, vname in provider_variants.items():
        if not isinstance(vname, str) or vname not in variants:
            raise BundleError(f"provider_variants.{prov}: {vname!r} is not among the variants")
    output_kind = obj.str("output_kind")
    if output_kind not in ("sigmoid", "logits"):
        raise BundleError(f"output_kind must be 'sigmoid' or 'logits', not {output_kind!r}")
    if output_kind == "sigmoid" and len(labels) != 2:
        raise BundleError("output_kind 'sigmoid' needs exactly two labels")
    padding = obj.str("padding", default="longest")
    if padding not in ("longest", "max_length"):
        raise BundleError(f"padding must be 'longest' or 'max_length', not {padding!r}")
    max_length = obj.int("max_length")
    if not 1 <= max_length <= 1 << 16:
        raise BundleError(f"max_length {max_length} out of range")
    return Manifest(
        name=name,
        task=obj.str("task"),
        labels=labels,
        tokenizer=tokenizer,
        max_length=max_length,
        inputs=tuple(_tensor(t, "inputs") for t in obj.list("inputs")),
        outputs=tuple(_tensor(t, "outputs") for t in obj.list("outputs")),
        output_kind=output_kind,
        variants=variants,
        default_variant=default_variant,
        padding=padding,
        description=obj.str("description", default=""),
        extra=obj.dict("extra", default={}),
        model_card=_model_card(obj.dict("model_card", default={})),
        provider_variants=provider_variants,
        head=_head(obj.raw("head", default=None), labels, output_kind),
        long_texts=_long_texts(obj.raw("long_texts", default=None)),
    )


def _long_texts(data: Any) -> LongTexts:
    if data is None:
        return LongTexts()
    obj = _Obj(data, "long_texts")
    mode = obj.str("mode", default="truncate")
    if mode not in ("truncate", "windows"):
        raise BundleError(f"long_texts.mode must be 'truncate' or 'windows', not {mode!r}")
    sizes = {k: obj.int(k) if k in data else None for k in ("stride", "max_windows")}
    for key, value in sizes.items():
        if value is not None and not 1 <= value <= 1 << 16:
            raise BundleError(f"long_texts.{key} {value} out of range (1 to 65536)")
    return LongTexts(mode, sizes["stride"], sizes["max_windows"])


def _head(data: Any, labels: tuple[str, ...], output_kind: str) -> Head:
    if data is None:
        return Head()
    obj = _Obj(data, "head")
    kind = obj.str("kind")
    if kind == "single_label":
        return Head()
    if kind != "multi_label":
        raise BundleError(f"head.kind must be 'single_label' or 'multi_label', not {kind!r}")
    if output_kind != "logits":
        raise BundleError("head.kind 'multi_label' needs output_kind 'logits' (one logit per label)")
    thresholds = obj.list("thresholds")
    if len(thresholds) != len(labels) or not all(
        isinstance(t, (int, float)) and not isinstance(t, bool) and 0 < t < 1 for t in thresholds
    ):
        raise BundleError(f"head.thresholds: expected {len(labels)} numbers between 0 and 1, one per label")
    return Head("multi_label", tuple(float(t) for t in thresholds))


def _temperature(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.01 <= value <= 100:
        raise BundleError(f"{where}: expected a number between 0.01 and 100")
    return float(value)


def _model_card(card: dict[str, Any]) -> dict[str, Any]:
    if "training_data" in card and not isinstance(card["training_data"], list):
        raise BundleError("model_card.training_data: expected a list")
    return card


def _tensor(data: Any, where: str) -> TensorSpec:
    t = _Obj(data, where)
    shape = t.list("shape")
    if not all(isinstance(d, (str, int)) and not isinstance(d, bool) for d in shape):
        raise BundleError(f"{where}: shape entries must be names or integers")
    dtype = t.str("dtype")
    if dtype not in ("int32", "int64", "float32"):
        raise BundleError(f"{where}: unsupported dtype {dtype!r}")
    return TensorSpec(name=t.str("name"), dtype=dtype, shape=tuple(shape))


def _file_ref(data: Any, where: str, root: Path) -> FileRef:
    f = _Obj(data, where)
    relpath = f.str("path")
    _safe_path(root, relpath)  # refuse unsafe paths at parse time, before any read
    sha = f.str("sha256").lower()
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise BundleError(f"{where}: sha256 must be 64 hex digits")
    size = f.int("size")
    if size < 0:
        raise BundleError(f"{where}: negative size")
    return FileRef(path=relpath, size=size, sha256=sha)


def _safe_path(root: Path, relpath: str) -> Path:
    """Resolve ``relpath`` under ``root`` or refuse it.

    Checked lexically first (absolute, drive letters, ``..``, backslashes,
    NUL) and then after resolving symlinks, so a link that points out of the
    bundle is refused as well.
    """
    if not relpath or "\x00" in relpath or "\\" in relpath:
        raise BundleError(f"unsafe path {relpath!r} in manifest")
    parts = relpath.split("/")
    if relpath.startswith("/") or ":" in parts[0] or any(p in ("", ".", "..") for p in parts):
        raise BundleError(f"unsafe path {relpath!r} in manifest: must be relative, inside the bundle")
    base = root.resolve()
    full = (root / relpath).resolve()
    if full != base and base not in full.parents:
        raise BundleError(f"unsafe path {relpath!r}: resolves outside the bundle ({full})")
    return full


class _Obj:
    """Strict accessors for one JSON object, with the field path in errors."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise BundleError(f"{where}: expected an object")
        self.data = data
        self.where = where

    _MISSING = object()

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        if key in self.data:
            return self.data[key]
        if default is _Obj._MISSING:
            raise BundleError(f"{self.where}: missing field {key!r}")
        return default

    def str(self, key: str, default: Any = _MISSING) -> str:
        value = self.raw(key, default)
        if not isinstance(value, str):
            raise BundleError(f"{self.where}.{key}: expected a string")
        return value

    def int(self, key: str, default: Any = _MISSING) -> int:
        value = self.raw(key, default)
        if not isinstance(value, int) or isinstance(value, bool):
            raise BundleError(f"{self.where}.{key}: expected an integer")
        return value

    def list(self, key: str) -> list[Any]:
        value = self.raw(key)
        if not isinstance(value, list):
            raise BundleError(f"{self.where}.{key}: expected a list")
        return value

    def list_of_str(self, key: str) -> list[str]:
        value = self.list(key)
        if not all(isinstance(v, str) for v in value):
            raise BundleError(f"{self.where}.{key}: expected a list of strings")
        return value

    def dict(self, key: str, default: Any = _MISSING) -> dict[str, Any]:
        value = self.raw(key, default)
        if not isinstance(value, dict):
            raise BundleError(f"{self.where}.{key}: expected an object")
        return value

    def obj(self, key: str) -> _Obj:
        return _Obj(self.raw(key), f"{self.where}.{key}")
