"""BD-rate of one run's `compact` curves against another's, image by image: what a codec
change did, measured from two `benchmarks.codec_stage` runs' JSON lines (no encoding).

    python -m benchmarks.compare_runs benchmarks/results/codec_stage_chroma.jsonl \
        benchmarks/results/codec_stage_interp.jsonl

For each image both runs have: the BD-rate (PCHIP; negative: the first run needs fewer
bytes) of the files `compact` returned (`with`: the stage where it pays) and of those
without the stage (`without`), then the means. `--against without` compares both of the new
run's curves with the old run's files without the stage (the issue's "the same command with
the trained stage off").
"""

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.common import bd_rate


def rows(path: Path) -> dict[str, dict]:
    return {r["image"]: r for r in map(json.loads, path.read_text().splitlines()) if r}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("new", type=Path)
    ap.add_argument("old", type=Path)
    ap.add_argument("--against", choices=("same", "without"), default="same")
    a = ap.parse_args()
    new, old = rows(a.new), rows(a.old)
    theirs = "the same curve" if a.against == "same" else "its files without the stage"
    print(f"{a.new.name} against {a.old.name} ({theirs}): BD-rate, with the stage / without")
    means: dict[str, list[float]] = {"with": [], "without": []}
    for image in [i for i in new if i in old]:
        cells = []
        for key in means:
            n = np.array(new[image][key])
            o = np.array(old[image][key if a.against == "same" else "without"])
            bd = bd_rate(list(n[:, 0]), list(n[:, 1]), list(o[:, 0]), list(o[:, 1]))
            if bd is not None:
                means[key].append(bd)
            cells.append("n/a" if bd is None else f"{bd:+.2f} %")
        print(f"{image:10s} {' / '.join(cells)}")
    print("mean       " + " / ".join(f"{np.mean(v):+.2f} %" for v in means.values()))


if __name__ == "__main__":
    main()
