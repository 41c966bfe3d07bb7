"""The project's own SentencePiece vocabulary for ALBERT (``edgeclf export albert-vocab``).

``train_sentencepiece``: a unigram SentencePiece model trained with the
``sentencepiece`` package on ALBERT-preprocessed text (whitespace folded,
``````/``''`` -> ``"``, accents stripped, lowercased), with ALBERT's ids:
``<pad>``=0, ``<unk>``=1, ``[CLS]``=2, ``[SEP]``=3, ``[MASK]``=4, and
nmt_nfkc normalization. The result loads in ``transformers.AlbertTokenizer``
and in the runtime's own tokenizer (``export/spm_convert.py``).

The models themselves are trained by :mod:`edgeclf.export.albert_recipe`
(pre-training, distillation, fine-tuning), which tokenizes with the runtime's
tokenizer, so training and serving cannot drift apart.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from . import require

SPECIALS = ["[CLS]", "[SEP]", "[MASK]"]


def albert_preprocess(text: str, lower: bool = True, keep_accents: bool = False) -> str:
    """AlbertTokenizer.preprocess_text, for the SentencePiece training corpus."""
    out = " ".join(text.strip().split())
    out = out.replace("``", '"').replace("''", '"')
    if not keep_accents:
        out = unicodedata.normalize("NFKD", out)
        out = "".join(c for c in out if not unicodedata.combining(c))
    return out.lower() if lower else out


def train_sentencepiece(texts: Sequence[str], out_dir: Path, vocab_size: int = 16000, seed: int = 0) -> Path:
    spm = require("sentencepiece", "training a SentencePiece vocabulary")
    out_dir.mkdir(parents=True, exist_ok=True)
    corpus = out_dir / "spm_corpus.txt"
    with open(corpus, "w", encoding="utf-8") as fh:
        for t in texts:
            fh.write(albert_preprocess(t) + "\n")
    prefix = out_dir / "spiece"
    spm.set_random_generator_seed(seed)
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(prefix),
        model_type="unigram",
        vocab_size=vocab_size,
        pad_id=0,
        unk_id=1,
        bos_id=-1,
        eos_id=-1,
        pad_piece="<pad>",
        unk_piece="<unk>",
        control_symbols=SPECIALS,
        normalization_rule_name="nmt_nfkc",
        character_coverage=0.9999,
        max_sentence_length=1 << 16,
        input_sentence_size=200_000,
        shuffle_input_sentence=True,
        num_threads=os.cpu_count() or 1,
        minloglevel=2,
    )
    corpus.unlink()
    (out_dir / "spiece.vocab").unlink(missing_ok=True)
    return prefix.with_suffix(".model")


def train_vocab(
    out_dir: str | os.PathLike[str],
    data: str | os.PathLike[str] | None = None,
    *,
    vocab_size: int = 16000,
    seed: int = 42,
) -> Path:
    """IMDB: SentencePiece vocabulary on the train + unlabeled reviews (never the test ones)."""
    from .data import load_imdb, read_csv_rows, shared_data_dir

    texts, _ = load_imdb("train", data)
    src = Path(data) if data else (shared_data_dir() or Path(".")) / "imdb"
    if (src / "unsup.csv.gz").is_file():
        texts += [r["text"] for r in read_csv_rows(src / "unsup.csv.gz")]
    return train_sentencepiece(texts, Path(out_dir), vocab_size=vocab_size, seed=seed)
