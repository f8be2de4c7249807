"""Draw the second held-out caption set from AudioCaps train.csv (run once; kept for the record).

    python tests/data/draw_heldout2.py /work/shared/data/audiocaps/train.csv > heldout2.tsv

Distinct captions in file order, minus every caption of the development and first held-out
sets, then 170 drawn with ``numpy.random.default_rng(19)``. The clause column is left empty:
it was labelled by hand before the parser ran on these captions.
"""

import csv
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
SEED, N = 19, 170


def captions(path: Path, column: str, delimiter: str = ",") -> list[str]:
    with open(path, newline="") as f:
        return [r[column].strip() for r in csv.DictReader(f, delimiter=delimiter)]


if __name__ == "__main__":
    seen = set(captions(HERE / "gold_captions.tsv", "caption", "\t"))
    seen |= set(captions(HERE / "heldout_captions.tsv", "caption", "\t"))
    pool = [c for c in dict.fromkeys(captions(Path(sys.argv[1]), "caption")) if c and c not in seen]
    drawn = np.random.default_rng(SEED).choice(len(pool), N, replace=False)
    print("caption\tclauses")
    for i in drawn:
        print(f"{pool[i]}\t")
