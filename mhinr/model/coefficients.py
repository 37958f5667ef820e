"""`coefficients` storage, the `compact`, `fast` and `max` presets: each cell's head coded
as quantized coefficients in an orthonormal basis of the body's features on the cell
(model/codec/compact.py), in a per-image colour space (model/codec/colour.py); the quantizer step is
searched to meet the target. The body is the fixed cosine body (network.Body: no fit, no
bytes, the cells' DCT) on cells of 8, 12 or 16 pixels; a trained ReLU body (depth 2,
trained by variable projection on 8×8-pixel cells, stored int8) only where a width, depth
or body kind is asked for."""

import copy
import math
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch
from torch import Tensor

from mhinr.model import stage_prior, synthesis
from mhinr.model.codec import (
    STORAGE_VERSION,
    Coded,
    Quantization,
    Tools,
    coding_basis,
    deblock,
    dequantize,
    encode_coefficients,
    entropy,
    filter_bytes,
    fits_compact,
    format3,
    postfilter,
    quantize,
    stage_bytes,
)
from mhinr.model.codec.colour import colour_transform
from mhinr.model.fit import FitConfig, Progress, fit_projection, prepare_target
from mhinr.model.metrics import psnr, ssim
from mhinr.model.network import MultiHeadINR, assemble, build_network, split_cells
from mhinr.model.presets import (
    MAX_BUDGET_S,
    MAX_STEPS,
    STAGE_SECONDS,
    STAGE_STEPS,
    Arch,
    Options,
    grid,
)
from mhinr.model.ratecontrol import Compressed, Target, better, boundary, finish, target_of
from mhinr.model.render import render

# the cosine body's cells coded as residuals against the interpolation of their constant
# terms (format3.dc_interpolation; benchmarks/results/dc_interpolation.md)
DC_INTERPOLATION = True
# a colour image's channels ≥ 1 (its chroma) coded as residuals against a prediction from
# channel 0 (format3.ChromaPredictor; benchmarks/cfl_probe.py)
CHROMA_PREDICTION = True
# the cells' borders smoothed by the decoder where that pays (model/codec/deblock.py; the
# encoder tries its settings at each step)
DEBLOCKING = True
# the cosine body's coefficients coded under the context model with their parents in
# frequency (entropy.frequency_model) rather than entropy.LEGACY
# (benchmarks/results/context_probe.md)
FREQUENCY_CONTEXT = True
# coefficient quantizer step without a target (kodim23: 38.5 dB in 30.4 kB with `fast`'s
# fixed body; ~35 dB with the trained width-32 body before 2026-11-30)
DEFAULT_STEP = 0.1
# entropy.rd_quantize: steps² of squared error a saved bit is worth. λ = 0.1 with one pass:
# −2.5 % BD-rate on kodim05 and kodim23 and −2.2 % on kodim13, kodim18, astronaut, coffee,
# chelsea and rocket (every one −1.8 … −2.9 %) against the deadzone quantizer alone, for
# ~0.15 s more an encode; a second pass gained nothing (`python -m benchmarks.rdoq`)
RDOQ_LAMBDA = 0.1
RDOQ_PASSES = 1
# a target's step is searched without RDOQ, then with it between this fraction of that step
# and the step (`search`)
RDOQ_BRACKET = 0.85
# the step search (ratecontrol.boundary) stops within this much of log(step) of the target's
# boundary (bisection's 10 halvings of [1e-3, 2] gave 0.0074), or where a file is within
# BYTES_TOL of log(max_bytes) or PSNR_TOL dB of a PSNR target
WIDE_TOL, BYTES_TOL, PSNR_TOL = 0.0074, 0.004, 0.01
DEADZONE = 0.1  # rounding offset towards zero: cheaper zeros for a little more error (0.2 until
# 2026-11-30: benchmarks/results/codec_ablation.md measured 0.1 better by 1.25 % BD-rate)
# the slope that prices a restoration filter's bytes (`CoefficientCoder.filters`): ~6 dB per
# doubling of the rate is the high-rate slope of a transform codec; lower rates have a
# gentler one, so this errs towards leaving the filter out
FILTER_DB_PER_OCTAVE = 6.0
# the filter is solved on every SOLVE_STRIDE-th row and column (76 unknowns for RGB: a
# quarter of a Kodak image's pixels determine them well; a rate search solves ~10 times)
SOLVE_STRIDE = 2


# the fixed body (network.Body's cosine body): no fit and no body bytes; its coefficients are
# the cells' DCT. Against the best of the trained ReLU bodies of widths 16–64 (`compact`'s
# 300-step fits until 2026-11-30), real files at 0.15–1.5 bpp: −13.7 … −23.6 % BD-rate on
# kodim18, kodim06, coffee and chelsea — a trained body's bytes (0.4–4.7 kB) cost more than
# its adapted basis saves (`python -m benchmarks.codec_experiments fixed`). Larger cells pay
# at low rates (fewer constant terms): 16 pixels against 8, +0.51 dB at 0.15 bpp, +0.24 at
# 0.5, +0.10 at 1.5 on average (8 wins at ≥ 1 bpp on coffee and kodim18, by up to 0.26 dB);
# 24 and 32 lose to 16 on average at every target
FIXED_CELLS = (8, 12, 16)
FIXED = Arch(cell=16, fixed=True)  # `fast`, and every preset without a target
# `max` also tries these restoration-filter sizes (the file keeps the one that is best)
MAX_KERNELS = (3, 7)
# a trained body (an explicit width, depth or body kind) of this width by default; 24 below
# FAST_WIDE_PIXELS pixels, where a wider int8 body's ~450 bytes weigh
TRAINED_WIDTH = 32
FAST_WIDE_PIXELS = 256 * 256


def candidates(opt: Options, search: bool, pixels: int) -> list[Arch]:
    """The architectures to code: with an explicit width, depth or body kind, that trained
    body alone; else the fixed body on 16-pixel cells (FIXED) for `fast` and wherever there
    is no target, and on each of FIXED_CELLS for `compact` and `max` with a target (the
    best file wins)."""
    if opt.width or opt.depth or opt.body:
        base = Arch(cell=8, width=TRAINED_WIDTH if pixels >= FAST_WIDE_PIXELS else 24)
        return [
            replace(
                base,
                width=opt.width or base.width,
                depth=opt.depth or base.depth,
                body=opt.body or base.body,
            )
        ]
    if opt.preset == "fast" or not search:
        return [FIXED]
    return [Arch(cell=c, fixed=True) for c in FIXED_CELLS]


def _cell(out: Compressed) -> int:
    """The cell side of a coefficient file's network (pixels)."""
    assert isinstance(out.net, MultiHeadINR)
    return out.net.cfg.cell[0]


def compress_coefficients(pixels, mode, opt, progress, should_stop) -> Compressed:
    return compress_sweep(
        pixels, mode, opt, [target_of(opt, *pixels.shape[1:])], progress, should_stop
    )[0]


def _network(arch: Arch, h: int, w: int, c: int, seed: int) -> MultiHeadINR:
    """The network of `arch` for an image of h×w and c channels: the cosine body (a cosine
    for each pixel of a cell but the constant) or a trained body's start (torch's random
    biases: a well-conditioned basis)."""
    assert arch.cell is not None  # coefficient storage codes cells
    heads = grid(h, w, arch.cell)
    width, depth, body = arch.width, arch.depth, arch.body
    if arch.fixed:
        width = math.ceil(h / heads[0]) * math.ceil(w / heads[1]) - 1
        depth, body = 1, "cosine"
    return build_network(
        "multihead",
        (h, w),
        c,
        heads=heads,
        width=width,
        depth=depth,
        alpha=width,
        body=body,
        seed=seed,
        init="fixed" if arch.fixed else "torch",
    )


def fit_coders(
    pixels: Tensor,
    mode: str,
    options: Options,
    search: bool,
    progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    archs: list[Arch] | None = None,
) -> list["CoefficientCoder"]:
    """A coder for each candidate architecture (`candidates`, or `archs`) in the image's
    colour space, ready to quantize and code at any step: a fixed body as it is, a trained
    one fitted first (`options.time_budget_s`, `max`: its default budget, shared among the
    trained ones)."""
    c, h, w = pixels.shape
    colour, mean = colour_transform(pixels)
    coded_pixels = to_coded_colour(pixels, colour, mean)
    steps = body_steps(options)
    if archs is None:
        archs = candidates(options, search, h * w)

    def rgb_progress(p: Progress) -> None:  # previews back in the image's own colours
        if progress is None:
            return
        coded = p.image
        if coded is not None:
            p = replace(
                p,
                image=lambda: (
                    torch.einsum("ij,jhw->ihw", colour, coded()) + mean[:, None, None]
                ).clamp(0, 1),
            )
        progress(p)

    total = fit_budget(options)
    coders: list[CoefficientCoder] = []
    trained = sum(not a.fixed for a in archs)
    budget = None if total is None or not trained else total / trained
    for arch in archs:
        if coders and should_stop is not None and should_stop():
            break
        net = _network(arch, h, w, c, options.seed)
        if not arch.fixed:
            cfg = FitConfig(steps=steps, lr=3e-3, time_budget_s=budget)
            net.to(options.device)
            fitted = fit_projection(
                net, coded_pixels.to(options.device), cfg, rgb_progress, should_stop
            )
            net.cpu()
        coders.append(CoefficientCoder(net, coded_pixels, pixels, mode, colour, mean))
        coders[-1].train_steps = None if arch.fixed else fitted.steps
    return coders


def to_coded_colour(pixels: Tensor, colour: Tensor, mean: Tensor) -> Tensor:
    """[C, H, W] in the image's coded colour space (colour_transform's orthonormal `colour`
    and `mean`: pixels = colour @ coded + mean)."""
    return torch.einsum("ji,jhw->ihw", colour, pixels - mean[:, None, None])


def body_steps(options: Options) -> int:
    """Steps a trained body (an explicit width, depth or body kind) is fitted for."""
    if options.steps is not None:
        return options.steps
    return {"fast": 60, "max": MAX_STEPS}.get(options.preset, 300)


def fit_budget(options: Options) -> float | None:
    """The seconds all of a compression's fits may take (None: no limit)."""
    if options.time_budget_s is None and options.preset == "max":
        return MAX_BUDGET_S
    return options.time_budget_s


def compress_sweep(
    pixels: Tensor,
    mode: str,
    options: Options,
    targets: list[Target],
    progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[Compressed]:
    """Coefficient storage at several targets ({"psnr": dB} | {"max_bytes": n} | {}) with one
    coder per candidate architecture (and, for `max`, per restoration-filter size): the
    best file for each target."""
    start = time.perf_counter()
    h, w = pixels.shape[1:]
    search = any(targets)
    archs = candidates(options, search, h * w)
    coders = fit_coders(pixels, mode, options, search, progress, should_stop, archs)
    if options.preset == "max" and search:
        coders += [coder.with_kernel(k) for coder in coders for k in MAX_KERNELS]
    files, total = 0, len(coders) * len(targets)

    def coded(out: Compressed) -> None:  # a progress report a file (the fixed body has no fit)
        nonlocal files
        files += 1
        if progress is not None:
            progress(
                Progress(
                    files,
                    total,
                    10 ** (-out.psnr / 10),
                    out.psnr,
                    time.perf_counter() - start,
                    lambda: render(out.net, (h, w)).float() / 255,
                    phase="coding",
                    detail=f"cell {_cell(out)} px",
                )
            )

    outs = []
    for target in targets:
        coder, out = best_coder(coders, target, should_stop, coded)
        out.train_steps = coder.train_steps  # a trained body's (the stage's replace them)
        if stage_seconds(options) and not (should_stop is not None and should_stop()):
            out = _staged(coder, out, target, options, progress, should_stop)
        outs.append(out)
    for out in outs:  # the files compared on the way were measured without it
        out.ssim = ssim(render(out.net, (h, w)), pixels)
        out.seconds = time.perf_counter() - start
    return outs


# bytes a stage of synthesis.HIDDEN channels is assumed to take before it is trained (a byte
# target's first step; a wider one in proportion)
STAGE_BYTES_GUESS = 400
# the stage's width by the file's size: a wider stage gains more where the file is large and
# costs ~420 bytes more, which a small file cannot pay (benchmarks/results/stage_probe.md)
STAGE_HIDDEN_WIDE = 16
STAGE_WIDE_BYTES = 24_000  # files of at least this many bytes (without the stage) get it
# the stage reads the deblocked cells (True) or the cells as coded, in place of the
# deblocking as of the restoration filter (False)
STAGE_ON_DEBLOCKED = True
# once the stage is trained, the coefficients are quantized again for what it makes of them
# (`CoefficientCoder.requantized_for`, each of these kinds: "whole" and "shrunk", one
# Gauss–Newton step, `for_stage`; "descended", DESCENT_STEPS of gradient descent with the
# rate, `descended`), the stage trained further on each such decode for
# STAGE_REQUANT_SHARE of its budget, and the best file kept (benchmarks/
# stage_requant_probe.py, stage_descent_probe.py; () turns it off)
STAGE_REQUANT: tuple[str, ...] = ("descended", "shrunk")
STAGE_REQUANT_SHARE = 0.1
# then, where one of them beat the file before it, that one's kind once more from its own
# decode and further-trained stage, with the same share (0: not): a second round saved
# +4.2 … +5.2 % more at 0.5 bpp and above, and lost where the shrunk kind wins
# (benchmarks/results/stage_requant_probe.md); the better file is kept. 2 since 2026-12-07
# (fourteenth session): a third round from the best file so far, the better file kept again; at
# today's ~20,000 stage steps it saved more than two rounds at 7 of 8 points
# (results/stage_descent_probe_rounds_b.md), and end to end −0.30 % on eight Kodak photos
# (better on 7; kodim15 +0.30 %; docs/codec.md, "A third round")
STAGE_REQUANT_AGAIN = 2
# True: the stage's first training starts from the features of a stage trained on other
# photos' decodes (model/stage_prior.py) where there is one for its width, not from Stage's
# own start. Off: +0.65 points of rate saved at 15,000 steps of the first training
# (results/stage_start_probe.md), but end to end, at equal steps (26,000 a target) on six
# photos, −0.02 % (kodim02 +0.76 … astronaut −0.41 %; results/codec_stage_prior_steps_*.md):
# the rounds after the first training take back its head start (docs/codec.md, "A shipped
# start, again")
STAGE_FROM_PRIOR = False
# `descended`'s steps, step size and rate weight (× RDOQ_LAMBDA): +2.8 % of rate saved on
# average at eight points of four photos against +1.9 % for the one Gauss–Newton step
# ("whole"), more at seven of them (benchmarks/results/stage_descent_probe_c.md); a weight
# of 1 drops too much (−0.6 … −1.0 dB: RDOQ charges the same bits again), 0 adds bytes
# (stage_descent_probe.md)
DESCENT_STEPS = 10
DESCENT_LR = 0.5
DESCENT_RATE = 0.25
# … and whether the cells' constant terms descend too (their gradient step, no rate; they are
# coded on their own, and the residuals' prediction is made from them as quantized): +4.2 %
# of rate saved against +3.5 % at eight points of four photos, better at seven
# (benchmarks/results/stage_descent_probe_dc.md); end to end −0.75 % BD-rate on eight photos
# (results/codec_stage_descent_dc.md)
DESCENT_DC = True


def stage_seconds(options: Options) -> float | None:
    """The seconds the trained stage may train for a target (None: no stage)."""
    if options.preset not in STAGE_SECONDS or options.width or options.depth or options.body:
        return None
    if options.steps == 0:
        return None
    return options.time_budget_s or STAGE_SECONDS[options.preset]


def stage_hidden(nbytes: int) -> int:
    """The trained stage's hidden channels for a file of `nbytes` bytes without it."""
    return STAGE_HIDDEN_WIDE if nbytes >= STAGE_WIDE_BYTES else synthesis.HIDDEN


def _staged(
    coder: "CoefficientCoder",
    plain: Compressed,
    target: Target,
    options: Options,
    progress: Callable[[Progress], None] | None,
    should_stop: Callable[[], bool] | None,
) -> Compressed:
    """`plain` (the best untrained file for `target`, from `coder`) against the same coder
    with a trained stage in place of its linear restoration filter: trained on the decode
    (without the filter) at the step the target is expected to need with it, then the step
    searched again with the stage in the loop. Without a target the stage must reach
    `plain`'s PSNR in fewer bytes. The better file is returned; its `stage` records what
    was trained and whether it was kept.

    In place of the filter, not after it: the filter's ~230 bytes go, and the stage learns
    what the filter did (kodim23 and coffee at 0.2 bpp, 45 s: +0.45 and +0.59 dB over the
    filtered file for 122 and 114 bytes more, against +0.51 and +0.53 dB for 347 and 343
    bytes after the filter; `python -m benchmarks.stage_probe`)."""
    search = target or Target(psnr=plain.psnr)
    trained = copy.copy(coder)  # the stage replaces the linear restoration filter
    trained.post_filter, trained._coded = False, None
    if not STAGE_ON_DEBLOCKED:
        trained.tools = replace(coder.tools, deblock=False)
    hidden = stage_hidden(plain.bytes)
    step = _stage_step(trained, plain, target, hidden)
    started = time.perf_counter()
    share, last = 1 - STAGE_REQUANT_SHARE * requant_parts(), not STAGE_REQUANT
    args = (coder.pixels, options, hidden, progress, should_stop)
    init = stage_prior.load(hidden, coder.pixels.shape[0]) if STAGE_FROM_PRIOR else None
    stage, steps = _train_stage(trained.decoded(step), *args, share=share, init=init, last=last)
    training_s = time.perf_counter() - started
    trained.stage, trained._coded = stage, None
    out = trained.search(search, DEFAULT_STEP, with_ssim=False)
    out, stage, requantized, more, more_s = _requantized(
        trained, out, search, step, options, hidden, progress, should_stop, steps
    )
    steps, training_s = steps + more, training_s + more_s
    if target:
        keep = out.met is not False and better(out, plain, target)
    else:  # the default quality in fewer bytes; the file reports no target
        keep = bool(out.met) and out.bytes < plain.bytes
        out.target, out.met = {}, None
    info = {
        "steps": steps,
        "seconds": round(time.perf_counter() - started, 2),
        "steps_per_s": round(steps / max(training_s, 1e-9), 1),  # its training's
        "bytes": len(stage_bytes(stage)),
        "hidden": hidden,
        "kept": bool(keep),
        "requantized": requantized,  # for_stage's kind of the file kept, or None
        "multiplications": stage.multiplications(),
        "with": {"bytes": out.bytes, "psnr": round(out.psnr, 3)},
        "without": {"bytes": plain.bytes, "psnr": round(plain.psnr, 3)},
    }
    result = out if keep else plain
    result.stage = info
    result.train_steps = steps
    return result


def _stage_step(
    trained: "CoefficientCoder", plain: Compressed, target: Target, hidden: int
) -> float:
    """The step the stage is trained at: `plain`'s, or for a byte target a coarser one that
    leaves room for a stage of `hidden` channels' bytes."""
    step = plain.coded.step
    assert step is not None  # a coefficient file has one
    if "max_bytes" in target:  # room for the stage's bytes: a coarser step
        room = STAGE_BYTES_GUESS * hidden // synthesis.HIDDEN
        guess: Target = {**target, "max_bytes": max(1, target["max_bytes"] - room)}
        step = trained.search(guess, DEFAULT_STEP, with_ssim=False).coded.step
        assert step is not None
    return step


def requant_parts() -> int:
    """The further trainings of the stage on requantized coefficients, at most (each
    STAGE_REQUANT_SHARE of its budget)."""
    return len(STAGE_REQUANT) + (STAGE_REQUANT_AGAIN if STAGE_REQUANT else 0)


def _requantized(
    trained: "CoefficientCoder",
    out: Compressed,
    search: Target,
    step: float,
    options: Options,
    hidden: int,
    progress: Callable[[Progress], None] | None,
    should_stop: Callable[[], bool] | None,
    done: int,
) -> tuple[Compressed, synthesis.Stage, str | None, int, float]:
    """`out` (`trained`'s file with its stage, trained `done` steps) against the files of
    the coefficients quantized again for that stage (`CoefficientCoder.for_stage`, each of
    STAGE_REQUANT's kinds), the stage trained on with each for STAGE_REQUANT_SHARE of its
    budget; then STAGE_REQUANT_AGAIN times the best of them quantized again in the same way
    for its own further-trained stage — or, where none beat `out`, `out`'s stage trained
    on — with the same share, the better file kept: (the best file, its stage, its kind —
    one of STAGE_REQUANT's, with " ×2" or " ×3" after further rounds that paid, or None —,
    the steps and seconds of that further training)."""
    assert trained.stage is not None
    stage, at = trained.stage, out.coded.step or step  # where the search put the file
    steps, seconds, parts = 0, 0.0, requant_parts()
    rest = (trained.pixels, search, options, hidden, progress, should_stop)

    def attempt(
        coder: CoefficientCoder, init: synthesis.Stage, kind: str | None, at: float
    ) -> tuple[CoefficientCoder, synthesis.Stage, Compressed]:
        nonlocal steps, seconds, parts
        parts -= 1
        other, tuned, file, more, took = _tuned(
            coder, init, kind, at, *rest, done=done + steps, last=parts == 0
        )
        steps, seconds = steps + more, seconds + took
        return other, tuned, file

    def stopped() -> bool:
        return should_stop is not None and should_stop()

    best: tuple[CoefficientCoder, str | None] = (trained, None)  # the winner, its kind
    for kind in STAGE_REQUANT:
        if stopped():
            break
        other, tuned, candidate = attempt(trained, trained.stage, kind, at)
        if better(candidate, out, search):
            out, stage, best = candidate, tuned, (other, kind)
    rounds = 1
    for _ in range(STAGE_REQUANT_AGAIN if STAGE_REQUANT else 0):
        if stopped():
            break
        other, tuned, candidate = attempt(best[0], stage, best[1], out.coded.step or at)
        if better(candidate, out, search):
            out, stage, best = candidate, tuned, (other, best[1])
            rounds += best[1] is not None
    chosen = None if best[1] is None else best[1] + ("" if rounds == 1 else f" ×{rounds}")
    return out, stage, chosen, steps, seconds


def _tuned(
    coder: "CoefficientCoder",
    init: synthesis.Stage,
    kind: str | None,
    at: float,
    pixels: Tensor,
    search: Target,
    options: Options,
    hidden: int,
    progress: Callable[[Progress], None] | None,
    should_stop: Callable[[], bool] | None,
    done: int,
    last: bool,
) -> tuple["CoefficientCoder", synthesis.Stage, Compressed, int, float]:
    """`coder` quantized for `init` at step `at` (`kind`: one of STAGE_REQUANT's; None: as
    it is),
    the stage trained on from `init` on its decode for STAGE_REQUANT_SHARE of its budget
    (`done` and `last` as `_train_stage`'s): (that coder with the stage, the stage, its file
    for `search`, the steps, the seconds of the training)."""
    other = coder if kind is None else coder.requantized_for(kind, init, at)
    started = time.perf_counter()
    tuned, steps = _train_stage(
        other.decoded(at),
        pixels,
        options,
        hidden,
        progress,
        should_stop,
        share=STAGE_REQUANT_SHARE,
        init=init,
        done=done,
        last=last,
    )
    seconds = time.perf_counter() - started
    other = copy.copy(other)  # `coder` keeps its own stage
    other.stage, other._coded = tuned, None
    return other, tuned, other.search(search, DEFAULT_STEP, with_ssim=False), steps, seconds


def _train_stage(
    decoded: Tensor,
    pixels: Tensor,
    options: Options,
    hidden: int,
    progress: Callable[[Progress], None] | None,
    should_stop: Callable[[], bool] | None,
    share: float = 1.0,
    init: synthesis.Stage | None = None,
    done: int = 0,
    last: bool = True,
) -> tuple[synthesis.Stage, int]:
    """A stage of `hidden` channels trained on `decoded` for `share` of the preset's budget
    (`stage_seconds`, STAGE_STEPS or `options.steps`), from `init` if given, its progress
    reported about once a second with the PSNR and a preview of its output, its steps
    counted after `done` of an earlier part (`last`: no part follows). (the stage, its
    steps)"""
    full = stage_seconds(options)
    assert full is not None
    full_cap = options.steps or STAGE_STEPS[options.preset]

    def report(steps: int, elapsed: float, net: synthesis.Stage, end: bool = False) -> None:
        if progress is None:
            return
        with torch.no_grad():
            out = net(decoded[None].to(options.device))[0].clamp(0, 1).cpu()
        q = psnr(out, pixels)
        shown = done + steps
        # the steps the whole budget will have taken: its cap, or fewer where the time ends
        # it first
        rate = steps / max(elapsed, 1e-9)
        total = shown if end and last else min(full_cap, max(shown + 1, round(rate * full)))
        progress(Progress(shown, total, 10 ** (-q / 10), q, elapsed, lambda: out, "stage"))

    start = time.perf_counter()
    stage, steps = synthesis.train(
        decoded,
        pixels,
        full * share,
        max(1, round(full_cap * share)),
        hidden=hidden,
        seed=options.seed,
        device=options.device,
        progress=report,
        should_stop=should_stop,
        init=init,
    )
    report(steps, time.perf_counter() - start, stage, end=True)  # where it ended
    return stage, steps


def best_coder(
    coders: list["CoefficientCoder"],
    target: Target,
    should_stop: Callable[[], bool] | None = None,
    coded: Callable[[Compressed], None] | None = None,
) -> tuple["CoefficientCoder", Compressed]:
    """The best of each coder's file for `target` (`coded` is told of each file), and its
    coder; once `should_stop` says so, the best so far."""
    best: tuple[CoefficientCoder, Compressed] | None = None
    for coder in coders:
        if best is not None and should_stop is not None and should_stop():
            break
        out = coder.search(target, DEFAULT_STEP, with_ssim=False)
        if coded is not None:
            coded(out)
        if best is None or better(out, best[1], target):
            best = (coder, out)
    assert best is not None
    return best


class CoefficientCoder:
    """Quantizes a body-trained network's cell coefficients with a step and codes them."""

    def __init__(
        self,
        net: MultiHeadINR,
        coded_pixels: Tensor,
        pixels: Tensor,
        mode: str,
        colour: Tensor,
        mean: Tensor,
        body_quantization: Quantization = "int8",
    ):
        self.net, self.pixels, self.mode = net, pixels, mode
        self.colour, self.mean, self.bq = colour, mean, body_quantization
        self.deadzone = DEADZONE
        self.rdoq = RDOQ_LAMBDA  # rate–distortion-optimised quantization's λ (0: off)
        self.rdoq_passes = RDOQ_PASSES
        self._rdoq_last: tuple = (None, None, None)
        # (settings, image, deblocking, the plain reconstruction)
        self._deblock_last: tuple = (None, None, None, None)
        self._prediction_last: tuple = (None, None)  # (step, deadzone), its prediction
        self.kernel = postfilter.KERNEL  # the restoration filter's size
        # format 3 (where the network fits it): a restoration filter learnt per file
        # (model/codec/postfilter.py) and every coding tool (codec.Tools)
        h, w = pixels.shape[1:]
        grid_ok = net.cfg.heads == (-(-h // net.cfg.cell[0]), -(-w // net.cfg.cell[1]))
        self.post_filter = grid_ok and fits_compact(net.cfg, mode)
        self.tools = Tools(
            version=STORAGE_VERSION["coefficients"],
            klt=self.post_filter,
            dc_interp=DC_INTERPOLATION and self.post_filter and net.cfg.init == "fixed",
            chroma=CHROMA_PREDICTION
            and self.post_filter
            and net.cfg.init == "fixed"
            and mode == "RGB",
            deblock=DEBLOCKING and self.post_filter,
            frequency_context=FREQUENCY_CONTEXT and self.post_filter and net.cfg.init == "fixed",
        )
        # the trained stage after the filter (model/synthesis.py; `_staged`), if any
        self.stage: synthesis.Stage | None = None
        self.train_steps: int | None = None  # a trained body's steps (None: the cosine body)
        # the last (step, settings)'s filter and file
        self._coded: tuple[tuple, Tensor | None, bytes, Tensor, tuple | None] | None = None
        self._quantize_body()
        self._cells = split_cells(prepare_target(net, coded_pixels).double(), *net.cfg.heads)
        self._bases: dict[bool, tuple[Tensor, Tensor]] = {}

    def with_kernel(self, kernel: int) -> "CoefficientCoder":
        """The same coder (network, basis) with a restoration filter of another size."""
        other = copy.copy(self)
        other.kernel, other._coded = kernel, None
        return other

    @property
    def _klt_on(self) -> bool:
        """Whether the file codes in the Karhunen–Loève order (format 3 only)."""
        return self.tools.klt and self.tools.version >= 3

    def _basis(self) -> tuple[Tensor, Tensor]:
        """(the decoder's orthonormal basis [n, k], the coefficients [k, O] in it)."""
        if self._klt_on not in self._bases:
            basis = coding_basis(self.net, self._klt_on)
            self._bases[self._klt_on] = (basis, basis.T @ self._cells)
        return self._bases[self._klt_on]

    @property
    def basis(self) -> Tensor:
        return self._basis()[0]

    def for_stage(
        self, stage: synthesis.Stage, step: float, shrink: bool = False, beta: float = 1.0
    ) -> "CoefficientCoder":
        """A copy of this coder (without a stage) that quantizes, in place of the image's AC
        coefficients, those of the image the decode at `step` should have been for `stage`'s
        output to be the image, to first order: with d the decode and J the stage's
        Jacobian there, ‖stage(d') − image‖² ≈ ‖d' − t‖² + const near d, for

            t = d − Jᵀ(stage(d) − image)

        (a Gauss–Newton step; a stage that is the identity gives t = the image). The
        quantizer — the deadzone, RDOQ's bits, the chroma rows — then spends the bits where
        the stage's output needs them: a coefficient the stage restores anyway is cheaper
        to drop. The constant terms stay the image's (the DC prediction reads them).
        Overfitted codecs (Cool-chic, C3) train their latents through the synthesis in
        this way; here one step of it, with the codec's own quantizer
        (benchmarks/stage_requant_probe.py). `shrink`: t's coefficient only where it has
        the image's sign and a smaller magnitude (0 where its sign differs, else the
        image's), so that no integer grows: what the stage restores is dropped, and what it
        would want amplified is not paid for. `beta`: a shorter step (t = d − β·Jᵀ…)."""
        d = self.decoded(step).float().clone().requires_grad_(True)
        err = stage(d[None])[0] - self.pixels.float()
        (grad,) = torch.autograd.grad(0.5 * (err * err).sum(), d)  # Jᵀ(stage(d) − image)
        t = (d - beta * grad).detach().double()
        coded = to_coded_colour(t, self.colour.double(), self.mean.double())
        coef = self.basis.T @ split_cells(prepare_target(self.net, coded), *self.net.cfg.heads)
        if shrink:
            c = self.coef
            agree = torch.sign(coef) == torch.sign(c)
            coef = torch.where(agree & (coef.abs() < c.abs()), coef, torch.where(agree, c, 0.0))
        return self._quantizing(coef)

    def descended(
        self,
        stage: synthesis.Stage,
        step: float,
        steps: int = DESCENT_STEPS,
        rate: float = DESCENT_RATE,
        lr: float = DESCENT_LR,
        dc: bool = DESCENT_DC,
    ) -> "CoefficientCoder":
        """A copy of this coder (without a stage) that quantizes, in place of the image's AC
        coefficients, values v moved by `steps` steps of gradient descent (step size `lr`)
        from the file's own decoded values at `step` on

            ½‖stage(decode(v)) − image‖² + ½ · rate·RDOQ_LAMBDA · step² · bits(v)

        — decode(v): the cells' cosine sum turned back to the image's colours, plus what the
        deblocking and the 8-bit rounding added to the file's decode (held); bits(v): what
        the context model's table for each integer of the file (`entropy.table_indices`)
        charges for v's residual, linear between integers; each step a gradient step on the
        first term, then the rate's (a proximal step: each residual moves towards zero by
        what its bits' slope asks, never past it). Where `for_stage` takes one
        Gauss–Newton step without the rate (its first step, at `lr` = 1 and `rate` = 0,
        is nearly t), this takes several, as overfitted codecs (Cool-chic, C3) train their
        latents through the synthesis, priced as the entropy coder will price them; the
        quantizer (deadzone, RDOQ, chroma rows) then codes v
        (benchmarks/stage_descent_probe.py). `dc`: the constant terms descend too (a plain
        gradient step: their bits are not the context model's tables'), else they stay the
        image's."""
        q = self.quantized(step)
        fixed = self.predicted(step)  # what the residuals are against
        start, fixed_f = (q.double() * step + fixed).float(), fixed.float()
        image = self.image_of
        with torch.no_grad():
            held = self.decoded(step) - image(start)  # the deblocking and 8-bit rounding
        bits_of = self._magnitude_bits(q)  # [AC integers, 64]
        target = self.pixels.float()
        v = start
        for _ in range(steps):
            v = v.detach().requires_grad_(True)
            err = stage((image(v) + held)[None])[0] - target  # row 0 is start's unless dc
            (grad,) = torch.autograd.grad(0.5 * (err * err).sum(), v)
            with torch.no_grad():  # then the rate's step, towards the residual's zero only
                r = (v - lr * grad - fixed_f)[1:] / step
                a = r.abs().reshape(-1).clamp(max=62.999)
                lo = a.floor().long()[:, None]
                slope = bits_of.gather(1, lo + 1)[:, 0] - bits_of.gather(1, lo)[:, 0]
                shrink = (lr * 0.5 * rate * RDOQ_LAMBDA * slope.clamp_min(0)).reshape(r.shape)
                r = torch.sign(r) * (r.abs() - shrink).clamp_min(0)
                v = torch.cat([v[:1] - lr * grad[:1] if dc else v[:1], fixed_f[1:] + r * step])
        return self._quantizing(v.detach().double(), keep_dc=not dc)

    def _magnitude_bits(self, q: Tensor) -> Tensor:
        """[AC integers of `q`, 64] the bits of a magnitude 0 … 63 under each one's table
        (`entropy.table_indices`: as the encoder estimates them from `q` itself)."""
        c, (hy, hx) = len(self.mode), self.net.cfg.heads
        ints = q.numpy().astype(np.int64).reshape(q.shape[0], c, hy, hx)
        tables, _ = entropy.table_indices(ints, self.tools.context_model(self.net.cfg.cell))
        rows = torch.from_numpy(tables[1:].reshape(-1))
        return torch.from_numpy(entropy.magnitude_bits()).float()[rows]

    def requantized_for(self, kind: str, stage: synthesis.Stage, step: float) -> "CoefficientCoder":
        """This coder quantized again for `stage` at `step`, by one of STAGE_REQUANT's
        kinds: "whole" and "shrunk" (`for_stage`), "descended" (`descended`)."""
        if kind == "descended":
            return self.descended(stage, step)
        if kind not in ("whole", "shrunk"):
            raise ValueError(f"unknown requantization {kind!r}")
        return self.for_stage(stage, step, kind == "shrunk")

    def _quantizing(self, coef: Tensor, keep_dc: bool = True) -> "CoefficientCoder":
        """A copy of this coder (without a stage) whose quantizer codes `coef` [k, O] in
        place of the image's coefficients, but for the constant terms where `keep_dc` (row
        0: the image's)."""
        coef = coef.clone()
        if keep_dc:
            coef[0] = self.coef[0]
        other = copy.copy(self)
        other._bases = {self._klt_on: (self.basis, coef)}
        other.stage, other._coded = None, None
        other._rdoq_last = (None, None, None)
        other._deblock_last = (None, None, None, None)
        other._prediction_last = (None, None)
        return other

    @property
    def coef(self) -> Tensor:
        return self._basis()[1]

    def _quantize_body(self) -> None:
        with torch.no_grad():
            for name, p in self.net.named_parameters():
                if name.startswith("body."):
                    p.copy_(dequantize(name, quantize(name, p, self.bq)))

    def prediction(self, step: float) -> Tensor | None:
        """[k, O] what the coefficients at `step` are coded as residuals against (format3's
        `dc_interpolation` of the quantized constant terms), or None (`tools.dc_interp` off).
        The constant terms are quantized on their own (RDOQ leaves them as they are), so the
        decoder, which reads them first, computes the same prediction."""
        if not self.tools.dc_interp:
            return None
        if self.net.cfg.init != "fixed":
            raise ValueError("DC interpolation needs the cosine body")
        key = (step, self.deadzone)
        if self._prediction_last[0] != key:  # `quantized` and `reconstruction` share it
            dc = self._deadzone(self.coef[:1] / step)[0]
            shape = (len(self.mode), *self.net.cfg.heads)
            dc_ints = dc.numpy().astype(np.int64).reshape(shape)
            p = format3.dc_interpolation(dc_ints, step, self.net.cfg.cell)
            self._prediction_last = (key, torch.from_numpy(p))
        return self._prediction_last[1]

    def _deadzone(self, c: Tensor) -> Tensor:
        return torch.sign(c) * torch.floor(c.abs() + 0.5 - self.deadzone).clamp_min(0)

    def quantized(self, step: float) -> Tensor:
        """The integers a file at `step` holds (with `tools.dc_interp`, the residuals
        against `prediction` but for row 0; with `tools.chroma`, channels ≥ 1 also against
        format3.ChromaPredictor's prediction from channel 0)."""
        prediction = self.prediction(step)
        c = (self.coef if prediction is None else self.coef - prediction) / step
        q = self._deadzone(c)
        rdoq = self.rdoq if self.tools.context_coding else 0.0
        if not rdoq and not self.tools.chroma:
            return q
        key = (step, self.deadzone, rdoq, self.rdoq_passes, self._klt_on, self.tools)
        if self._rdoq_last[0] != key:  # a step's file and its quality share one choice
            shape = (c.shape[0], len(self.mode), *self.net.cfg.heads)
            scaled = c.double().numpy().reshape(shape)
            ints = q.numpy().astype(np.int64).reshape(shape)
            model = self.tools.context_model(self.net.cfg.cell)
            if rdoq:
                ints = entropy.rd_quantize(scaled, ints, rdoq, self.rdoq_passes, model)
            chroma = None
            if self.tools.chroma:
                predictor = format3.ChromaPredictor(shape[1:], step)
                ints, terms = entropy.rd_quantize_predicted(
                    scaled, ints, rdoq, self.deadzone, predictor, model
                )
                chroma = torch.from_numpy(terms.reshape(q.shape))
            self._rdoq_last = (key, torch.from_numpy(ints.reshape(q.shape)).to(q.dtype), chroma)
        return self._rdoq_last[1]

    def predicted(self, step: float) -> Tensor:
        """[k, O] what the decoder adds to the integers × `step` at `step`: `prediction`
        and `chroma` (float64; zeros where neither tool is on)."""
        out = torch.zeros(self.coef.shape, dtype=torch.float64)
        for extra in (self.prediction(step), self.chroma(step)):
            if extra is not None:
                out = out + extra
        return out

    def chroma(self, step: float) -> Tensor | None:
        """[k, O] the chroma prediction the decoder adds at `step` (format3.chroma_prediction
        of `quantized`, computed with it), or None (`tools.chroma` off)."""
        if not self.tools.chroma:
            return None
        self.quantized(step)
        return self._rdoq_last[2]

    def encode(self, step: float) -> bytes:
        return self._code(step)[2]

    def _encode(
        self, step: float, filters: Tensor | None, deblocking: tuple[int, int] | None
    ) -> bytes:
        h, w = self.pixels.shape[1:]
        quant: Quantization = "int8" if self.bq == "int8" else "fp16"
        coded = Coded(
            h,
            w,
            self.mode,
            "coefficients",
            quant,
            step=float(step),
            colour=self.colour.double().tolist(),
            colour_mean=self.mean.double().tolist(),
        )
        q = self.quantized(step).numpy().astype(np.int64)
        tools = replace(self.tools, klt=self._klt_on)
        return encode_coefficients(
            self.net, coded, q, self.bq, "lzma", tools, filters, self.stage, deblocking
        )

    def filters(self, step: float) -> Tensor | None:
        """The restoration filter of the reconstruction at `step`, or None where it does
        not pay for its bytes (small files): its PSNR gain must beat what the same bytes
        would buy in a finer step, FILTER_DB_PER_OCTAVE dB per doubling of the file."""
        return self._code(step)[1]

    def _code(self, step: float) -> tuple[tuple, Tensor | None, bytes, Tensor, tuple | None]:
        """((step, settings), its filter or None, its file, the image the filter is applied
        to, the deblocking setting that made it or None), computed once a step (and again
        when the ablation changes a setting)."""
        key = (
            step,
            self.tools,
            self.deadzone,
            self.rdoq,
            self.post_filter,
            self.kernel,
            id(self.stage),
        )
        if self._coded is None or self._coded[0] != key:
            image, setting = self.deblocked(step)
            f = None
            if self.post_filter and self.tools.version >= 3:
                plain = self._deblock_last[3]  # the reconstruction `deblocked` started from
                f, image, setting = self._with_filter(step, image, setting, plain)
            self._coded = (key, f, self._encode(step, f, setting), image, setting)
        return self._coded

    def _with_filter(
        self, step: float, image: Tensor, setting: tuple[int, int] | None, plain: Tensor
    ) -> tuple[Tensor | None, Tensor, tuple[int, int] | None]:
        """(the restoration filter at `step` or None, the image it filters, the deblocking
        setting that made that image or None): the best for PSNR of the image with and
        without a filter, each filter priced at what its bytes would buy in a finer step
        (FILTER_DB_PER_OCTAVE dB per doubling of the file: small files go without). The
        deblocking was chosen on the cells alone (`deblocked`), so the plain cells are
        tried too (`plain`): a filter may undo more of their error than of the deblocked
        ones'."""
        tried = [(image, setting)]
        if setting is not None:
            tried.append((plain, None))
        options: list[tuple[float, Tensor | None, Tensor, tuple[int, int] | None]] = []
        for rec, s in tried:
            options.append((psnr(rec, self.pixels), None, rec, s))
            f = postfilter.solve(rec, self.pixels, self.kernel, SOLVE_STRIDE)
            data = self._encode(step, f, s)
            extra = len(filter_bytes(f, len(self.mode))[0])  # the file without it is shorter so
            price = FILTER_DB_PER_OCTAVE * math.log2(1 + extra / (len(data) - extra))
            options.append((psnr(postfilter.apply(rec, f), self.pixels) - price, f, rec, s))
        _, chosen, rec, s = max(options, key=lambda o: o[0])  # the first of equals: no filter
        return chosen, rec, s

    def quality(self, step: float) -> float:
        """PSNR of the reconstruction at `step` (with its restoration filter and trained
        stage, if it has them), computed from the coefficients directly (the decoder's
        float32 render may differ in the last rounding of a few pixels)."""
        if self.stage is None:
            return psnr(self._filtered(step), self.pixels)
        with torch.no_grad():
            out = self.stage(self.decoded(step)[None])[0]
        return psnr(out.clamp(0, 1), self.pixels)

    def decoded(self, step: float) -> Tensor:
        """What the decoder feeds the trained stage at `step`: the reconstruction with its
        restoration filter, rounded to 8 bits (float32 [C, H, W] in [0, 1])."""
        return self._filtered(step).float().clamp(0, 1).mul(255).round().div(255)

    def _filtered(self, step: float) -> Tensor:
        """The reconstruction at `step` with its deblocking and restoration filter, if it
        has them."""
        _, filters, _, image, _ = self._code(step)
        return image if filters is None else postfilter.apply(image, filters)

    def deblocked(self, step: float) -> tuple[Tensor, tuple[int, int] | None]:
        """(the reconstruction at `step` as the decoder's deblocking leaves it — rounded to
        8 bits and deblocked with the best of deblock.RAMPS × THRESHOLDS for PSNR — and
        that setting), or (the reconstruction, None) where no setting beats the plain
        reconstruction or `tools.deblock` is off."""
        key = (step, self.tools, self.deadzone, self.rdoq, self.rdoq_passes, self._klt_on)
        if self._deblock_last[0] == key:
            return self._deblock_last[1], self._deblock_last[2]
        rec = self.reconstruction(step)
        best: tuple[float, Tensor, tuple[int, int] | None] = (psnr(rec, self.pixels), rec, None)
        if self.tools.deblock:
            u8 = rec.clamp(0, 1).mul(255).round().to(torch.uint8).numpy()
            for ramp in deblock.RAMPS:
                for most in deblock.THRESHOLDS:
                    if not deblock.valid(ramp, most, self.net.cfg.cell):
                        continue
                    image = torch.from_numpy(deblock.deblock_u8(u8, self.net.cfg.cell, ramp, most))
                    image = image.double() / 255
                    db = psnr(image, self.pixels)
                    if db > best[0]:
                        best = (db, image, (ramp, most))
        self._deblock_last = (key, best[1], best[2], rec)
        return best[1], best[2]

    def reconstruction(self, step: float) -> Tensor:
        """The image [C, H, W] the quantized coefficients at `step` decode to (float64)."""
        return self.image_of(self.quantized(step) * step + self.predicted(step))

    def image_of(self, coef: Tensor) -> Tensor:
        """The image [C, H, W] that coefficient values `coef` [k, O] (after the decoder's
        predictions are added) decode to, in `coef`'s dtype: the cells' sum in the basis,
        in the coded colour space, turned back to the image's colours."""
        like = coef.dtype
        cells = self.basis.to(like) @ coef  # [n, O], coded colour space
        c, h, w = self.pixels.shape
        hy, hx = self.net.cfg.heads
        n_y, n_x = self.net.cfg.cell
        coded = assemble(cells, c, hy, hx, n_y, n_x)[:, :h, :w]
        colour, mean = self.colour.to(like), self.mean.to(like)
        return torch.einsum("ij,jhw->ihw", colour, coded) + mean[:, None, None]

    def search(self, target: Target, default_step: float, with_ssim: bool = True) -> Compressed:
        """The coarsest step that meets a PSNR target, or the finest whose file fits a byte
        budget, on log(step), quality and size both falling as the step grows
        (ratecontrol.boundary: regula falsi, ~5 steps tried where bisection took 10), from
        `default_step`. Quality is computed from the coefficients, size by coding; the chosen
        file is then decoded and measured (its SSIM too where `with_ssim`: ~0.5 s for a
        Kodak image, which the files that are only compared need not spend), and a PSNR
        target missed by rounding is met with a finer step."""
        if not target:
            return finish(self.encode(default_step), self.pixels, target, with_ssim)
        by_psnr = "psnr" in target

        def g(step: float) -> float:  # falls as the step grows; ≥ 0 / < 0 where a target holds
            if by_psnr:
                return self.quality(step) - target["psnr"]
            return math.log(len(self.encode(step)) / (target["max_bytes"] + 0.5))

        def find(x0: float, lo: float, hi: float, x_tol: float) -> tuple[float | None, float]:
            g_tol, slope = (PSNR_TOL, -7.0) if by_psnr else (BYTES_TOL, -1.2)
            found, end, _ = boundary(
                lambda x: g(math.exp(x)), x0, lo, hi, by_psnr, x_tol, g_tol, slope
            )
            return found, end

        # the wide search with the deadzone quantizer alone (RDOQ and the chroma
        # prediction cost ~0.3 s a step each) …
        rdoq, self.rdoq = self.rdoq, 0.0
        tools, self.tools = self.tools, replace(self.tools, chroma=False)
        try:  # finest, coarsest
            good, end = find(math.log(default_step), math.log(1e-3), math.log(2.0), WIDE_TOL)
        finally:
            self.rdoq, self.tools = rdoq, tools
        if good is None:  # unreachable: the closest we can get
            return finish(self.encode(math.exp(end)), self.pixels, target, with_ssim)
        if rdoq or tools.chroma:  # … then their step, a little finer (they save bytes)
            finer = good + math.log(RDOQ_BRACKET)
            tol = abs(math.log(RDOQ_BRACKET)) / 8
            refined, _ = find((good + finer) / 2, finer, good, tol)
            if refined is None and not by_psnr:  # here they cost bytes (the chroma prediction
                # can miss on a fine texture): the step is coarser than the wide search's
                refined, _ = find(good - math.log(RDOQ_BRACKET) / 2, good, math.log(2.0), tol)
            good = refined if refined is not None else (finer if by_psnr else good)
        step = math.exp(good)
        out = finish(self.encode(step), self.pixels, target, with_ssim)
        for _ in range(4):
            if out.met:
                break
            step *= 0.97
            out = finish(self.encode(step), self.pixels, target, with_ssim)
        return out
