import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity
from torch.utils.flop_counter import FlopCounterMode

from mhinr.model.metrics import psnr, render_flops, seam_ratio, ssim
from mhinr.model.network import build_network, cell_coordinates, width_for_params
from tests.conftest import smooth_image


def test_psnr_of_a_known_error():
    a = torch.zeros(1, 10, 10, dtype=torch.uint8)
    b = a.clone()
    b[0, 0, 0] = 10  # mse = 100 / 100 = 1
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2))
    assert psnr(a, a) == float("inf")
    with pytest.raises(ValueError):
        psnr(a, torch.zeros(1, 9, 10, dtype=torch.uint8))


def test_psnr_of_floats_is_taken_on_8_bit_values():
    x = torch.rand(3, 8, 8)
    assert psnr(x, x + 0.0005) == float("inf") or psnr(x, x + 0.0005) > 55


@pytest.mark.parametrize("channels", [1, 3])
def test_ssim_matches_scikit_image(channels):
    a = (smooth_image(channels, 40, 50) * 255).round().to(torch.uint8)
    noise = torch.randint(-20, 21, a.shape, generator=torch.Generator().manual_seed(0))
    b = (a.int() + noise).clamp(0, 255).to(torch.uint8)
    ref = structural_similarity(
        a.permute(1, 2, 0).numpy(),
        b.permute(1, 2, 0).numpy(),
        channel_axis=2,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
    )
    assert ssim(a, b) == pytest.approx(ref, abs=1e-6)
    assert ssim(a, a) == pytest.approx(1.0)


def test_seam_ratio_is_near_one_for_a_smooth_image_and_high_for_blocks():
    smooth = smooth_image(1, 64, 64)
    assert 0.8 < seam_ratio(smooth, (8, 8), 2) < 1.2
    blocks = torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(1))
    blocky = blocks.repeat_interleave(8, 1).repeat_interleave(8, 2) + smooth * 0.1
    assert seam_ratio(blocky, (8, 8), 2) > 5


def count(fn) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        fn()
    return counter.get_total_flops()


@pytest.mark.parametrize("body", ["relu", "fourier"])
def test_render_flops_formulas_match_counted_operations(body):
    net = build_network("multihead", (64, 64), 3, heads=(16, 16), width=32, alpha=8, body=body)
    pts = cell_coordinates(8, 8)
    executed = count(lambda: net.grid(8, 8))
    sparse = count(lambda: net.heads.forward_gather(net.body(pts)))
    assert executed == render_flops(net, 64, "executed")
    assert sparse == render_flops(net, 64, "paper")
    assert sparse < executed


def test_paper_flops_at_512_favour_multihead_by_thousands():
    mh = build_network("multihead", (256, 256), 1, heads=(64, 64), alpha=64)
    siren = build_network("siren", (256, 256), 1, width=width_for_params("siren", 464_384))
    mh_flops = render_flops(mh, 8 * 8)  # 512² = 8×8 pixels per cell
    siren_flops = render_flops(siren, 512 * 512)
    assert 55e6 < mh_flops < 62e6
    assert siren_flops / mh_flops > 3000
    assert np.isfinite(siren_flops)


def test_bd_rate_measures_the_rate_saved_at_equal_quality():
    from benchmarks.common import bd_rate, pareto

    psnr = [28.0, 31.0, 34.0, 37.0]
    rate = [0.2, 0.4, 0.8, 1.6]
    assert abs(bd_rate(rate, psnr, rate, psnr)) < 1e-9
    half = [r / 2 for r in rate]  # the same quality at half the bytes: -50 %
    assert abs(bd_rate(half, psnr, rate, psnr) + 50) < 1e-6
    assert abs(bd_rate(rate, psnr, half, psnr) - 100) < 1e-6
    # only the shared PSNR range counts; none shared: None
    assert bd_rate([1, 2], [20, 22], [1, 2], [30, 32]) is None
    # 1.5x the bytes for 1 dB more, where B doubles its bytes every 3 dB (x1.26 a dB):
    # at equal quality A needs 1.5 / 2^(1/3) - 1 = +19 %
    shifted = bd_rate([r * 1.5 for r in rate], [p + 1 for p in psnr], rate, psnr)
    assert abs(shifted - (1.5 / 2 ** (1 / 3) - 1) * 100) < 0.5
    assert pareto([(1, 30), (2, 29), (2, 31), (3, 31), (0.5, 25)]) == [(0.5, 25), (1, 30), (2, 31)]


def _square(task):  # module level: the process pool pickles it
    return {"key": task, "value": task * task}


def test_benchmark_stream_holds_this_runs_rows_and_reuses_an_earlier_one(tmp_path):
    """run_streamed: each run's stream has its own rows only (it appended to the last
    run's before), reused rows are taken as they are, and a stream can reuse itself."""
    import json

    from benchmarks.common import run_streamed

    stream = tmp_path / "s.jsonl"
    rows, reused = run_streamed(_square, [2, 3], lambda t: t, lambda r: r["key"], stream, 1, None)
    assert [r["value"] for r in rows] == [4, 9] and reused == 0
    stream.write_text(stream.read_text().replace('"value": 9', '"value": 90'))
    rows, reused = run_streamed(_square, [3, 4], lambda t: t, lambda r: r["key"], stream, 1, stream)
    assert [r["value"] for r in rows] == [90, 16] and reused == 1  # 3 reused, 4 computed
    lines = [json.loads(x) for x in stream.read_text().splitlines()]
    assert sorted(r["key"] for r in lines) == [3, 4]  # 2 belonged to the run before
