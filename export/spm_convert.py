"""SentencePiece model (``spiece.model``) -> the runtime's ``sentencepiece-unigram`` files.

The runtime (``edgeclf.tokenizers.sentencepiece``) must not import
``sentencepiece`` or protobuf, so the model is flattened here into:

- ``pieces.json``: pieces, float32 scores (base64 of the little-endian
  array: exact, and ~10 ms faster to load than 16,000 JSON floats), types, unk
  id, the proper prefixes of pieces (where Viterbi stops extending; cheaper
  to store than to derive at every cold start) and the normalizer settings,
  plus the *one-character* rules of the precompiled charsmap (~5,000 for
  nmt_nfkc) and the set of characters that can be the second character of a
  longer rule (~140).
- ``charsmap.bin``: the precompiled charsmap blob itself (Darts double array
  + replacement strings, 240 KB for nmt_nfkc), kept byte for byte because its
  ~220,000 multi-character rules (mostly Hangul jamo composition) are
  cheapest as the trie they already are: the runtime reads it with one
  ``struct.unpack`` and walks it only where a "second character" follows.
  Decoding all rules into JSON instead gives a 225k-entry table that takes
  ~6 s to load.

The ALBERT-level settings (lowercasing, accents, whitespace folding, added
tokens and their lstrip/rstrip flags) go into the manifest's tokenizer config.
:func:`tokenizer_files_for_checkpoint` reads them from the checkpoint's own
``AlbertTokenizer`` and then checks the written files against it.
"""

from __future__ import annotations

import base64
import json
import struct
import sys
from array import array
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from . import require

KIND = "sentencepiece-unigram"
PIECES_FILE = "pieces.json"
CHARSMAP_FILE = "charsmap.bin"

# Model types in sentencepiece's TrainerSpec
_UNIGRAM = 1
_NORMAL, _UNKNOWN, _USER_DEFINED, _BYTE = 1, 2, 4, 6

#: Texts used to check a conversion against the reference tokenizer: every
#: branch of the shim (special tokens, quotes, accents, digit-comma, charsmap).
PROBE_TEXTS = [
    "",
    "   ",
    "This movie was GREAT, 10/10!",
    "  leading and trailing  \t\n",
    "It's ``quoted'' and \"quoted\" -- 1,000,000 or 9,9 and 12,",
    "Café naïve résumé Ångström façade",
    "ΟΔΟΣ Σίσυφος 𝚺",
    "日本語のテキスト 中文 한국어 텍스트",
    "emoji 😀😀 and ☃ and ① ² ½",
    "[MASK] a [MASK]b [CLS]c[SEP] <unk> <UNK> <pad> [mask]",
    "full-width ＡＢＣ１２３ and NBSP\u00a0here\u3000there",
    "control\x00\x01\x7f\u200b\ufeff chars ▁ and ▁▁",
    "tabs\tnew\nlines\r\nand\x0bvertical",
]


def load_model_proto(spiece_model_path: str | Path) -> Any:
    """The parsed ``ModelProto`` (sentencepiece's bundled protobuf module)."""
    require("sentencepiece", "converting a SentencePiece model")
    from sentencepiece import sentencepiece_model_pb2 as pb

    model = pb.ModelProto()
    model.ParseFromString(Path(spiece_model_path).read_bytes())
    return model


def charsmap_summary(blob: bytes, max_chars: int = 2) -> tuple[dict[str, str], set[str]]:
    """What the runtime needs from a precompiled charsmap, without decoding all of it.

    Returns the rules whose source is one character (source -> replacement)
    and the characters found in second position of any longer rule. Walks the
    Darts-clone double array depth-first (the child with byte ``c`` of base
    ``p`` sits at ``p ^ c``; a unit with bit 8 set has a value unit at its own
    base), at most ``max_chars`` characters deep: every path in the trie is
    the prefix of some rule, so seeing a second character suffices.
    """
    if not blob:
        return {}, set()
    (size,) = struct.unpack_from("<I", blob, 0)
    units = struct.unpack_from(f"<{size // 4}I", blob, 4)
    pool = blob[4 + size :]

    def offset(u: int) -> int:
        return (u >> 10) << ((u & 0x200) >> 6)

    # Keys are UTF-8 text: only lead bytes at a character boundary, only
    # continuation bytes inside a character (4x fewer probes than 1..255).
    leads = [c for c in range(1, 0xF5) if not 0x80 <= c <= 0xC1]
    conts = list(range(0x80, 0xC0))
    n = len(units)
    single: dict[str, str] = {}
    second: set[str] = set()
    # (base, key so far, continuation bytes still due, characters completed)
    stack = [(offset(units[0]), b"", 0, 0)]
    while stack:
        base, key, due, nchars = stack.pop()
        for c in conts if due else leads:
            child = base ^ c
            if child >= n or (units[child] & 0x800000FF) != c:
                continue
            u = units[child]
            nxt = child ^ offset(u)
            k = key + bytes((c,))
            left = due - 1 if due else (0 if c < 0x80 else 1 if c < 0xE0 else 2 if c < 0xF0 else 3)
            done = nchars + (left == 0)
            if left == 0 and done == 1 and (u >> 8) & 1:
                v = units[nxt] & 0x7FFFFFFF
                single[k.decode("utf-8")] = pool[v : pool.index(b"\0", v)].decode("utf-8")
            if left == 0 and done == 2:
                second.add(k.decode("utf-8")[1])
            if done < max_chars:
                stack.append((nxt, k, left, done))
    return single, second


def convert(
    spiece_model_path: str | Path,
    out_dir: str | Path,
    *,
    do_lower_case: bool = True,
    remove_space: bool = True,
    keep_accents: bool = False,
    added_tokens: Sequence[Mapping[str, Any]] | None = None,
    lowercase_protect: Sequence[str] | None = None,
) -> tuple[dict[str, str], dict[str, Any]]:
    """Write ``pieces.json`` (+ ``charsmap.bin``) into ``out_dir``.

    Returns ``(files, config)`` for the manifest's ``tokenizer`` entry
    (``files`` maps names to paths relative to ``out_dir``). The defaults are
    ``AlbertTokenizer``'s; ``added_tokens`` defaults to its five special
    tokens with the ids found in the model (``[MASK]`` with ``lstrip``).
    """
    if sys.byteorder != "little":  # array("f") is native-endian
        raise RuntimeError("convert on a little-endian machine")
    model = load_model_proto(spiece_model_path)
    trainer, norm = model.trainer_spec, model.normalizer_spec
    if trainer.model_type != _UNIGRAM:
        raise ValueError(f"{spiece_model_path}: not a unigram model (model_type={trainer.model_type})")
    if trainer.byte_fallback or any(p.type in (_USER_DEFINED, _BYTE) for p in model.pieces):
        raise ValueError(f"{spiece_model_path}: byte fallback / user-defined symbols are not supported")
    if not norm.escape_whitespaces or trainer.treat_whitespace_as_suffix:
        raise ValueError(f"{spiece_model_path}: needs escape_whitespaces and a whitespace prefix")

    pieces = [p.piece for p in model.pieces]
    index = {p: i for i, p in reversed(list(enumerate(pieces)))}
    unk = [i for i, p in enumerate(model.pieces) if p.type == _UNKNOWN]
    if len(unk) != 1:
        raise ValueError(f"{spiece_model_path}: expected exactly one unknown piece")

    normal = [p.piece for p in model.pieces if p.type == _NORMAL]
    prefixes = {p[:k] for p in normal for k in range(1, len(p))}
    blob = bytes(norm.precompiled_charsmap)
    single, seconds = charsmap_summary(blob)
    second = sorted(seconds)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc = {
        "format": "edgeclf-sentencepiece-unigram/1",
        "source": Path(spiece_model_path).name,
        "pieces": pieces,
        # float32 little-endian, base64: exact, and 10x faster to load than JSON floats
        "scores_f32le": base64.b64encode(array("f", [p.score for p in model.pieces]).tobytes()).decode(),
        "types": [int(p.type) for p in model.pieces],
        "unk_id": unk[0],
        # proper prefixes of normal pieces that are not pieces: where Viterbi
        # stops extending (computing them at load costs ~30 ms of cold start)
        "prefixes": sorted(prefixes - set(normal)),
        "normalizer": {
            "name": norm.name,
            "add_dummy_prefix": bool(norm.add_dummy_prefix),
            "remove_extra_whitespaces": bool(norm.remove_extra_whitespaces),
            "escape_whitespaces": bool(norm.escape_whitespaces),
            "treat_whitespace_as_suffix": bool(trainer.treat_whitespace_as_suffix),
            "single": single,
            "multi_second": "".join(second),
        },
    }
    (out / PIECES_FILE).write_text(
        json.dumps(doc, ensure_ascii=False, separators=(",", ":")), encoding="utf-8"
    )
    files = {"pieces": PIECES_FILE}
    if second:
        (out / CHARSMAP_FILE).write_bytes(blob)
        files["charsmap"] = CHARSMAP_FILE

    if added_tokens is None:
        defaults = [("<pad>", False), ("<unk>", False), ("[CLS]", False), ("[SEP]", False), ("[MASK]", True)]
        added_tokens = [
            {
                "content": c,
                "id": index[c],
                "lstrip": ls,
                "rstrip": False,
                "single_word": False,
                "normalized": False,
                "special": True,
            }
            for c, ls in defaults
            if c in index
        ]
    if lowercase_protect is None:
        order = ["[CLS]", "[SEP]", "<unk>", "<pad>", "[MASK]"]  # AlbertTokenizer.all_special_tokens
        lowercase_protect = [c for c in order if any(t["content"] == c for t in added_tokens)]
    ids = {t["content"]: int(t["id"]) for t in added_tokens}
    config = {
        "cls_id": ids.get("[CLS]", index.get("[CLS]", 2)),
        "sep_id": ids.get("[SEP]", index.get("[SEP]", 3)),
        "pad_id": ids.get("<pad>", index.get("<pad>", 0)),
        "unk_id": unk[0],
        "do_lower_case": bool(do_lower_case),
        "remove_space": bool(remove_space),
        "keep_accents": bool(keep_accents),
        "added_tokens": [dict(t) for t in added_tokens],
        "lowercase_protect": list(lowercase_protect),
        "reference": "transformers.AlbertTokenizer (slow) encode(text, truncation=True, max_length=max_length)",
    }
    return files, config


def reference_settings(tok: Any) -> dict[str, Any]:
    """convert() keyword arguments that reproduce a loaded ``AlbertTokenizer``."""
    added = [
        {
            "content": t.content,
            "id": int(i),
            "lstrip": bool(t.lstrip),
            "rstrip": bool(t.rstrip),
            "single_word": bool(t.single_word),
            "normalized": bool(t.normalized),
            "special": bool(t.special),
        }
        for i, t in sorted(tok.added_tokens_decoder.items())
    ]
    protect = list(tok.all_special_tokens) + [
        t.content for t in tok.added_tokens_decoder.values() if not t.special and t.normalized
    ]
    return {
        "do_lower_case": bool(tok.do_lower_case),
        "remove_space": bool(tok.remove_space),
        "keep_accents": bool(tok.keep_accents),
        "added_tokens": added,
        "lowercase_protect": protect,
    }


def check_against_reference(
    out_dir: str | Path,
    files: Mapping[str, str],
    config: Mapping[str, Any],
    tok: Any,
    texts: Sequence[str] = PROBE_TEXTS,
    max_length: int = 512,
) -> None:
    """Raise if the runtime tokenizer built from the written files disagrees with ``tok``.

    Checked at ``max_length`` and at 8, where the probe texts are cut, so the
    truncation side is compared too.
    """
    from edgeclf.tokenizers import build

    data = {k: (Path(out_dir) / v).read_bytes() for k, v in files.items()}
    for length in (max_length, 8):
        shim = build(KIND, data, config, length)
        for text in texts:
            want = tok.encode(text, truncation=True, max_length=length)
            got = shim.encode(text)
            if got != want:
                raise AssertionError(
                    f"tokenizer conversion mismatch on {text!r} at {length}: {got} != {want}"
                )


def tokenizer_files_for_checkpoint(
    checkpoint_dir: str | Path, out_dir: str | Path
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """``(kind, files, config)`` for an ALBERT checkpoint's ``spiece.model``.

    Settings come from the checkpoint's own ``AlbertTokenizer`` (its
    tokenizer_config.json: lowercasing, accents, added tokens and their
    strip flags), so a user's fine-tuned checkpoint converts as it tokenizes.
    The result is checked against that tokenizer on :data:`PROBE_TEXTS`.
    """
    transformers = require("transformers", "converting an ALBERT tokenizer")
    ckpt = Path(checkpoint_dir)
    spiece = ckpt / "spiece.model"
    if not spiece.is_file():
        raise FileNotFoundError(f"{ckpt}: no spiece.model")
    tok = transformers.AlbertTokenizer.from_pretrained(str(ckpt), local_files_only=True)
    files, config = convert(spiece, out_dir, **reference_settings(tok))
    if tok.truncation_side != "right":  # transformers' default; "left" keeps the end of long texts
        config["truncation_side"] = tok.truncation_side
    check_against_reference(out_dir, files, config, tok)
    return KIND, files, config
