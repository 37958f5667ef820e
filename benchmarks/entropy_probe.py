"""Probe: how much adaptive tables could save over the context model's Laplace tables.

For one image at three (cell, step) points of `compact`'s cosine coding: the real coded
section (entropy.encode), the model's own estimate (bit_costs under its scales), the ideal
static entropy of the symbols grouped by the scale index the model picks (a lower bound
that ignores the cost of sending tables), and adaptive frequency counts per scale index
(started from the Laplace table with the weight of w symbols, updated after each symbol,
in coding order: what an adaptive coder like AV1's would reach).

    python -m benchmarks.entropy_probe kodim23

Result (2026-12-05, kodim23): adaptive counts save 0.1–2.1 % of the coefficient bytes, the
static bound 3–5 %: the tables are not where the bytes are (not pursued).
"""

import sys

import numpy as np
import torch

from benchmarks.bd_rate import load
from mhinr.model.codec import entropy
from mhinr.model.codec.format3 import dc_med_residuals
from mhinr.model.coefficients import fit_coders
from mhinr.model.presets import Arch, Options


def main() -> None:
    torch.set_num_threads(1)
    for name in sys.argv[1].split(","):
        img = load(name)
        for cell, step in [(16, 0.3), (12, 0.12), (8, 0.05)]:
            c = fit_coders(
                img.pixels, img.mode, Options(preset="compact"), True, [Arch(cell=cell, fixed=True)]
            )[0]
            q = c.quantized(step).numpy().astype(np.int64)
            shape = (q.shape[0], len(img.mode), *c.net.cfg.heads)
            q4 = q.reshape(shape).copy()
            q4[0] = dc_med_residuals(q4[0])
            real = len(entropy.encode(q4)) * 8
            z = entropy.zigzag(q4)
            ctx = entropy.context_indices(q4)
            alpha = entropy.fit_alpha(z, ctx)
            s = np.minimum(alpha[:, :, None, None] + ctx, entropy.SCALES - 1)
            costs = entropy.bit_costs()
            model_bits = costs[s, np.minimum(z, 127)].sum()
            # empirical per-s static entropy (ideal two-pass, no table cost)
            zs = np.minimum(z, 127).ravel()
            ss = s.ravel()
            emp = 0.0
            for v in np.unique(ss):
                sel = zs[ss == v]
                cnt = np.bincount(sel)
                p = cnt[cnt > 0] / len(sel)
                emp += -(cnt[cnt > 0] * np.log2(p)).sum()
            # adaptive counts per s, Laplace prior weight w, in coding order
            order = entropy.order(q4.shape[0])
            for w in (8, 32):
                bits = 0.0
                counts = {}
                for k in order:
                    for ch in range(q4.shape[1]):
                        zz = np.minimum(z[k, ch].ravel(), 127)
                        sv = s[k, ch].ravel()
                        for v in np.unique(sv):
                            if v not in counts:
                                p = 2.0 ** (-costs[v])
                                counts[v] = p / p.sum() * w
                            cnt = counts[v]
                            for sym in zz[sv == v]:
                                bits += -np.log2(cnt[sym] / cnt.sum())
                                cnt[sym] += 1
                print(
                    f"{name} cell {cell} step {step}: real {real / 8:.0f} B, "
                    f"model {model_bits / 8:.0f} B, static-empirical {emp / 8:.0f} B "
                    f"({100 * (emp / model_bits - 1):+.1f} %), adaptive w={w} {bits / 8:.0f} B "
                    f"({100 * (bits / model_bits - 1):+.1f} %)",
                    flush=True,
                )


if __name__ == "__main__":
    main()
