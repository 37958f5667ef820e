"""What a fit will do, before it does it: the options and the image's size turned into the
storage, the networks trained (if any), for how long, and the target. `compress` checks a
fit with `plan` first; the API answers `POST /fit` with its lines and `mhinr fit --explain`
prints them. The decisions are the compressors' own functions (`coefficients.candidates`,
`stage_seconds`, `weights.fit_config`), so the plan and the fit
cannot disagree."""

from dataclasses import dataclass, field

from mhinr.model import coefficients, stage_prior, synthesis
from mhinr.model.codec import postfilter
from mhinr.model.presets import Options, check_options, weights_arch
from mhinr.model.ratecontrol import Target, target_of


@dataclass(frozen=True)
class Plan:
    preset: str
    storage: str  # coefficients (the cosine codec or a trained body), weights or upscale
    trains: str | None  # what is trained, in words; None: nothing
    steps: int | None  # training steps at most (None: nothing trained)
    seconds: float | None  # training seconds at most (None: no limit but the steps)
    target: Target = field(
        default_factory=lambda: Target()
    )  # {} (the preset's default quality) or one
    lines: list[str] = field(default_factory=list)  # the plan, step by step, for a person

    def explain(self) -> str:
        return "\n".join(f"{i + 1}. {line}" for i, line in enumerate(self.lines))


def plan(opt: Options, size: tuple[int, int], channels: int) -> Plan:
    """The plan for an image of `size` (rows, cols) with `channels`; ValueError (with the
    reason) for options the image cannot take. Options a preset would ignore were refused
    when `opt` was made (`Options.unused`)."""
    check_options(opt, size, channels)
    h, w = size
    target = target_of(opt, h, w)
    if opt.storage == "upscale":
        return _upscale(target)
    if opt.storage == "weights":
        return _weights(opt, h, w, target)
    return _coefficients(opt, h, w, target)


def _target_words(target: Target) -> str:
    if "psnr" in target:
        return f"the quantizer step searched for {target['psnr']:g} dB"
    if "bpp" in target:
        n = target["max_bytes"]
        return f"the quantizer step searched for {target['bpp']:g} bpp ({n:,} bytes)"
    if "max_bytes" in target:
        return f"the quantizer step searched for at most {target['max_bytes']:,} bytes"
    return f"no target: the default quantizer step ({coefficients.DEFAULT_STEP:g})"


def _coefficients(opt: Options, h: int, w: int, target: Target) -> Plan:
    archs = coefficients.candidates(opt, bool(target), h * w)
    lines = []
    steps: int | None = None
    seconds: float | None = None
    trains = None
    if archs[0].fixed:
        cells = ", ".join(str(a.cell) for a in archs)
        kept = "; the smallest file for the target is kept" if len(archs) > 1 else ""
        lines.append(
            f"the cosine codec on {cells}-pixel cells (a fixed body: nothing trained, no body "
            f"bytes){kept}"
        )
    else:
        a = archs[0]
        steps = coefficients.body_steps(opt)
        seconds = coefficients.fit_budget(opt)
        trains = f"a {a.body} body, {a.depth}x{a.width}, on {a.cell}-pixel cells"
        lines.append(
            f"train {trains} by variable projection: {steps:,} steps"
            + (f" or {seconds:g} s" if seconds else "")
            + ", stored int8, each cell's head coded as coefficients in its basis"
        )
    lines.append(_target_words(target) + "; each coefficient range-coded")
    kernels = [postfilter.KERNEL]
    if opt.preset == "max" and target:
        kernels += list(coefficients.MAX_KERNELS)
    sizes = " or ".join(f"{k}x{k}" for k in kernels)
    filters = f"a linear restoration filter ({sizes}), solved on the image"
    if coefficients.DEBLOCKING:
        filters = f"a deblocking of the cells' borders and {filters}, each"
    lines.append(f"{filters} where it pays")
    stage = coefficients.stage_seconds(opt)
    if stage:
        steps = opt.steps or coefficients.STAGE_STEPS[opt.preset]
        seconds = stage
        trains = (
            f"the trained stage (a ReLU network of {synthesis.HIDDEN} hidden channels, "
            f"{coefficients.STAGE_HIDDEN_WIDE} for a file of "
            f"{coefficients.STAGE_WIDE_BYTES:,} bytes or more)"
        )
        requant = ""
        if coefficients.STAGE_REQUANT:
            requant = (
                "; then the coefficients quantized again for what the stage makes of them "
                "and the stage trained on with them, "
                f"{coefficients.STAGE_REQUANT_AGAIN + 1} rounds in all, each from the best file "
                "so far, the better file kept"
            )
        lines.append(
            f"then {trains} trained on the decoded image{_stage_start()} in place of the "
            "filter: up to "
            f"{steps:,} steps or {stage:g} s a target{requant}; kept only where it pays: "
            + ("a better file for the target" if target else "the same PSNR in fewer bytes")
        )
    elif opt.preset in coefficients.STAGE_SECONDS and opt.steps == 0:
        lines.append("no trained stage (steps=0)")
    return Plan(opt.preset, "coefficients", trains, steps, seconds, target, lines)


def _stage_start() -> str:
    """Where the stage's first training starts, where it is not Stage's own start."""
    wide = coefficients.STAGE_HIDDEN_WIDE
    if not (coefficients.STAGE_FROM_PRIOR and wide in stage_prior.PRIORS):
        return ""
    return f" (the {wide}-channel one from features learnt on other photos' decodes)"


def _weights(opt: Options, h: int, w: int, target: Target) -> Plan:
    from mhinr.model.weights import fit_config

    arch = weights_arch(opt, h, w)
    cfg = fit_config(opt)
    name = "the paper's multi-head network" if opt.model == "multihead" else f"a {opt.model} MLP"
    trains = (
        f"{name}: {arch['heads'][0]}x{arch['heads'][1]} heads, α={arch['alpha']}, "
        f"body {arch['depth']}x{arch['width']} {arch['body']}"
    )
    precision = (
        opt.quantization
        if opt.quantization
        else "the first of fp32, fp16 and int8 that meets the target"
    )
    lines = [
        f"train {trains}: {cfg.steps:,} steps"
        + (f" or {cfg.time_budget_s:g} s" if cfg.time_budget_s else "")
        + (f", stopping at {target['psnr']:g} dB" if "psnr" in target else ""),
        f"store its weights ({precision}): a weights file, not the cosine codec",
    ]
    return Plan(opt.preset, "weights", trains, cfg.steps, cfg.time_budget_s, target, lines)


def _upscale(target: Target) -> Plan:
    from mhinr.model.upscale_prior import PRIOR_NAME

    keep = "keep the image exactly (WebP lossless)"
    if target:
        keep = "code the image with the cosine codec (the fast preset): " + _target_words(target)
    lines = [
        keep,
        f"enlarge it with the shipped upscaler ({PRIOR_NAME}: a network trained once on other "
        "photos; nothing is trained on this image, and the file names it instead of holding "
        "weights)",
        "check it on held-out reductions of the "
        + ("decoded " if target else "")
        + "image against Lanczos and store how much of it renders keep at ×2, ×3 and ×4",
    ]
    return Plan("upscale", "upscale", None, None, None, target, lines)
