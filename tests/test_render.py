import json
import subprocess
import sys

import pytest
import torch

from mhinr.model.fit import FitConfig, fit
from mhinr.model.images import to_uint8
from mhinr.model.metrics import psnr, seam_ratio
from mhinr.model.network import build_network
from mhinr.model.render import output_size, render, render_grid_u8
from tests.conftest import smooth_image


@pytest.fixture(scope="module")
def fitted():
    img = smooth_image(3, 48, 64)
    net = build_network("multihead", (48, 64), 3, heads=(12, 16), width=64, alpha=32)
    fit(net, img, FitConfig(steps=20))
    return net, img


def test_plain_render_at_a_multiple_of_the_grid_is_one_body_pass_shared_by_all_heads(fitted):
    net, _ = fitted
    out = render(net, (48, 64), (96, 128), method="plain")
    with torch.no_grad():
        expected = to_uint8(net.grid(8, 8))
    assert torch.equal(out, expected)


@pytest.mark.parametrize("method", ["plain", "resample"])
@pytest.mark.parametrize("size", [(48, 64), (96, 128), (50, 70), (31, 17), (200, 77), (1, 1)])
def test_any_output_size_renders(fitted, method, size):
    net, _ = fitted
    out = render(net, (48, 64), size, method=method)
    assert out.shape == (3, *size) and out.dtype == torch.uint8


def test_both_methods_agree_at_the_native_size(fitted):
    net, img = fitted
    a, b = render(net, (48, 64), method="plain"), render(net, (48, 64), method="resample")
    assert torch.equal(a, b)
    assert psnr(a, img) > 50


def test_non_aligned_upsample_stays_close_to_the_aligned_one(fitted):
    net, _ = fitted
    aligned = render(net, (48, 64), (96, 128)).float()[None]
    odd = render(net, (48, 64), (97, 130)).float()[None]
    back = torch.nn.functional.interpolate(odd, size=(96, 128), mode="bilinear", antialias=True)
    assert psnr(back[0].round().to(torch.uint8), aligned[0].to(torch.uint8)) > 30


def test_resample_render_has_no_cell_grid_where_the_plain_one_does():
    img = smooth_image(1, 64, 64, seed=3)
    net = build_network("multihead", (64, 64), 1, heads=(16, 16), width=64, alpha=32)
    fit(net, img, FitConfig(steps=20))
    plain = render(net, (64, 64), (128, 128), method="plain")
    smooth = render(net, (64, 64), (128, 128), method="resample")
    assert seam_ratio(smooth, (8, 8), 2) < 1.2
    assert seam_ratio(plain, (8, 8), 2) > seam_ratio(smooth, (8, 8), 2)


def test_output_size_keeps_the_aspect_ratio():
    assert output_size((512, 768), size=1024) == (683, 1024)
    assert output_size((768, 512), size=1024) == (1024, 683)
    assert output_size((512, 768), width=384) == (256, 384)
    assert output_size((512, 768), width=100, height=50) == (50, 100)
    assert output_size((512, 768)) == (512, 768)
    for bad in (dict(size=0), dict(size=-5), dict(width=0), dict(size=4, width=3)):
        with pytest.raises(ValueError):
            output_size((10, 10), **bad)


def test_chunked_grid_equals_one_pass():
    net = build_network("multihead", (32, 32), 2, heads=(8, 8), width=16, alpha=8)
    whole = render_grid_u8(net, 12, 12)
    tiny_chunks = render_grid_u8(net, 12, 12, max_chunk_bytes=1)
    assert torch.equal(whole, tiny_chunks)


PEAK_SCRIPT = """
import json, resource, sys, torch
from mhinr.model.network import build_network
from mhinr.model.render import render
net = build_network("multihead", (256, 256), 3, heads=(64, 64), alpha=64)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = render(net, (256, 256), (4096, 4096), method=sys.argv[1], max_chunk_bytes=32 * 2**20)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_mb": (after - before) / 1024, "shape": list(out.shape)}))
"""


@pytest.mark.parametrize("method", ["plain", "resample"])
def test_large_render_memory_stays_bounded(method):
    # 4096² RGB with 64² heads: one unchunked pass would hold [4096 points, 12288 outputs]
    # float32 (200 MB) twice. The output itself is 48 MB; with 32 MB chunks the peak must
    # stay well under the unchunked cost (the 8192² / 2 GB default scales from this).
    proc = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, method], capture_output=True, text=True, check=True
    )
    res = json.loads(proc.stdout)
    assert res["shape"] == [3, 4096, 4096]
    assert res["peak_mb"] < 200, res


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (300, 211)])
def test_the_parallel_png_writer_writes_the_pixels_exactly(channels, shape):
    """model/png.py: what Pillow reads back is the array; the same pixels give the same
    bytes (the ETag's promise)."""
    import io

    import numpy as np
    from PIL import Image

    from mhinr.model.png import encode_png

    rng = np.random.default_rng(channels)
    smooth = np.linspace(0, 255, shape[0] * shape[1] * channels) % 256
    a = (smooth.reshape(*shape, channels) + rng.integers(0, 9, (*shape, channels))) % 256
    a = a.astype(np.uint8)
    data = encode_png(a)
    back = np.asarray(Image.open(io.BytesIO(data)))
    assert np.array_equal(back.reshape(a.shape), a)
    assert encode_png(a.copy()) == data
    with pytest.raises(ValueError):
        encode_png(a.astype(np.uint16))


def test_resizing_rgb_at_once_equals_channel_by_channel():
    import numpy as np
    from PIL import Image

    from mhinr.model.images import to_pil
    from mhinr.model.render import resize_u8

    img = (smooth_image(3, 37, 53) * 255).round().to(torch.uint8)
    whole = resize_u8(img, 91, 130, (0, 0, 53, 37))
    for i in range(3):
        ch = to_pil(img[i : i + 1]).resize((130, 91), Image.Resampling.LANCZOS, box=(0, 0, 53, 37))
        assert torch.equal(whole[i], torch.from_numpy(np.array(ch)))
