"""Fitting a network to one image: full-batch Adam on the body and heads, and (multi-head
networks) an exact least-squares solve of the heads before and after it.

One step is one pass over the n̂y×n̂x local grid, which is every pixel of the image. The
heads are linear in the body's features, so each head's α weights + bias can be solved in
closed form on its cell's pixels (minimum-norm least squares). Measured on `camera` 256²,
64² heads, α=64 (benchmarks/fit_speed.py): the paper's schedule plateaus near 32 dB;
solving the heads on the freshly initialised body is exact at once (the body's random
biases give 16 independent features per 4×4 cell), and Adam from there keeps it exact
while shaping the body. Solving only after Adam is worse: Adam's first steps against random
heads kill about half the ReLU units, and with α=32 the survivors no longer span a cell.
Adam matters where a cell has more pixels than a head has weights. The paper's recipe stays
available (`FitConfig.paper()`).
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from mhinr.model.images import pad_edge
from mhinr.model.network import (
    MultiHeadINR,
    assemble,
    cell_coordinates,
    cell_feature_factor,
    padding,
    split_cells,
)

Schedule = Literal["cosine", "paper", "constant"]


@dataclass(frozen=True)
class FitConfig:
    steps: int = 100
    lr: float = 1e-3
    schedule: Schedule = "cosine"
    solve_heads: bool = True  # least-squares heads before and after Adam (multi-head only)
    target_psnr: float | None = None  # stop Adam once reached
    time_budget_s: float | None = None  # wall clock for the whole fit
    progress_every: int = 10  # steps between progress callbacks (and the first and last step)

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ValueError(f"steps must be 0 or more, got {self.steps}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.schedule not in ("cosine", "paper", "constant"):
            raise ValueError(f"unknown schedule {self.schedule!r}: cosine, paper or constant")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise ValueError("time_budget_s must be positive")
        if self.progress_every < 1:
            raise ValueError("progress_every must be at least 1")

    @classmethod
    def paper(cls, steps: int = 2000) -> "FitConfig":
        """The paper: Adam, lr 1e-3, ×exp(-0.1) every 50 epochs after epoch 50, no solve."""
        return cls(steps=steps, lr=1e-3, schedule="paper", solve_heads=False)


@dataclass(frozen=True)
class Progress:
    step: int
    total: int
    loss: float
    psnr: float
    elapsed_s: float
    # renders the current reconstruction at the training size, [C, H, W] in [0, 1] (one
    # forward pass: call it only when a preview is wanted)
    image: Callable[[], Tensor] | None = field(default=None, compare=False, repr=False)
    # what the step and the PSNR are (PHASES); `detail`: a word on the step (a cell size)
    phase: str = "training"
    detail: str = ""


# What a progress report's step and PSNR measure, by phase (the API's event stream, the page's
# chart and the CLI say it the same way)
PHASES = {
    "training": "training step; PSNR of the network on the image, before its weights are rounded",
    "coding": "file coded; PSNR of that file, decoded",
    "stage": "step of the trained stage; PSNR of the decode through it, before its weights "
    "are rounded to 4 bits",
    "upscaler": "training step; PSNR of its enlargements of the image's own smaller copies "
    "(training crops)",
}


@dataclass
class FitResult:
    steps: int
    psnr: float  # on the training canvas, float outputs (the final 8-bit PSNR: metrics.psnr)
    seconds: float
    stopped: str  # "steps", "target_psnr", "time_budget" or "cancelled"
    history: list[Progress] = field(default_factory=list)


def lr_factor(schedule: Schedule, step: int, total: int) -> float:
    if schedule == "paper":  # ×exp(-0.1) at steps 50, 100, 150, …
        return math.exp(-0.1 * (step // 50))
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * step / max(total, 1))) * 0.99 + 0.01
    return 1.0


def mse_to_psnr(mse: float) -> float:
    return 10 * math.log10(1.0 / mse) if mse > 0 else float("inf")


def prepare_target(net: MultiHeadINR, pixels: Tensor) -> Tensor:
    """The image edge-padded to the network's canvas: [C, Hy·n̂y, Hx·n̂x]."""
    c, h, w = pixels.shape
    if c != net.cfg.channels:
        raise ValueError(f"image has {c} channels, the network {net.cfg.channels}")
    pad_r, pad_c = padding(net.cfg, (h, w))
    if pad_r < 0 or pad_c < 0:
        raise ValueError(f"image {h}x{w} is larger than the network's canvas {net.cfg.canvas}")
    return pad_edge(pixels, pad_r, pad_c)


class _Reporter:
    """Progress reports of one fit: kept in `history`, passed to the callback."""

    def __init__(self, total: int, start: float, current, progress) -> None:
        self.total, self.start, self.current, self.progress = total, start, current, progress
        self.history: list[Progress] = []

    def __call__(self, step: int, mse: float) -> None:
        elapsed = time.perf_counter() - self.start
        p = Progress(step, self.total, mse, mse_to_psnr(mse), elapsed, self.current)
        self.history.append(p)
        if self.progress is not None:
            self.progress(p)

    def last_step(self) -> int | None:
        return self.history[-1].step if self.history else None


# Share of a time budget the Adam loop may use: the rest is for what follows it (the final
# head solve of `fit`; the codec's quantization and coding after `fit_projection`).
LOOP_SHARE = 0.9


def _adam_loop(
    params,
    loss_fn: Callable[[], Tensor],
    cfg: FitConfig,
    steps: int,
    start: float,
    report: _Reporter,
    should_stop: Callable[[], bool] | None,
) -> tuple[int, float, str]:
    """The training loop `fit` and `fit_projection` share: Adam on `loss_fn` (a mean squared
    error) with the schedule of `cfg`, up to `steps` steps, stopping at the target PSNR, at
    `LOOP_SHARE` of the time budget or when `should_stop` says so (checked every step).
    Reports the first step, every `progress_every` steps and the step it stops at.
    Returns (steps done, last loss, why it stopped)."""
    opt = torch.optim.Adam(params, lr=cfg.lr)
    budget = None if cfg.time_budget_s is None else cfg.time_budget_s * LOOP_SHARE
    step, mse = 0, float("nan")
    for step in range(1, steps + 1):
        for group in opt.param_groups:
            group["lr"] = cfg.lr * lr_factor(cfg.schedule, step - 1, cfg.steps)
        loss = loss_fn()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        mse = loss.item()
        reached = cfg.target_psnr is not None and mse_to_psnr(mse) >= cfg.target_psnr
        over = budget is not None and time.perf_counter() - start >= budget
        cancelled = should_stop is not None and should_stop()
        stop = "cancelled" if cancelled else "target_psnr" if reached else None
        stop = stop or ("time_budget" if over else None)
        if step == 1 or step % cfg.progress_every == 0 or step == steps or stop:
            report(step, mse)
        if stop:
            return step, mse, stop
    return step, mse, "steps"


def fit(
    net: MultiHeadINR,
    pixels: Tensor,
    config: FitConfig | None = None,
    progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> FitResult:
    """Fit `net` in place to `pixels` ([C, H, W] in [0, 1]); returns how it went. A
    cancelled fit returns at once, its heads as Adam left them."""
    cfg = config or FitConfig()
    start = time.perf_counter()
    device = net.heads.weight.device
    target = prepare_target(net, pixels).to(device)
    n_y, n_x = net.cfg.cell

    def canvas_mse() -> float:
        with torch.no_grad():
            return float(torch.mean((net.grid(n_y, n_x).clamp(0, 1) - target) ** 2))

    def current() -> Tensor:
        with torch.no_grad():
            return net.grid(n_y, n_x).clamp(0, 1)[:, : pixels.shape[1], : pixels.shape[2]].cpu()

    def loss() -> Tensor:
        return torch.mean((net.grid(n_y, n_x) - target) ** 2)

    report = _Reporter(cfg.steps, start, current, progress)
    solve = cfg.solve_heads and net.cfg.num_heads > 1
    steps, reached_at_start = cfg.steps, False
    if solve:  # start Adam from the best heads for the initial body
        solve_heads(net, target)
        start_mse = canvas_mse()
        start_state = {k: v.clone() for k, v in net.state_dict().items()}
        report(0, start_mse)
        if cfg.target_psnr is not None and mse_to_psnr(start_mse) >= cfg.target_psnr:
            steps, reached_at_start = 0, True
    step, mse, stopped = _adam_loop(net.parameters(), loss, cfg, steps, start, report, should_stop)
    if stopped == "cancelled":
        return FitResult(
            step, mse_to_psnr(mse), time.perf_counter() - start, stopped, report.history
        )
    if reached_at_start:
        stopped = "target_psnr"
    if solve and step > 0:
        solve_heads(net, target)
    mse = canvas_mse()
    if solve and mse > start_mse:
        # Adam can kill ReLU units that the exact solve needed: never end worse than the start.
        net.load_state_dict(start_state)
        mse = start_mse
    if solve or report.last_step() != step:
        report(step, mse)
    return FitResult(step, mse_to_psnr(mse), time.perf_counter() - start, stopped, report.history)


@torch.no_grad()
def solve_heads(net: MultiHeadINR, target: Tensor, ridge: float = 1e-9) -> None:
    """Replace every head's weights (and bias) by the least-squares fit to its cell's pixels.

    Head o sees the features A_o = [Φ[:, idx_o], 1] (n points × (α+1) unknowns). With fewer
    pixels than unknowns (the paper's 4×4 cells, α=64) the minimum-norm solution
    w = A_oᵀ (A_o A_oᵀ + εI)⁻¹ y_o interpolates exactly; otherwise the normal equations
    (A_oᵀ A_o + εI) w = A_oᵀ y_o. Batched over all heads, in float64.
    """
    heads = net.heads
    n_y, n_x = net.cfg.cell
    hy, hx = net.cfg.heads
    feats = net.body(cell_coordinates(n_y, n_x).to(target.device)).double()  # [n, width]
    y = split_cells(target.double(), hy, hx).t()  # [O, n]
    n = feats.shape[0]
    if heads.is_dense:
        a = feats.expand(heads.outputs, -1, -1)  # [O, n, width] (a view)
    else:
        a = feats[:, heads.index].permute(1, 0, 2)  # [O, n, α]
    if heads.bias is not None:
        a = torch.cat([a, torch.ones(heads.outputs, n, 1, dtype=a.dtype, device=a.device)], 2)
    unknowns = a.shape[2]
    scale = a.pow(2).sum(dim=(1, 2)).div(n).clamp_min(1e-12)[:, None, None]
    if n <= unknowns:
        gram = a @ a.transpose(1, 2)  # [O, n, n]
        gram += ridge * scale * torch.eye(n, dtype=a.dtype, device=a.device)
        coef = torch.linalg.solve(gram, y[..., None])  # [O, n, 1]
        w = (a.transpose(1, 2) @ coef)[..., 0]  # [O, unknowns]
    else:
        gram = a.transpose(1, 2) @ a  # [O, u, u]
        gram += ridge * scale * torch.eye(unknowns, dtype=a.dtype, device=a.device)
        w = torch.linalg.solve(gram, (a.transpose(1, 2) @ y[..., None]))[..., 0]
    if heads.bias is not None:
        heads.bias.copy_(w[:, -1].to(heads.bias.dtype))
        w = w[:, :-1]
    heads.weight.copy_(w.to(heads.weight.dtype))


def projection_basis(net: MultiHeadINR, device: torch.device | str = "cpu") -> Tensor:
    """[n, k] orthonormal basis (float64) of the native cell features (constant first)."""
    phi, chol = cell_feature_factor(net, device)
    return torch.linalg.solve_triangular(chol, phi.T, upper=False).T


def projection_loss(net: MultiHeadINR, cells: Tensor) -> Tensor:
    """Mean squared residual of projecting every cell ([n, C·Hy·Hx]) onto the span of the
    cell features: the error of the best possible dense heads."""
    basis = projection_basis(net, cells.device)
    return torch.mean((cells - basis @ (basis.T @ cells)) ** 2)


def fit_projection(
    net: MultiHeadINR,
    pixels: Tensor,
    config: FitConfig | None = None,
    progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> FitResult:
    """Train the body by variable projection: in every step the (dense) heads are the exact
    least-squares solution for the current body, so Adam only shapes the body's k-dimensional
    span of each cell. Used by the codec, whose heads are coded as coefficients in that span.
    Heads are not written here (the codec does that after quantizing the body)."""
    cfg = config or FitConfig()
    start = time.perf_counter()
    target = prepare_target(net, pixels).to(net.heads.weight.device)
    cells = split_cells(target.double(), *net.cfg.heads)  # [n, C·Hy·Hx]

    def current() -> Tensor:  # the best heads for the current body, rendered
        with torch.no_grad():
            basis = projection_basis(net, cells.device)
            flat = basis @ (basis.T @ cells)
        out = assemble(flat, net.cfg.channels, *net.cfg.heads, *net.cfg.cell)
        return out[:, : pixels.shape[1], : pixels.shape[2]].float().cpu()

    report = _Reporter(cfg.steps, start, current, progress)
    step, mse, stopped = _adam_loop(
        net.body.parameters(),
        lambda: projection_loss(net, cells),
        cfg,
        cfg.steps,
        start,
        report,
        should_stop,
    )
    if stopped != "cancelled" and report.last_step() != step:
        report(step, mse)
    return FitResult(step, mse_to_psnr(mse), time.perf_counter() - start, stopped, report.history)
