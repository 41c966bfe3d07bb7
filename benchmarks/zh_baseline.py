"""Baseline for the Chinese rumor task: character n-gram logistic regression.

Gives the ALBERT number on weibo_test something to be compared with. Same
split as the ALBERT model (edgeclf.export.zh_rumor.load_split).

    python benchmarks/zh_baseline.py [--data ../shared/data/zh-rumor]
"""

from __future__ import annotations

import argparse
import json

from edgeclf.export.zh_rumor import load_split, metrics


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=None)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    split = load_split(args.data)
    (x_tr, y_tr), (x_te, y_te) = split["train"], split["test"]
    vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=2, sublinear_tf=True)
    clf = LogisticRegression(C=4.0, max_iter=2000)
    clf.fit(vec.fit_transform(x_tr), y_tr)
    m = metrics(y_te, clf.predict(vec.transform(x_te)).tolist())
    result = {
        "model": "char 1-3-gram TF-IDF + logistic regression (C=4)",
        "train": len(x_tr),
        **m,
        "test_empty_posts_excluded": split["test_empty"],
    }
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print(
            f"| {result['model']} | {m['accuracy']:.4f} | {m['fake_precision']:.4f} | "
            f"{m['fake_recall']:.4f} | {m['fake_f1']:.4f} | {m['n']} |"
        )


if __name__ == "__main__":
    main()
