"""`weights` storage: the paper's preset, the baselines and any explicit network, stored as
its parameters (fp32, fp16 or int8), the first precision that meets the target."""

import copy
from dataclasses import replace

import torch
from torch import Tensor

from mhinr.model.codec import Coded, Quantization, dequantize, encode_weights, quantize
from mhinr.model.fit import FitConfig, fit, prepare_target, solve_heads
from mhinr.model.network import MultiHeadINR, build_network
from mhinr.model.presets import Options, weights_arch
from mhinr.model.ratecontrol import Compressed, finish, target_of


def fit_config(opt: Options) -> FitConfig:
    """How a weights file's network is trained: the paper's schedule for its preset (2,000
    steps), else 100 steps of Adam between least-squares solves of the heads; the baselines
    500 steps of Adam alone (SIREN with a smaller learning rate)."""
    if opt.preset == "paper":
        cfg = FitConfig.paper(opt.steps if opt.steps is not None else 2000)
    elif opt.model == "multihead":
        cfg = FitConfig(steps=opt.steps if opt.steps is not None else 100)
    else:
        cfg = FitConfig(
            steps=opt.steps if opt.steps is not None else 500,
            lr=1e-4 if opt.model == "siren" else 1e-3,
        )
    return replace(cfg, time_budget_s=opt.time_budget_s, target_psnr=opt.target_psnr)


def compress_weights(pixels, mode, opt, progress, should_stop) -> Compressed:
    c, h, w = pixels.shape
    net = build_network(opt.model, (h, w), c, seed=opt.seed, **weights_arch(opt, h, w))
    cfg = fit_config(opt)
    trained = fit(net.to(opt.device), pixels.to(opt.device), cfg, progress, should_stop)
    net.cpu()
    target = target_of(opt, h, w)
    choices: list[Quantization] = (
        [opt.quantization] if opt.quantization else ["fp32", "fp16", "int8"]
    )
    coded = Coded(h, w, mode, "weights")
    solved = cfg.solve_heads and net.cfg.num_heads > 1
    best = None
    for q in choices:  # highest precision first: keep the first that meets the target
        data = encode_weights(net, replace(coded, quantization=q))
        if solved and q != "fp32":
            data = quantization_aware(net, replace(coded, quantization=q), pixels, data)
        best = finish(data, pixels, target)
        if best.met is not False:
            break
    assert best is not None  # at least one precision was tried
    best.train_steps = trained.steps
    return best


QA_RIDGES = (1e-9, 1e-6, 1e-5)


def quantization_aware(net: MultiHeadINR, coded: Coded, pixels: Tensor, plain: bytes) -> bytes:
    """Least-squares heads are fitted to exact features and can have large, outlier-heavy
    weights that int8 rows round badly (kodim23, 96-pixel cells: 35.6 dB → 24.7). So: store
    the body at the target precision, solve the heads again against that body, with a
    ridge that trades a little fit for smaller weights, and keep whichever file decodes
    best (benchmarks/quantization.py measures it)."""
    q = coded.quantization
    candidate = copy.deepcopy(net)
    with torch.no_grad():
        for name, p in candidate.named_parameters():
            if name.startswith("body."):
                p.copy_(dequantize(name, quantize(name, p, q)))
    target = prepare_target(candidate, pixels)
    best, best_psnr = plain, finish(plain, pixels, {}, with_ssim=False).psnr
    for ridge in QA_RIDGES:
        solve_heads(candidate, target, ridge=ridge)
        data = encode_weights(candidate, coded)
        quality = finish(data, pixels, {}, with_ssim=False).psnr
        if quality > best_psnr:
            best, best_psnr = data, quality
    return best
