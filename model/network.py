"""The multi-head INR: a coordinate MLP (the body) shared by a grid of sparse linear heads.

An image of Ny×Nx pixels (padded to a multiple of the grid) is cut into Hy×Hx cells of
n̂y×n̂x pixels. Every cell sees the same local coordinates in [-1, 1]², so one body pass over
the n̂y·n̂x local coordinates feeds every head at once; head (i, j, c) paints channel c of
cell (i, j). Local coordinates are pixel centres, u_k = -1 + (2k + 1) / n̂: the cell's edges
are at ±1, so a render at m pixels per cell samples the same continuous function finer.

With heads = (1, 1) and α = width the same class is a plain coordinate MLP: that is how the
paper's baselines (ReLU MLP, SIREN, Fourier features) are built (see `build_network`).
"""

import math
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from model import prng

BodyKind = Literal["relu", "sine", "fourier"]


@dataclass(frozen=True)
class INRConfig:
    """Everything needed to rebuild a network bit for bit (with its weights)."""

    heads: tuple[int, int] = (64, 64)  # Hy, Hx
    cell: tuple[int, int] = (4, 4)  # n̂y, n̂x: training pixels per cell
    channels: int = 1
    width: int = 256
    depth: int = 4  # linear layers in the body
    alpha: int = 64  # body units wired to each head
    head_bias: bool = True
    body: BodyKind = "relu"
    omega0: float = 30.0  # sine body: first-layer frequency (SIREN)
    fourier_features: int = 128  # fourier body: Gaussian frequencies
    fourier_scale: float = 10.0
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.heads) < 1 or min(self.cell) < 1:
            raise ValueError("heads and cell sizes must be at least 1")
        if self.width < 1 or self.depth < 1 or self.channels < 1:
            raise ValueError("width, depth and channels must be at least 1")
        if not 1 <= self.alpha <= self.width:
            raise ValueError(f"alpha={self.alpha} must be between 1 and width={self.width}")
        if self.body not in ("relu", "sine", "fourier"):
            raise ValueError(f"unknown body {self.body!r}: relu, sine or fourier")

    @property
    def num_heads(self) -> int:
        return self.heads[0] * self.heads[1]

    @property
    def canvas(self) -> tuple[int, int]:
        """The padded training image size (rows, columns)."""
        return self.heads[0] * self.cell[0], self.heads[1] * self.cell[1]

    def to_dict(self) -> dict:
        return asdict(self)


def cell_coordinates(m_y: int, m_x: int) -> Tensor:
    """[m_y·m_x, 2] local (y, x) pixel centres of an m_y×m_x sampling of one cell."""
    ys = (torch.arange(m_y, dtype=torch.float32) * 2 + 1) / m_y - 1
    xs = (torch.arange(m_x, dtype=torch.float32) * 2 + 1) / m_x - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gy, gx], dim=-1).reshape(-1, 2)


class SineLayer(nn.Module):
    """sin(ω0 · (W x + b)) with SIREN's initialisation (Sitzmann et al. 2020)."""

    def __init__(self, fan_in: int, fan_out: int, omega0: float, first: bool, gen: torch.Generator):
        super().__init__()
        self.omega0, self.first = omega0, first
        self.linear = nn.Linear(fan_in, fan_out)
        self.reset_parameters(gen)

    def reset_parameters(self, gen: torch.Generator) -> None:
        fan_in = self.linear.in_features
        bound = 1 / fan_in if self.first else math.sqrt(6 / fan_in) / self.omega0
        with torch.no_grad():
            self.linear.weight.uniform_(-bound, bound, generator=gen)
            self.linear.bias.uniform_(-1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in), generator=gen)

    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(self.omega0 * self.linear(x))


def _uniform_linear(fan_in: int, fan_out: int, gen: torch.Generator) -> nn.Linear:
    """nn.Linear with PyTorch's default U(±1/√fan_in) for weight and bias, from `gen`."""
    layer = nn.Linear(fan_in, fan_out)
    bound = 1 / math.sqrt(fan_in)
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=gen)
        layer.bias.uniform_(-bound, bound, generator=gen)
    return layer


class Body(nn.Module):
    """Local coordinate [P, 2] → features [P, width]: ReLU (paper), sine or Fourier-fed MLP."""

    def __init__(self, cfg: INRConfig, gen: torch.Generator):
        super().__init__()
        self.kind = cfg.body
        fan_in = 2
        if cfg.body == "fourier":
            # B ~ N(0, scale²), regenerated from the seed: it costs no bytes in a .inr file.
            b = prng.normal(cfg.seed, 2 * cfg.fourier_features, stream=2) * cfg.fourier_scale
            self.register_buffer("B", torch.tensor(b, dtype=torch.float32).reshape(2, -1))
            fan_in = 2 * cfg.fourier_features
        layers: list[nn.Module] = []
        for i in range(cfg.depth):
            if cfg.body == "sine":
                layers.append(SineLayer(fan_in, cfg.width, cfg.omega0, first=i == 0, gen=gen))
            else:
                layers += [_uniform_linear(fan_in, cfg.width, gen), nn.ReLU()]
            fan_in = cfg.width
        self.net = nn.Sequential(*layers)

    def forward(self, coords: Tensor) -> Tensor:
        if self.kind == "fourier":
            proj = 2 * math.pi * coords @ self.B  # [P, F]
            coords = torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)  # [P, 2F]
        return self.net(coords)  # [P, width]


class SparseHeads(nn.Module):
    """O output neurons, each wired to α fixed, randomly chosen body units (+ optional bias).

    The connections are drawn once from the seed with a platform-independent stream.
    Forward scatters the α·O weights into a dense [width, O] matrix and does one matrix
    product. Measured (benchmarks/sparse_heads.py, 2 CPU cores, 64² heads, α=64, width 256):
    the dense product beats gather + batched product by a wide margin for training and
    rendering despite 4× the multiply-adds, because the gather materialises a
    [P, O, α] tensor while the dense product is a single BLAS call.
    """

    def __init__(
        self, width: int, outputs: int, alpha: int, bias: bool, seed: int, init_bound: float
    ):
        super().__init__()
        self.width, self.outputs, self.alpha = width, outputs, alpha
        idx = prng.choose_subsets(seed, outputs, width, alpha, stream=1)
        self.register_buffer("index", torch.from_numpy(idx), persistent=False)  # [O, α]
        self.weight = nn.Parameter(torch.empty(outputs, alpha))
        self.bias = nn.Parameter(torch.empty(outputs)) if bias else None
        self.init_bound = init_bound

    def reset_parameters(self, gen: torch.Generator) -> None:
        with torch.no_grad():
            self.weight.uniform_(-self.init_bound, self.init_bound, generator=gen)
            if self.bias is not None:
                self.bias.uniform_(-self.init_bound, self.init_bound, generator=gen)

    @property
    def is_dense(self) -> bool:
        return self.alpha == self.width

    def dense_weight(self) -> Tensor:
        """[width, O]: the sparse weights written into a dense matrix (zeros elsewhere)."""
        if self.is_dense:
            return self.weight.t()
        dense = torch.zeros(
            self.outputs, self.width, dtype=self.weight.dtype, device=self.weight.device
        )
        return dense.scatter(1, self.index, self.weight).t()

    def forward(self, feats: Tensor, dense_weight: Tensor | None = None) -> Tensor:
        w = self.dense_weight() if dense_weight is None else dense_weight
        out = feats @ w  # [P, O]
        return out if self.bias is None else out + self.bias

    def forward_gather(self, feats: Tensor) -> Tensor:
        """The literal sparse layer (reference for FLOP counts and the speed comparison)."""
        picked = feats[:, self.index]  # [P, O, α]
        out = torch.einsum("poa,oa->po", picked, self.weight)  # [P, O]
        return out if self.bias is None else out + self.bias


class MultiHeadINR(nn.Module):
    """Body + Hy×Hx sparse heads with `channels` outputs each."""

    def __init__(self, cfg: INRConfig):
        super().__init__()
        self.cfg = cfg
        gen = torch.Generator().manual_seed(cfg.seed)
        self.body = Body(cfg, gen)
        outputs = cfg.num_heads * cfg.channels
        if cfg.body == "sine":  # SIREN's last layer: U(±√(6/fan_in)/ω0)
            bound = math.sqrt(6 / cfg.alpha) / cfg.omega0
        else:  # the paper: uniform initialisation, PyTorch's default bound
            bound = 1 / math.sqrt(cfg.alpha)
        self.heads = SparseHeads(cfg.width, outputs, cfg.alpha, cfg.head_bias, cfg.seed, bound)
        self.heads.reset_parameters(gen)

    def forward(self, coords: Tensor) -> Tensor:
        """[P, 2] local coordinates → [P, C·Hy·Hx] (output o = (c, i, j) in row-major order)."""
        return self.heads(self.body(coords))

    def grid(self, m_y: int, m_x: int, dense_weight: Tensor | None = None) -> Tensor:
        """The padded canvas sampled at m_y×m_x points per cell: [C, Hy·m_y, Hx·m_x]."""
        (hy, hx), c = self.cfg.heads, self.cfg.channels
        coords = cell_coordinates(m_y, m_x).to(self.heads.weight.device)
        out = self.heads(self.body(coords), dense_weight)  # [m_y·m_x, C·Hy·Hx]
        return assemble(out, c, hy, hx, m_y, m_x)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())


def assemble(out: Tensor, c: int, hy: int, hx: int, m_y: int, m_x: int) -> Tensor:
    """[m_y·m_x, C·Hy·Hx] per-point head outputs → image [C, Hy·m_y, Hx·m_x]."""
    out = out.reshape(m_y, m_x, c, hy, hx).permute(2, 3, 0, 4, 1)  # [C, Hy, m_y, Hx, m_x]
    return out.reshape(c, hy * m_y, hx * m_x)


def split_cells(image: Tensor, hy: int, hx: int) -> Tensor:
    """Inverse of `assemble`: [C, Hy·n̂y, Hx·n̂x] → [n̂y·n̂x, C·Hy·Hx]."""
    c, h, w = image.shape
    n_y, n_x = h // hy, w // hx
    out = image.reshape(c, hy, n_y, hx, n_x).permute(2, 4, 0, 1, 3)  # [n̂y, n̂x, C, Hy, Hx]
    return out.reshape(n_y * n_x, c * hy * hx)


ModelKind = Literal["multihead", "relu", "siren", "fourier"]


def baseline_param_count(
    kind: ModelKind, width: int, depth: int, channels: int, features: int = 128
) -> int:
    fan_in = {"relu": 2, "siren": 2, "fourier": 2 * features}[kind]
    return (
        fan_in * width + width + (depth - 1) * (width * width + width) + width * channels + channels
    )


def width_for_params(kind: ModelKind, params: int, depth: int = 4, channels: int = 1) -> int:
    """The width whose single-head `kind` network has the parameter count closest to `params`
    (the paper's fair comparison at equal parameters)."""
    best = min(
        range(1, 4097),
        key=lambda w: abs(baseline_param_count(kind, w, depth, channels) - params),
    )
    return best


def build_network(
    kind: ModelKind,
    image_size: tuple[int, int],
    channels: int,
    heads: tuple[int, int] = (64, 64),
    width: int = 256,
    depth: int = 4,
    alpha: int = 64,
    body: BodyKind = "relu",
    head_bias: bool = True,
    seed: int = 0,
) -> MultiHeadINR:
    """A network for an image of `image_size` (rows, cols): the multi-head model, or one of the
    paper's single-head baselines (heads and α are then ignored)."""
    h, w = image_size
    if kind == "multihead":
        hy, hx = heads
        if hy > h or hx > w:
            raise ValueError(f"heads grid {hy}x{hx} is larger than the image {h}x{w}")
        cell = (math.ceil(h / hy), math.ceil(w / hx))
        cfg = INRConfig(heads, cell, channels, width, depth, alpha, head_bias, body, seed=seed)
    elif kind in ("relu", "siren", "fourier"):
        body_kind = {"relu": "relu", "siren": "sine", "fourier": "fourier"}[kind]
        cfg = INRConfig((1, 1), (h, w), channels, width, depth, width, True, body_kind, seed=seed)
    else:
        raise ValueError(f"unknown model {kind!r}: multihead, relu, siren or fourier")
    return MultiHeadINR(cfg)


def padding(cfg: INRConfig, image_size: tuple[int, int]) -> tuple[int, int]:
    """Rows and columns of edge padding below and right of the image."""
    ch, cw = cfg.canvas
    return ch - image_size[0], cw - image_size[1]


def as_numpy(t: Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()
