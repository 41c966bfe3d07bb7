"""Dataset loaders for training and evaluation (stdlib only).

IMDB comes in three shapes, all accepted by :func:`load_imdb`:
- the project's shared CSVs (``train.csv.gz`` / ``test.csv.gz`` with
  ``text,label`` columns), a directory holding them or one such file;
- an extracted ``aclImdb/`` tree (``train/pos/*.txt`` ...);
- the public download (``source="download"``), fetched once into a cache
  directory when the machine is online. No runtime code path downloads.
"""

from __future__ import annotations

import csv
import gzip
import os
import tarfile
import urllib.request
from pathlib import Path

IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
_HERE = Path(__file__).resolve()


def shared_data_dir() -> Path | None:
    """``$EDGECLF_DATA`` or ``../shared/data`` beside the checkout, if present."""
    env = os.environ.get("EDGECLF_DATA")
    candidates = [Path(env)] if env else []
    candidates += [p / "shared" / "data" for p in _HERE.parents[1:4]]
    candidates.append(Path.cwd().parent / "shared" / "data")
    for c in candidates:
        if (c / "imdb").is_dir() or (c / "zh-rumor").is_dir():
            return c
    return None


def read_csv_rows(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    p = Path(path)
    opener = gzip.open if p.suffix == ".gz" else open
    with opener(p, "rt", encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def load_imdb(
    split: str = "train", source: str | os.PathLike[str] | None = None
) -> tuple[list[str], list[int]]:
    """Return ``(texts, labels)`` for ``split`` ('train' or 'test'), labels 0/1."""
    if split not in ("train", "test"):
        raise ValueError("split must be 'train' or 'test'")
    if source == "download":
        source = download_imdb()
    if source is None:
        shared = shared_data_dir()
        if shared is None:
            raise FileNotFoundError(
                "no IMDB data found: pass a directory with train.csv.gz/test.csv.gz, an aclImdb/ "
                "directory, or source='download' (needs internet); or set EDGECLF_DATA"
            )
        source = shared / "imdb"
    src = Path(source)
    if src.is_file():
        return _from_csv(src)
    for name in (f"{split}.csv.gz", f"{split}.csv"):
        if (src / name).is_file():
            return _from_csv(src / name)
    for root in (src, src / "aclImdb"):
        if (root / split / "pos").is_dir():
            return _from_acl(root / split)
    raise FileNotFoundError(f"{src}: neither {split}.csv(.gz) nor an aclImdb/{split}/pos tree")


def _from_csv(path: Path) -> tuple[list[str], list[int]]:
    rows = read_csv_rows(path)
    texts, labels = [], []
    for i, r in enumerate(rows, 1):
        if r.get("label", "") == "":
            continue  # unlabeled (unsup) rows
        try:
            labels.append(int(r["label"]))
        except (KeyError, ValueError):
            raise ValueError(f"{path}: row {i}: label must be 0 or 1, got {r.get('label')!r}") from None
        texts.append(r["text"])
    return texts, labels


def _from_acl(split_dir: Path) -> tuple[list[str], list[int]]:
    texts, labels = [], []
    for label, sub in ((0, "neg"), (1, "pos")):
        for f in sorted((split_dir / sub).glob("*.txt"), key=lambda p: int(p.stem.split("_")[0])):
            texts.append(f.read_text(encoding="utf-8"))
            labels.append(label)
    return texts, labels


def download_imdb(cache: str | os.PathLike[str] | None = None) -> Path:
    """Fetch and extract the public aclImdb archive (needs internet)."""
    cache_dir = Path(cache or Path.home() / ".cache" / "edgeclf")
    target = cache_dir / "aclImdb"
    if (target / "test" / "pos").is_dir():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    archive = cache_dir / "aclImdb_v1.tar.gz"
    if not archive.exists():
        tmp = archive.with_suffix(".part")
        urllib.request.urlretrieve(IMDB_URL, tmp)
        tmp.replace(archive)
    with tarfile.open(archive) as tar:
        tar.extractall(cache_dir, filter="data")
    return target


def read_labelled(
    path: str | os.PathLike[str],
    *,
    limit: int | None = None,
    text_column: str = "text",
    label_column: str = "label",
) -> tuple[list[str], list[int]]:
    """``(texts, labels)`` from a labelled CSV(.gz); rows without a label or text are skipped."""
    rows = [
        r for r in read_csv_rows(path) if r.get(label_column, "") != "" and (r.get(text_column) or "").strip()
    ]
    rows = rows[:limit] if limit else rows
    try:
        return [r[text_column] for r in rows], [int(r[label_column]) for r in rows]
    except ValueError as exc:
        raise ValueError(f"{path}: labels must be integers ({exc})") from None
