import math

import pytest
import torch


def smooth_image(channels: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """A deterministic smooth test image [C, H, W] in [0, 1] with some detail."""
    g = torch.Generator().manual_seed(seed)
    ys = torch.linspace(0, 1, h)[:, None]
    xs = torch.linspace(0, 1, w)[None, :]
    chans = []
    for _ in range(channels):
        a, b, c = (torch.rand(3, generator=g) * 6 + 1).tolist()
        chans.append(
            0.5 + 0.25 * torch.sin(a * math.pi * xs + b * ys) * torch.cos(c * math.pi * ys)
        )
    return torch.stack(chans).clamp(0, 1)


@pytest.fixture
def image_rgb() -> torch.Tensor:
    return smooth_image(3, 48, 64)
