"""The upscaler's prior: an `UpscaleINR` trained once, offline, on photos that are neither
Kodak nor the benchmark's other photos, shipped in the package (`PRIORS`: one safetensors
file each) and used by every upscale job as it is.

Why: internal learning alone (the network trained from a random start on the user's image's
own smaller copies, ZSSR's recipe, in a 60-s CPU budget) reached +0.99 / +0.64 / +0.57 dB
over Lanczos at ×2 / ×3 / ×4 on the benchmark's 29 photos, and −2.24 dB on kodim07 at ×3
(the shutters' near-Nyquist stripes: at ×3 the image's own copies never show the network
such content). The first prior (`prior-2026-12-06`, 5 encoder layers), trained on other
photos, reached +1.10 / +0.82 / +0.72 with no image below Lanczos (`python -m
benchmarks.upscale --out upscale_prior`); fine-tuning it on the user's image for 2,400 steps
made three of four images worse (ablation row 30, benchmarks/results/upscale_ablation.md).
So a job trains nothing: its file names the prior and holds the image and the blend weights
(`choose_blend`, the held-out check against Lanczos). The second (`prior-2026-12-06b`, 17
encoder layers, chosen among the recipes of `benchmarks.upscale_prior_search`) reaches
+1.13 / +0.86 / +0.74, none below Lanczos (`--out upscale_prior_b`); +1.16 / +0.89 / +0.77
with its blend chosen on the image itself (`--out upscale_sameblend`). The third
(`prior-2026-12-06c`, the same shape trained 30,000 steps on 38 photos: the 15 and 23 from
Debian's wallpaper packages) +1.26 / +0.90 / +0.76 (`--out upscale_prior_c`). The fourth
(`prior-2026-12-06d`, 45,000 steps on 53: `PHOTO_SETS`' "lomiri" too) +1.25 / +0.93 / +0.79
(`--out upscale_prior_d`).

A prior never changes under a file: its name is in the file, and `load_prior` checks the
bytes it reads against the SHA-256 `PRIORS` gives for that name. A better prior is a new file
with a new name, added at the end of `PRIORS` beside the old ones:

    python -m mhinr.model.upscale_prior --name NAME [--steps N] [--layers L] [--photos SET ...]
        [--out PATH]

(needs the `dev` extra: scikit-image's and Matplotlib's sample photos are the training set;
with `--photos` (`PHOTO_SETS`; the newest prior's sets by default), also apt-get and
dpkg-deb.)
"""

import argparse
import hashlib
import json
import os
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from mhinr.model.upscale import (
    UpscaleConfig,
    UpscaleFit,
    UpscaleINR,
    adam_step,
    batch_loss,
    cosine_decay,
    start_network,
    training_scale,
)


@dataclass(frozen=True)
class Prior:
    """One shipped prior: its file beside this module, that file's SHA-256, its shape and
    how many steps trained it (`python -m mhinr.model.upscale_prior --name NAME --steps
    STEPS --layers LAYERS [--photos SET …]`, on `training_images(sets=…)`)."""

    file: str
    sha256: str
    cfg: UpscaleConfig
    steps: int
    photo_sets: tuple[str, ...] = ()  # trained on these `PHOTO_SETS` too (`--photos`)


# Every prior this mhinr has, by the name files give it; new jobs use the last (PRIOR_NAME),
# and the older ones stay so that the files naming them still decode.
PRIORS = {
    "prior-2026-12-06": Prior(
        "upscale_prior.safetensors",
        "8ee866abf3b4ffc886c0b8bc5683413b616dd5b30d9d94d508c97a03594ccbcc",
        UpscaleConfig(channels=3, features=32, layers=5, hidden=32),
        45_000,  # (its file's metadata holds its name only: it was saved before "config")
    ),
    # 17 layers: +0.08 / +0.06 / +0.05 dB at ×2 / ×3 / ×4 over 5 at 8,000 steps
    # (benchmarks/results/upscale_prior_search.md); 324 kB
    "prior-2026-12-06b": Prior(
        "upscale_prior-2026-12-06b.safetensors",
        "a54178b144d70e186d9c5bf3ddee0ffe5b191b8c36399ace15a520a756f918b4",
        UpscaleConfig(channels=3, features=32, layers=17, hidden=32),
        60_000,
    ),
    # the same network trained on 38 photos (the 15 and the 23 of PHOTO_SETS["wallpapers"]):
    # +0.13 / +0.09 / +0.03 dB at ×2 / ×3 / ×4 over prior-2026-12-06b in the prior search
    "prior-2026-12-06c": Prior(
        "upscale_prior-2026-12-06c.safetensors",
        "1b5b0f59dba0e0f7aac3967c03dea372e0d0b89663c47d7031f84a5aa64feb9c",
        UpscaleConfig(channels=3, features=32, layers=17, hidden=32),
        30_000,
        photo_sets=("wallpapers",),
    ),
    # the same network trained 45,000 steps on 53 photos (PHOTO_SETS "lomiri" too): +0.026 /
    # +0.029 / +0.029 dB at ×2 / ×3 / ×4 over prior-2026-12-06c in the prior search
    "prior-2026-12-06d": Prior(
        "upscale_prior-2026-12-06d.safetensors",
        "e36a65a5f5d6ff0deb6bbdab274a437ec43beb17ff3f6fc2704cc4b176aad2f7",
        UpscaleConfig(channels=3, features=32, layers=17, hidden=32),
        45_000,
        photo_sets=("wallpapers", "lomiri"),
    ),
}
PRIOR_NAME = list(PRIORS)[-1]
HERE = Path(__file__).parent

# The training photos: scikit-image's and Matplotlib's sample images that are not among the
# benchmark's (astronaut, camera, chelsea, coffee, rocket) — a motorcycle (a stereo pair),
# microscopy, a retina, the Hubble deep field, brick, grass, gravel, coins, the moon, cells,
# printed text, Grace Hopper's portrait and a packaged product. JPEG sources are halved
# first (their block artefacts and subsampled colour are not what a photo looks like).
SKIMAGE = ("motorcycle_left.png", "motorcycle_right.png", "hubble_deep_field.jpg",
           "retina.jpg", "ihc.png", "brick.png", "grass.png", "gravel.png", "coins.png",
           "moon.png", "cell.png", "text.png", "page.png")  # fmt: skip
MATPLOTLIB = ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png")


# More photos: the photographs among some of Debian 12's wallpaper packages (the drawings and
# renders in them are left out), fetched with `apt-get download` (no root needed) and
# unpacked with `dpkg-deb` by `photo_set`.
@dataclass(frozen=True)
class PhotoSet:
    """Photos in Debian packages: the packages (pinned versions) and the files in them."""

    packages: tuple[str, ...]
    files: tuple[str, ...]


PHOTO_SETS = {
    # GPL-2+: water, a pier, cups, boats at dusk, a leaf, a building's facade, a sky, moss, a
    # forest path, a lake (Plasma's, 2560×1600) and Charles Barbin's and others' close-ups
    # of flowers, grass, leaves, a ladybird, dunes, a storm, wood and a water drop (MATE's)
    "wallpapers": PhotoSet(
        ("plasma-workspace-wallpapers=4:5.27.5-2", "mate-backgrounds=1.26.0-1"),
        tuple(
            f"usr/share/wallpapers/{n}/contents/images/2560x1600.jpg"
            for n in ("BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow",
                      "FallenLeaf", "Grey", "Kite", "OneStandsOut", "Path", "summer_1am")
        ) + tuple(
            f"usr/share/backgrounds/mate/nature/{n}.jpg"
            for n in ("Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow",
                      "LadyBird", "RainDrops", "Storm", "TwoWings", "Wood", "YellowFlower")
        ),
    ),
    # CC-BY-4.0 and CC-BY-SA-3.0/4.0 (their copyright files name each photographer): the
    # Ubuntu 16.04–20.04 wallpaper contests' photographs, 1365 to 6028 pixels wide — a
    # bridge's cables, a dragonfly, a nuthatch on bark, a fig, paintbrushes, a drum in a room,
    # mountains, meadows, a stream over rocks, a lamp and a bird, dogs at a door, a clock,
    # dandelions at sunset, a sunrise, a textured wall
    "lomiri": PhotoSet(
        ("lomiri-wallpapers-16.04=20.04.0-2", "lomiri-wallpapers-20.04=20.04.0-2"),
        tuple(
            f"usr/share/backgrounds/{n}.jpg"
            for n in ("Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly",
                      "Picture_0B_by_freespace", "Picture_1A_by_freespace", "Wine_by_Jakkub_Mede",
                      "aitzgorri_by_Aitzol_Berasategi", "analogpattern_by_Peter_Nerlich",
                      "free_by_Peter_Nerlich", "friends_by_Aitzol_Berasategi",
                      "greentock_by_Peter_Nerlich", "life_by_Aitzol_Berasategi",
                      "picosdeeuropa_by_Aitzol_Berasategi", "seeding_by_Clements_Engelhardt",
                      "sunset_by_Aitzol_Berasategi", "Kleiber_by_Lukas_Baubkus")
        ),
    ),
}  # fmt: skip


class PriorError(ValueError):
    """The prior a file names is not this installation's, or its bytes are not the ones
    its name stands for."""


@lru_cache(maxsize=len(PRIORS))
def _prior_tensors(name: str) -> dict[str, np.ndarray]:
    prior = PRIORS[name]
    data = (HERE / prior.file).read_bytes()
    if hashlib.sha256(data).hexdigest() != prior.sha256:
        raise PriorError(f"{prior.file} is not the prior {name} (its hash differs)")
    return st_load(data)


def load_prior(name: str = PRIOR_NAME) -> UpscaleINR:
    """A fresh `UpscaleINR` holding the prior `name` (fp16 in the file, float32 here)."""
    if name not in PRIORS:
        raise PriorError(f"the file's upscaler is the prior {name!r}, which this mhinr does "
                         f"not have (it has {', '.join(PRIORS)}): upgrade mhinr")  # fmt: skip
    net = UpscaleINR(PRIORS[name].cfg)
    tensors = _prior_tensors(name)
    with torch.no_grad():
        for key, p in net.named_parameters():
            p.copy_(torch.from_numpy(tensors[key].astype(np.float32)))
    net.prior = name
    return net.eval()


def training_images(
    leave_out: tuple[str, ...] = (), sets: tuple[str, ...] = ()
) -> list[torch.Tensor]:
    """The prior's training photos as RGB [3, H, W] in [0, 1] (grey ones as three equal
    channels), but those whose file names are in `leave_out`; then those of each of
    `PHOTO_SETS` named in `sets`."""
    import matplotlib
    import skimage

    where = [Path(skimage.__file__).parent / "data" / n for n in SKIMAGE]
    where += [Path(matplotlib.get_data_path()) / "sample_data" / n for n in MATPLOTLIB]
    photos = [_photo(p) for p in where if p.name not in leave_out]
    return photos + [im for name in sets for im in photo_set(name)]


def _photo(path: Path) -> torch.Tensor:
    """A training photo as RGB [3, H, W] in [0, 1]; a JPEG halved first (its block artefacts
    and subsampled colour are not what a photo looks like)."""
    from PIL import Image

    with Image.open(path) as im:
        rgb = im.convert("RGB")
    if path.suffix == ".jpg":
        rgb = rgb.reduce(2)
    return torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1).float() / 255


def photo_set(name: str, cache: Path | None = None) -> list[torch.Tensor]:
    """The photos of `PHOTO_SETS[name]`, from Debian's packages fetched into `cache` (default
    ~/.cache/mhinr/<name>) the first time."""
    import subprocess

    chosen = PHOTO_SETS[name]
    home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    cache = cache or home / "mhinr" / name
    cache.mkdir(parents=True, exist_ok=True)
    if not all((cache / f).exists() for f in chosen.files):
        subprocess.run(["apt-get", "download", *chosen.packages], cwd=cache, check=True)
        for deb in sorted(cache.glob("*.deb")):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(cache)], check=True)
    return [_photo(cache / f) for f in chosen.files]


def train_prior(
    images: list[torch.Tensor],
    steps: int,
    fit: UpscaleFit | None = None,
    log_every: int = 1000,
    cfg: UpscaleConfig | None = None,
    weights: list[float] | None = None,
    init: UpscaleINR | None = None,
) -> UpscaleINR:
    """The upscaler (`cfg`, default `UpscaleConfig()`) trained on `images` (each step a batch
    of crops of one of them, picked at random, reduced by a random scale and enlarged back:
    the preset's own pairs and loss), `steps` steps of Adam with the learning rate's cosine
    decay. `weights`: how often each image is picked, relatively (default: equally).
    `init`: start from that network's weights (its shape: `cfg` is then ignored)."""
    fit = fit or UpscaleFit()
    net = start_network(init.cfg if init is not None else cfg or UpscaleConfig(), init, "cpu")
    opt = torch.optim.Adam(net.parameters(), lr=fit.lr)
    gen = torch.Generator().manual_seed(fit.seed)
    start, ema = time.perf_counter(), 0.0
    for step in range(1, steps + 1):
        if weights is None:  # (the draw of prior-2026-12-06)
            image = images[int(torch.randint(0, len(images), (1,), generator=gen))]
        else:
            odds = torch.tensor(weights, dtype=torch.float64)
            image = images[int(torch.multinomial(odds, 1, generator=gen))]
        scale = training_scale(gen, fit.integer_share, *fit.scales)
        loss, mse = batch_loss(net, image, fit, gen, scale, "cpu")
        adam_step(net, opt, loss, fit.lr * cosine_decay(step / steps), None, 0.0)
        ema = mse if step == 1 else 0.98 * ema + 0.02 * mse
        if step % log_every == 0:
            psnr = -10 * np.log10(max(ema, 1e-12))
            print(f"step {step}: {psnr:.2f} dB, {time.perf_counter() - start:.0f} s", flush=True)
    return net.eval()


def prior_file(name: str) -> Path:
    """Where a prior named `name` is saved beside this module (as `PRIORS`' files are)."""
    return HERE / f"upscale_{name}.safetensors"


def save_prior(net: UpscaleINR, path: Path, name: str) -> str:
    """The prior's parameters as fp16 safetensors at `path`, named `name`; returns the
    file's SHA-256."""
    tensors = {  # C order: the encoder trains channels-last, which numpy would keep
        k: np.ascontiguousarray(p.detach().cpu().numpy().astype(np.float16))
        for k, p in net.named_parameters()
    }
    data = st_save(tensors, metadata={"name": name, "config": json.dumps(net.cfg.to_dict())})
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--name", required=True, help="the new prior's name (prior-YYYY-MM-DD)")
    newest = PRIORS[PRIOR_NAME]  # the defaults: its recipe
    ap.add_argument("--steps", type=int, default=newest.steps)
    ap.add_argument("--features", type=int, default=newest.cfg.features)
    ap.add_argument("--layers", type=int, default=newest.cfg.layers)
    ap.add_argument("--out", type=Path, help="default: upscale_<name>.safetensors here")
    ap.add_argument("--photos", nargs="*", default=newest.photo_sets, choices=sorted(PHOTO_SETS),
                    help="train on these PHOTO_SETS too (none: the 15 photos alone)")  # fmt: skip
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = UpscaleConfig(features=args.features, layers=args.layers)
    net = train_prior(training_images(sets=tuple(args.photos)), args.steps, cfg=cfg)
    out = args.out or prior_file(args.name)
    print(f"{out}: sha256 {save_prior(net, out, args.name)}; add it to PRIORS")


if __name__ == "__main__":
    main()
