"""The floor `edgeclf predict` is measured against: the least a CSV -> CSV classifier does.

Stdlib only: read the CSV, lowercase and split each text (the least any
tokenizer does), write ``id,label,score,error`` with a constant label. No
model, no error handling: whatever edgeclf spends above this is the price of
its model, its checks and its process start.

    python benchmarks/floor_predict.py IN.csv OUT.csv
"""

import csv
import sys


def main(src: str, dst: str) -> None:
    with (
        open(src, encoding="utf-8", newline="") as fin,
        open(dst, "w", encoding="utf-8", newline="") as fout,
    ):
        reader = csv.reader(fin)
        header = next(reader)
        i_id, i_text = header.index("id"), header.index("text")
        writer = csv.writer(fout, lineterminator="\n")
        writer.writerow(["id", "label", "score", "error"])
        for row in reader:
            words = row[i_text].lower().split()
            writer.writerow([row[i_id], "positive" if len(words) % 2 else "negative", "0.500000", ""])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
