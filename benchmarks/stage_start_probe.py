"""Probe: the trained stage's first training from Stage's own start against from the shipped
prior's features (model/stage_prior.py), the same steps, over seeds, priced as
`benchmarks.stage_probe` prices (rate saved at the file's own R–D slope).

    python -m benchmarks.stage_start_probe --images kodim05,kodim23,coffee,astronaut \\
        --bpps 0.5,1.0 --steps 15000 --seeds 0,1
"""

import argparse

import numpy as np
import torch

from benchmarks.stage_probe import rate_saved, scored, untrained_files
from mhinr.model import stage_prior, synthesis
from mhinr.model.codec import stage_bytes
from mhinr.model.coefficients import stage_hidden


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default="kodim05,kodim23,coffee,astronaut")
    ap.add_argument("--bpps", default="0.5,1.0")
    ap.add_argument("--steps", type=int, default=15_000)
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    seeds = [int(s) for s in a.seeds.split(",")]
    gains: dict[str, list[float]] = {"identity": [], "prior": []}
    for name in a.images.split(","):
        img, files = untrained_files(name, [float(b) for b in a.bpps.split(",")])
        px = img.pixels
        for o, slope, filt_bytes, _, before in files:
            hidden = stage_hidden(o.bytes)
            prior = stage_prior.load(hidden)
            if prior is None:
                print(f"{name} {o.bpp:.3f} bpp h{hidden}: no prior for this width")
                continue
            for start, init in (("identity", None), ("prior", prior)):
                saved = []
                for seed in seeds:
                    net, _ = synthesis.train(
                        before, px, 1e9, a.steps, hidden=hidden, init=init, seed=seed
                    )
                    gain = scored(net, before, px) - o.psnr
                    extra = len(stage_bytes(net)) - filt_bytes
                    saved.append(rate_saved(gain, extra, o.bytes, slope))
                gains[start].append(float(np.mean(saved)))
                print(
                    f"{name} {o.bpp:.3f} bpp h{hidden} from {start}: rate saved "
                    + " / ".join(f"{s:+.2f}" for s in saved)
                    + f" % (mean {np.mean(saved):+.2f})",
                    flush=True,
                )
    if gains["prior"]:
        diff = np.array(gains["prior"]) - np.array(gains["identity"])
        print(f"prior − identity: mean {diff.mean():+.2f} points over {len(diff)} points")


if __name__ == "__main__":
    main()
