"""Tiny Hugging Face checkpoints of every family ``edgeclf export transformers`` supports, built offline.

No checkpoint can be downloaded here, so each family's checkpoint is made the
way a user's would be saved: a tokenizer trained with the ``tokenizers`` /
``sentencepiece`` trainers on real texts (IMDB reviews, Weibo posts), loaded
into the family's fast tokenizer class (which converts it as the hub's own
files were converted) and saved with ``save_pretrained``, plus a randomly
initialised ``*ForSequenceClassification`` of a tiny shape. Used by
tests/test_byo_*.py (a session fixture) and benchmarks/byo_*.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("USE_TF", "0")

#: family -> (tokenizer kind, model_type); the keys are what the tests parametrize over
FAMILIES: dict[str, tuple[str, str]] = {
    "bert-uncased": ("wordpiece", "bert"),
    "bert-cased": ("wordpiece", "bert"),
    "distilbert": ("wordpiece", "distilbert"),
    "electra": ("wordpiece", "electra"),
    "roberta": ("bpe", "roberta"),
    "modernbert": ("bpe", "modernbert"),
    "xlm-roberta": ("unigram", "xlm-roberta"),
    "deberta-v2": ("unigram", "deberta-v2"),
    "albert": ("unigram", "albert"),
}

SHAPE = {"hidden": 32, "layers": 2, "heads": 2, "ffn": 64, "positions": 128}


def _tokenizer_dir(kind: str, family: str, texts: Sequence[str], work: Path, vocab: int) -> Path:
    """Save the family's fast tokenizer (trained vocabularies are shared where families share one)."""
    import transformers

    out = work / f"tok-{family}"
    if (out / "tokenizer.json").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    if kind == "wordpiece":
        lower = family != "bert-cased"
        raw = _trained("wordpiece-lower" if lower else "wordpiece-cased", texts, work, vocab)
        cls = {
            "distilbert": transformers.DistilBertTokenizerFast,
            "electra": transformers.ElectraTokenizerFast,
        }.get(family, transformers.BertTokenizerFast)
        tok = cls(vocab_file=str(raw / "vocab.txt"), do_lower_case=lower)
    elif kind == "bpe":
        raw = _trained("bpe", texts, work, vocab)
        if family == "roberta":
            tok = transformers.RobertaTokenizerFast(
                vocab_file=str(raw / "vocab.json"), merges_file=str(raw / "merges.txt")
            )
        else:
            tok = _modernbert_tokenizer(raw)
    else:
        raw = _trained("spm-xlmr" if family == "xlm-roberta" else "spm-albert", texts, work, vocab)
        model = str(raw / "spm.model")
        if family == "xlm-roberta":
            tok = transformers.XLMRobertaTokenizerFast(vocab_file=model)
        elif family == "deberta-v2":
            tok = transformers.DebertaV2TokenizerFast(vocab_file=model, do_lower_case=False)
        else:
            tok = transformers.AlbertTokenizerFast(vocab_file=model)
    tok.save_pretrained(str(out))
    return out


#: special tokens of the shared byte-level BPE vocabulary (RoBERTa's and ModernBERT's)
BPE_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>", "[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]


def _trained(name: str, texts: Sequence[str], work: Path, vocab: int) -> Path:
    """A trainer's output files (vocab.txt, vocab.json + merges.txt, spm.model), trained once."""
    out = work / f"raw-{name}"
    if (out / "done").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    if name.startswith("wordpiece"):
        from tokenizers import BertWordPieceTokenizer

        lower = name.endswith("lower")
        trainer = BertWordPieceTokenizer(lowercase=lower, strip_accents=None if lower else False)
        trainer.train_from_iterator(texts, vocab_size=vocab, min_frequency=2)
        trainer.save_model(str(out))
    elif name == "bpe":
        from tokenizers import ByteLevelBPETokenizer

        bpe = ByteLevelBPETokenizer()
        bpe.train_from_iterator(texts, vocab_size=vocab, min_frequency=2, special_tokens=BPE_SPECIALS)
        bpe.save_model(str(out))
    else:
        _train_spm(name, texts, out, vocab)
    (out / "done").write_text("", encoding="utf-8")
    return out


def _modernbert_tokenizer(raw: Path) -> Any:
    """ModernBERT's layout: NFC, ByteLevel BPE, ``[CLS] $A [SEP]`` template."""
    import transformers
    from tokenizers import ByteLevelBPETokenizer, normalizers, processors

    backend = ByteLevelBPETokenizer(str(raw / "vocab.json"), str(raw / "merges.txt"))._tokenizer
    backend.normalizer = normalizers.NFC()
    cls_id, sep_id = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:0 [SEP]:0",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        mask_token=transformers.AddedToken("[MASK]", lstrip=True),
        model_max_length=SHAPE["positions"],
    )


def _train_spm(name: str, texts: Sequence[str], out: Path, vocab: int) -> None:
    """SentencePiece unigram: XLM-R's id layout (sentencepiece's defaults) or ALBERT's (also DeBERTa's)."""
    import sentencepiece as spm

    corpus = out / "corpus.txt"
    corpus.write_text("\n".join(t.replace("\n", " ") for t in texts), encoding="utf-8")
    layout: dict[str, Any] = {}
    if name == "spm-albert":
        layout = dict(
            pad_id=0, unk_id=1, bos_id=2, eos_id=3, user_defined_symbols=["[CLS]", "[SEP]", "[MASK]"]
        )
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(out / "spm"),
        vocab_size=vocab,
        model_type="unigram",
        character_coverage=0.995,
        num_threads=1,
        minloglevel=2,
        **layout,
    )
    corpus.unlink()


def _config(
    family: str, tok: Any, labels: int, multi_label: bool, shape: dict[str, int] | None = None
) -> Any:
    import transformers

    h, n, heads, ffn, pos = ((shape or SHAPE)[k] for k in ("hidden", "layers", "heads", "ffn", "positions"))
    common: dict[str, Any] = dict(
        vocab_size=len(tok),
        num_labels=labels,
        pad_token_id=tok.pad_token_id,
        id2label={i: f"label_{chr(97 + i)}" for i in range(labels)},
    )
    common["label2id"] = {v: k for k, v in common["id2label"].items()}
    if multi_label:
        common["problem_type"] = "multi_label_classification"
    model_type = FAMILIES[family][1]
    if model_type == "distilbert":
        return transformers.DistilBertConfig(
            dim=h, n_layers=n, n_heads=heads, hidden_dim=ffn, max_position_embeddings=pos, **common
        )
    if model_type == "albert":
        return transformers.AlbertConfig(
            embedding_size=16, hidden_size=h, num_hidden_layers=n, num_attention_heads=heads,
            intermediate_size=ffn, max_position_embeddings=pos, **common,
        )  # fmt: skip
    if model_type == "modernbert":
        return transformers.ModernBertConfig(
            hidden_size=h, num_hidden_layers=n, num_attention_heads=heads, intermediate_size=ffn,
            max_position_embeddings=pos, global_attn_every_n_layers=2, local_attention=16,
            bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id,
            cls_token_id=tok.cls_token_id, sep_token_id=tok.sep_token_id, **common,
        )  # fmt: skip
    extra: dict[str, Any] = {}
    if model_type in ("roberta", "xlm-roberta"):
        pos += tok.pad_token_id + 1  # positions start after the padding index
    if model_type == "deberta-v2":  # v3's layout: relative positions, no absolute ones
        extra = dict(relative_attention=True, position_biased_input=False, pos_att_type=["p2c", "c2p"])
        extra.update(max_relative_positions=-1, position_buckets=16, norm_rel_ebd="layer_norm")
    if model_type == "electra":
        extra = dict(embedding_size=16)
    cls = transformers.AutoConfig.for_model(model_type).__class__
    return cls(
        hidden_size=h, num_hidden_layers=n, num_attention_heads=heads, intermediate_size=ffn,
        max_position_embeddings=pos, **extra, **common,
    )  # fmt: skip


def build_checkpoint(
    family: str,
    texts: Sequence[str],
    work: Path,
    *,
    vocab: int = 1200,
    labels: int = 2,
    multi_label: bool = False,
    seed: int = 0,
) -> Path:
    """A ``save_pretrained`` directory (model + fast tokenizer) of ``family``; reused when present."""
    import shutil

    import torch
    import transformers

    name = f"{family}{'-multi' if multi_label else ''}-{labels}"
    out = work / name
    if (out / "config.json").is_file():
        return out
    kind = FAMILIES[family][0]
    tok_dir = _tokenizer_dir(kind, family, texts, work, vocab)
    tok = transformers.AutoTokenizer.from_pretrained(str(tok_dir))
    torch.manual_seed(seed)
    model = transformers.AutoModelForSequenceClassification.from_config(
        _config(family, tok, labels, multi_label)
    )
    tmp = work / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    tok.save_pretrained(str(tmp))
    (tmp / "edgeclf_fixture.json").write_text(json.dumps({"family": family, "kind": kind}), encoding="utf-8")
    os.replace(tmp, out)
    return out


def training_texts(shared: Path, n: int = 1000) -> list[str]:
    """Tokenizer training texts: ``n`` IMDB training reviews plus ``n // 2`` Weibo posts (Chinese pieces)."""
    import csv
    import gzip

    with gzip.open(shared / "imdb" / "train.csv.gz", "rt", encoding="utf-8", newline="") as fh:
        reviews = [row["text"] for _, row in zip(range(n), csv.DictReader(fh), strict=False)]
    with open(shared / "zh-rumor" / "weibo_train.csv", encoding="utf-8", newline="") as fh:
        posts = [row["text"] for _, row in zip(range(n // 2), csv.DictReader(fh), strict=False)]
    return reviews + posts
