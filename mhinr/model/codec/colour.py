"""The per-image colour transform of the coefficient storage."""

import torch
from torch import Tensor


def colour_transform(pixels: Tensor) -> tuple[Tensor, Tensor]:
    """Per-image decorrelating transform (KLT): orthonormal [C, C] (columns = principal
    axes, strongest first) and the channel means. Coded = colourᵀ (pixel − mean)."""
    flat = pixels.reshape(pixels.shape[0], -1).double()
    mean = flat.mean(1)
    if pixels.shape[0] == 1:
        return torch.ones(1, 1), mean.float()
    cov = torch.cov(flat)
    _, vecs = torch.linalg.eigh(cov)
    vecs = vecs.flip(1)
    vecs = vecs * torch.where(vecs.sum(0) < 0, -1.0, 1.0)  # a sign convention, for readability
    return vecs.float(), mean.float()
