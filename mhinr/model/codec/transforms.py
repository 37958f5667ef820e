"""The coefficient storage's transforms: a cell's orthonormal basis (Cholesky of the body's
features' Gram matrix, constant first, so the basis is unique and has no sign ambiguity;
format 3 files since 2026-11-30 then rotate it into Karhunen–Loève order for an AR(1) pixel
model, `klt_rotation`; the cosine body's basis is the cell's DCT), and the heads a decoder
writes from coefficients (value = q · step), folding the per-image colour transform (KLT,
model/codec/colour.py) back in, so that the decoded model is exactly a multi-head INR. The
constant terms' prediction (DC) is format 3's (model/codec/format3.py)."""

import math

import numpy as np
import torch

from mhinr.model.codec.container import CodecError, Coded
from mhinr.model.codec.entropy import unzigzag
from mhinr.model.codec.format1 import body_names, load_params
from mhinr.model.network import MultiHeadINR, cell_feature_factor, dct_basis

# The correlation of neighbouring pixels in the image model whose Karhunen–Loève order the
# coefficients are kept in (`klt_rotation`). BD-rate of the rotated coding against the
# Cholesky order, one `compact` fit each, filter on (`python -m benchmarks.codec_experiments
# klt --images kodim23,kodim05,chelsea`): ρ = 0.99 −14.9, −8.1, −15.5 %; ρ from 0.9 to
# 0.995 and the grid Laplacian's smoothness order all within 1.6 % of it (the Laplacian
# best by 1.4 on these three), the image's own KLT (which would cost k² numbers) no better.
AR1_RHO = 0.99


_GOLDEN = (math.sqrt(5) - 1) / 2


def ar1_covariance(cell: tuple[int, int], rho: float = AR1_RHO) -> torch.Tensor:
    """[n, n] (float64) covariance ρ^(|Δy|+|Δx|) of a cell's n pixels, in the row-major order
    of network.cell_coordinates."""
    n_y, n_x = cell
    ys = torch.arange(n_y, dtype=torch.float64).repeat_interleave(n_x)
    xs = torch.arange(n_x, dtype=torch.float64).repeat(n_y)
    return rho ** ((ys[:, None] - ys).abs() + (xs[:, None] - xs).abs())


def klt_rotation(basis: torch.Tensor, cell: tuple[int, int]) -> torch.Tensor:
    """[k, k] rotation R (float64) of an orthonormal cell basis [n, k] (constant first) into
    Karhunen–Loève order for pixels with correlation ρ^(|Δy|+|Δx|) (ρ = AR1_RHO): column 0
    stays the constant, the others become the eigenvectors of that covariance within the
    span of the rest, largest variance first. Natural images are close to that model, so
    the coefficients' energy is packed into the first rows (as the DCT packs JPEG's): for
    the same error the quantized coefficients are mostly zeros. The rotation is a function of
    the body alone, so the decoder computes it and the file carries nothing for it. Each
    eigenvector's sign is the one whose image correlates positively with a fixed irregular
    pattern (eigenvectors have no sign of their own)."""
    n_y, n_x = cell
    cov = ar1_covariance(cell)
    rest = basis[:, 1:].double()
    inner = rest.T @ cov @ rest
    _, vecs = torch.linalg.eigh((inner + inner.T) / 2)  # ascending
    vecs = vecs.flip(1)
    pattern = torch.frac(torch.arange(1, n_y * n_x + 1, dtype=torch.float64) * _GOLDEN) - 0.5
    signs = torch.where(pattern @ rest @ vecs < 0, -1.0, 1.0).to(torch.float64)
    rot = torch.eye(basis.shape[1], dtype=torch.float64)
    rot[1:, 1:] = vecs * signs
    return rot


def _cell_transform(net: MultiHeadINR, klt: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(Φ [n, k], T [k, k]) for the native cell features Φ (network.cell_feature_factor):
    U = Φ T is orthonormal over a cell's n pixels, constant first. T = Lᵀ⁻¹, or with `klt`
    Lᵀ⁻¹ R, R the rotation of Φ Lᵀ⁻¹ into Karhunen–Loève order (`klt_rotation`). The fixed
    (cosine) body is the cell's DCT: U is then `dct_basis` itself, whatever `klt` says."""
    with torch.no_grad():
        phi, chol = cell_feature_factor(net)
    if net.cfg.init == "fixed":  # the cosine body: Φ is the DCT up to float32 rounding
        return phi, torch.linalg.solve(phi, dct_basis(net.cfg.cell))
    eye = torch.eye(chol.shape[0], dtype=torch.float64)
    linv_t = torch.linalg.solve_triangular(chol.T, eye, upper=True)
    if klt:
        linv_t = linv_t @ klt_rotation(phi @ linv_t, net.cfg.cell)
    return phi, linv_t


def cell_basis(net: MultiHeadINR, klt: bool = False) -> torch.Tensor:
    """T [k, k] (`_cell_transform`): head weights [bias, w] = T c for coefficients c."""
    return _cell_transform(net, klt)[1]


def coding_basis(net: MultiHeadINR, klt: bool = False) -> torch.Tensor:
    """U = Φ T [n, k] (`_cell_transform`): the orthonormal basis a cell's pixels are coded
    in, the one the decoder's heads reproduce."""
    phi, transform = _cell_transform(net, klt)
    return phi @ transform


def coefficients_to_heads(
    net: MultiHeadINR,
    coef: torch.Tensor,
    colour: torch.Tensor | None,
    mean: torch.Tensor | None,
    klt: bool = False,
) -> None:
    """Write head weights from coefficients [k, C·Hy·Hx] (coded colour space; with `klt` in
    the Karhunen–Loève-ordered basis) into `net`, folding in the colour transform
    (RGB = colour @ coded + mean)."""
    c = net.cfg.channels
    m = net.cfg.num_heads
    weights = cell_basis(net, klt) @ coef.double()  # [k, C·M]: row 0 the bias, then the units
    if colour is not None:
        w = weights.reshape(-1, c, m)  # [k, C_coded, M]
        w = torch.einsum("ij,kjm->kim", colour.double(), w)  # mix coded channels into RGB
        if mean is not None:
            w[0] += mean.double()[:, None]
        weights = w.reshape(-1, c * m)
    assert net.heads.bias is not None  # coefficient heads have biases (the constant terms)
    with torch.no_grad():
        net.heads.bias.copy_(weights[0].float())
        net.heads.weight.copy_(weights[1:].T.float())  # [O, width]


def load_coefficients(
    net: MultiHeadINR,
    coded: Coded,
    tensors: dict[str, np.ndarray],
    klt: bool = False,
    prediction: np.ndarray | None = None,
) -> None:
    """Heads from a file's integer coefficients (`tensors["coefficients"]`, zigzag) times
    its step, plus `prediction` [k, C·Hy·Hx] where the file coded residuals against one
    (format3.dc_interpolation)."""
    cfg = net.cfg
    if cfg.alpha != cfg.width or not cfg.head_bias:
        raise CodecError("coefficient storage needs dense heads with a bias")
    if coded.step is None or not coded.step > 0:
        raise CodecError("coefficient storage needs a positive quantizer step")
    load_params(net, body_names(net), tensors)
    if "coefficients" not in tensors:
        raise CodecError("the file lacks its coefficients")
    z = tensors["coefficients"]
    expected = (cfg.width + 1, cfg.channels * cfg.num_heads)
    if z.shape != expected or z.dtype.kind != "u":
        raise CodecError(f"coefficients of shape {z.shape}, expected {expected}")
    coef = torch.from_numpy(unzigzag(z).astype(np.float64)) * coded.step
    if prediction is not None:
        coef += torch.from_numpy(prediction)
    colour = mean = None
    if coded.colour is not None:
        colour = torch.tensor(coded.colour, dtype=torch.float64)
        mean = torch.tensor(coded.colour_mean, dtype=torch.float64)
        if colour.shape != (cfg.channels, cfg.channels) or mean.shape != (cfg.channels,):
            raise CodecError("the colour transform does not match the channels")
    coefficients_to_heads(net, coef, colour, mean, klt)
