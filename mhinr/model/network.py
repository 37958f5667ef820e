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

import torch
from torch import Tensor, nn

from mhinr.model import pixels, prng
from mhinr.model.synthesis import Stage

BodyKind = Literal["relu", "sine", "fourier", "cosine"]


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
    # "fixed": the cosine body (`Body`), never trained and never stored
    init: Literal["paper", "torch", "fixed"] = "paper"
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.heads) < 1 or min(self.cell) < 1:
            raise ValueError("heads and cell sizes must be at least 1")
        if self.width < 1 or self.depth < 1 or self.channels < 1:
            raise ValueError("width, depth and channels must be at least 1")
        if not 1 <= self.alpha <= self.width:
            raise ValueError(f"alpha={self.alpha} must be between 1 and width={self.width}")
        if self.body not in ("relu", "sine", "fourier", "cosine"):
            raise ValueError(f"unknown body {self.body!r}: relu, sine, fourier or cosine")
        if self.init not in ("paper", "torch", "fixed"):
            raise ValueError(f"unknown init {self.init!r}: paper, torch or fixed")
        n = self.cell[0] * self.cell[1]
        if (self.body == "cosine") != (self.init == "fixed") or (
            self.body == "cosine" and (self.width != n - 1 or self.depth != 1)
        ):
            raise ValueError(
                f"a cosine body is the fixed one (init 'fixed'), of depth 1 and {n - 1} "
                f"units on {self.cell[0]}×{self.cell[1]} cells: not {self.body}, init "
                f"{self.init}, depth {self.depth}, width {self.width}"
            )

    @property
    def num_heads(self) -> int:
        return self.heads[0] * self.heads[1]

    @property
    def canvas(self) -> tuple[int, int]:
        """The padded training image size (rows, columns)."""
        return self.heads[0] * self.cell[0], self.heads[1] * self.cell[1]

    def to_dict(self) -> dict:
        return asdict(self)


def cell_coordinates(m_y: int, m_x: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """[m_y·m_x, 2] local (y, x) pixel centres of an m_y×m_x sampling of one cell."""
    ys = (torch.arange(m_y, dtype=dtype) * 2 + 1) / m_y - 1
    xs = (torch.arange(m_x, dtype=dtype) * 2 + 1) / m_x - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gy, gx], dim=-1).reshape(-1, 2)


class SineLayer(nn.Module):
    """sin(ω0 · (W x + b)), the SIREN layer (Sitzmann et al. 2020)."""

    def __init__(self, fan_in: int, fan_out: int, omega0: float):
        super().__init__()
        self.omega0 = omega0
        self.linear = nn.Linear(fan_in, fan_out)

    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(self.omega0 * self.linear(x))


def _cosine_table(cell: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """pixels.cosine_table as float64 tensors."""
    freq, norm = pixels.cosine_table(cell)
    return torch.from_numpy(freq), torch.from_numpy(norm)


def _cosines(coords: Tensor, freq: Tensor, norm: Tensor) -> Tensor:
    """[P, n] the cosines of `_cosine_table` at local coordinates [P, 2]."""
    c = torch.cos((coords[:, :, None] + 1) * freq.T[None])  # [P, 2, n]
    return c[:, 0] * c[:, 1] * norm


def dct_basis(cell: tuple[int, int]) -> Tensor:
    """[n, n] (float64) the orthonormal 2-D DCT-II of a cell's n pixels (row-major, as
    `cell_coordinates`), function (a, b) cos(π(2y+1)a/2n̂y)·cos(π(2x+1)b/2n̂x), in
    `dct_order`: the constant first — the cosine body with its constant, at the pixel
    centres. The DCT is the Karhunen–Loève transform of the AR(1) image model as ρ → 1
    (codec.klt_rotation's model), so the energy falls along it."""
    return _cosines(cell_coordinates(*cell, dtype=torch.float64), *_cosine_table(cell))


class Body(nn.Module):
    """Local coordinate [P, 2] → features [P, width]: ReLU (paper), sine or Fourier-fed MLP,
    or the cosine body: no weights, the cell's 2-D cosines
    √(c_a/n̂y)·√(c_b/n̂x)·cos(π a (y + 1)/2)·cos(π b (x + 1)/2) (c = 1 for the constant,
    else 2) but the constant, in `dct_order`. At the pixel centres they are the cell's
    orthonormal DCT-II; between them, its continuous cosines (a render at any size
    interpolates each cell as the DCT does)."""

    freq: Tensor  # buffers (the cosine body)
    norm: Tensor
    B: Tensor  # the Fourier body's projection

    def __init__(self, cfg: INRConfig):
        super().__init__()
        self.kind = cfg.body
        fan_in = 2
        if cfg.body == "cosine":
            freq, norm = _cosine_table(cfg.cell)  # the constant is the heads' bias
            self.register_buffer("freq", freq[1:].float())
            self.register_buffer("norm", norm[1:].float())
            self.net = nn.Sequential()
            return
        if cfg.body == "fourier":
            # B ~ N(0, scale²), regenerated from the seed: it costs no bytes in a .inr file.
            b = prng.normal(cfg.seed, 2 * cfg.fourier_features, stream=2) * cfg.fourier_scale
            self.register_buffer("B", torch.tensor(b, dtype=torch.float32).reshape(2, -1))
            fan_in = 2 * cfg.fourier_features
        layers: list[nn.Module] = []
        for _ in range(cfg.depth):
            if cfg.body == "sine":
                layers.append(SineLayer(fan_in, cfg.width, cfg.omega0))
            else:
                layers += [nn.Linear(fan_in, cfg.width), nn.ReLU()]
            fan_in = cfg.width
        self.net = nn.Sequential(*layers)

    def forward(self, coords: Tensor) -> Tensor:
        if self.kind == "cosine":
            return _cosines(coords, self.freq, self.norm)
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

    index: Tensor  # [O, α]: the body units each output reads (a buffer)

    def __init__(self, width: int, outputs: int, alpha: int, bias: bool, seed: int):
        super().__init__()
        self.width, self.outputs, self.alpha = width, outputs, alpha
        idx = prng.choose_subsets(seed, outputs, width, alpha, stream=1)
        self.register_buffer("index", torch.from_numpy(idx), persistent=False)  # [O, α]
        self.weight = nn.Parameter(torch.empty(outputs, alpha))
        self.bias = nn.Parameter(torch.empty(outputs)) if bias else None

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
        if dense_weight is None and feats.shape[0] == 1 and not self.is_dense:
            # One point per cell (as many heads as pixels): writing the dense matrix costs
            # more than the product; the gather is 3× faster there (same benchmark).
            return self.forward_gather(feats)
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
        self.body = Body(cfg)
        outputs = cfg.num_heads * cfg.channels
        self.heads = SparseHeads(cfg.width, outputs, cfg.alpha, cfg.head_bias, cfg.seed)
        # a restoration filter [C, C·k²+1] applied to the native render (model/codec/postfilter.py),
        # set by the decoder of the coefficient storage; None for every other network
        self.post_filter: Tensor | None = None
        # the deblocking before it (model/codec/deblock.py: ramp, threshold), if the file has one
        self.deblock: tuple[int, int] | None = None
        # the trained stage after it (model/synthesis.py), where the file has one
        self.stage: Stage | None = None
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Initialise every weight from the seed.

        `paper` (the paper's code, Keras defaults): Glorot-uniform weights and zero biases;
        sine layers with SIREN's bounds; the sparse heads Glorot-uniform over their flat
        α·O weights, U(±√(3/(α·O))); a single-head sine or Fourier network's output layer
        U(±√(6/width)/ω0), as the paper's baselines. `torch`: PyTorch's nn.Linear default,
        U(±1/√fan_in) for weights and biases (heads: fan_in = α). Its random biases make
        the body's features of a cell independent, so the head solve is exact at once.
        """
        cfg = self.cfg
        gen = torch.Generator().manual_seed(cfg.seed)
        paper = cfg.init == "paper"
        sine_linears = {id(m.linear) for m in self.body.modules() if isinstance(m, SineLayer)}
        for layer in self.body.modules():
            if not isinstance(layer, nn.Linear):
                continue
            fan_in, fan_out = layer.in_features, layer.out_features
            if id(layer) in sine_linears:
                first = layer is self.body.net[0].linear
                bound = 1 / fan_in if first else math.sqrt(6 / fan_in) / cfg.omega0
            else:
                bound = math.sqrt(6 / (fan_in + fan_out)) if paper else 1 / math.sqrt(fan_in)
            _uniform(layer.weight, bound, gen)
            _uniform(layer.bias, 0 if paper else 1 / math.sqrt(fan_in), gen)
        w = self.heads.weight
        if cfg.num_heads == 1 and cfg.body in ("sine", "fourier"):
            bound = math.sqrt(6 / cfg.width) / cfg.omega0  # SIREN's last layer
        elif paper:
            bound = math.sqrt(3 / w.numel())
        else:
            bound = 1 / math.sqrt(cfg.alpha)
        _uniform(w, bound, gen)
        if self.heads.bias is not None:
            _uniform(self.heads.bias, 0 if paper else 1 / math.sqrt(cfg.alpha), gen)

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


def cell_feature_factor(
    net: "MultiHeadINR", device: torch.device | str = "cpu"
) -> tuple[Tensor, Tensor]:
    """The native cell features Φ = [1, body(u)] (n × k, float64, constant first) and the
    lower Cholesky factor L of ΦᵀΦ (with a tiny ridge). Φ L⁻ᵀ is orthonormal over a cell's
    pixels: the training (variable projection), the encoder and the decoder all take their
    basis from this one function, so they agree to the last bit on one machine."""
    n_y, n_x = net.cfg.cell
    feats = net.body(cell_coordinates(n_y, n_x).to(device)).double()
    ones = torch.ones(feats.shape[0], 1, dtype=feats.dtype, device=feats.device)
    phi = torch.cat([ones, feats], 1)
    gram = phi.T @ phi
    eye = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
    return phi, torch.linalg.cholesky(gram + 1e-10 * gram.diagonal().mean() * eye)


def _uniform(t: Tensor, bound: float, gen: torch.Generator) -> None:
    if bound == 0:
        t.zero_()
    else:
        t.uniform_(-bound, bound, generator=gen)


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
    init: Literal["paper", "torch", "fixed"] = "paper",
) -> MultiHeadINR:
    """A network for an image of `image_size` (rows, cols): the multi-head model, or one of the
    paper's single-head baselines (heads and α are then ignored)."""
    h, w = image_size
    if kind == "multihead":
        hy, hx = heads
        if hy > h or hx > w:
            raise ValueError(f"heads grid {hy}x{hx} is larger than the image {h}x{w}")
        cell = (math.ceil(h / hy), math.ceil(w / hx))
        # where the size does not divide, as many heads as the cells the image reaches: 64
        # heads over 300 rows make cells of 5, and 60 of them cover the rows (64 would leave
        # whole rows of heads over padding only, which the file format refuses)
        heads = (math.ceil(h / cell[0]), math.ceil(w / cell[1]))
        cfg = INRConfig(
            heads, cell, channels, width, depth, alpha, head_bias, body, init=init, seed=seed
        )
    elif kind in ("relu", "siren", "fourier"):
        kinds: dict[str, BodyKind] = {"relu": "relu", "siren": "sine", "fourier": "fourier"}
        body_kind = kinds[kind]
        cfg = INRConfig(
            (1, 1), (h, w), channels, width, depth, width, True, body_kind, init=init, seed=seed
        )
    else:
        raise ValueError(f"unknown model {kind!r}: multihead, relu, siren or fourier")
    return MultiHeadINR(cfg)


def padding(cfg: INRConfig, image_size: tuple[int, int]) -> tuple[int, int]:
    """Rows and columns of edge padding below and right of the image."""
    ch, cw = cfg.canvas
    return ch - image_size[0], cw - image_size[1]
