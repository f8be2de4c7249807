"""Draw a held-out caption set from AudioCaps train.csv (run once per set; kept for the record).

    python tests/data/draw_heldout.py TRAIN_CSV [SEED N [EXCLUDE.tsv ...]] > SET.tsv

Distinct captions in file order, minus every caption of the development and first held-out
sets (and of any EXCLUDE file), then N drawn with ``numpy.random.default_rng(SEED)``. The clause
column is left empty: each set was labelled by hand before the parser ran on its captions.

- heldout2_captions.tsv: ``draw_heldout.py train.csv`` (seed 19, 170 captions)
- heldout3_captions.tsv: ``draw_heldout.py train.csv 23 60 tests/data/heldout2_captions.tsv``,
  drawn after the rules had been improved on heldout2
- heldout4_captions.tsv: ``draw_heldout.py train.csv 31 170 tests/data/heldout2_captions.tsv
  tests/data/heldout3_captions.tsv`` (issue 19), labelled and committed before the parser ran
"""

import csv
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent


def captions(path: Path, column: str, delimiter: str = ",") -> list[str]:
    with open(path, newline="") as f:
        return [r[column].strip() for r in csv.DictReader(f, delimiter=delimiter)]


if __name__ == "__main__":
    source, seed, n, *exclude = sys.argv[1:] + ["19", "170"][len(sys.argv) - 2 :]
    seen = set(captions(HERE / "gold_captions.tsv", "caption", "\t"))
    for path in [HERE / "heldout_captions.tsv", *map(Path, exclude)]:
        seen |= set(captions(path, "caption", "\t"))
    pool = [c for c in dict.fromkeys(captions(Path(source), "caption")) if c and c not in seen]
    drawn = np.random.default_rng(int(seed)).choice(len(pool), int(n), replace=False)
    print("caption\tclauses")
    for i in drawn:
        print(f"{pool[i]}\t")
