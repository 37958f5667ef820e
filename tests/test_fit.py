import pytest
import torch

from mhinr.model.fit import LOOP_SHARE, FitConfig, fit, fit_projection, lr_factor
from mhinr.model.metrics import psnr
from mhinr.model.network import build_network
from mhinr.model.render import render
from tests.conftest import smooth_image


def small_net(image, heads=(8, 8), **kw):
    kw.setdefault("width", 32)
    kw.setdefault("alpha", 16)
    return build_network("multihead", tuple(image.shape[1:]), image.shape[0], heads=heads, **kw)


def test_fit_is_deterministic_under_a_seed():
    img = smooth_image(1, 32, 32)
    nets = []
    for _ in range(2):
        net = small_net(img, seed=5)
        torch.manual_seed(len(nets))  # the global generator differs: the fit must not care
        before = torch.get_rng_state()
        fit(net, img, FitConfig(steps=15, solve_heads=False))
        # no global seeding inside a fit: concurrent fits in one process would race on it
        assert torch.equal(torch.get_rng_state(), before)
        nets.append(net)
    for a, b in zip(nets[0].state_dict().values(), nets[1].state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_adam_then_head_solve_reproduces_the_training_image():
    img = smooth_image(3, 48, 64)
    net = small_net(img, heads=(12, 16), width=64, alpha=32)  # 4×4 cells, 33 unknowns ≥ 16
    result = fit(net, img, FitConfig(steps=20))
    assert result.psnr > 60
    assert psnr(render(net, (48, 64)), img) > 50  # 8-bit: at most a rounding step away


def test_adam_alone_improves_psnr_over_the_steps():
    img = smooth_image(1, 32, 32)
    net = small_net(img, width=64, alpha=32)
    result = fit(net, img, FitConfig(steps=150, lr=3e-3, solve_heads=False, progress_every=10))
    psnrs = [p.psnr for p in result.history]
    assert psnrs[-1] > psnrs[0] + 5
    assert result.stopped == "steps" and result.steps == 150


def test_target_psnr_stops_early():
    img = smooth_image(1, 32, 32)
    result = fit(small_net(img), img, FitConfig(steps=2000, target_psnr=20, solve_heads=False))
    assert result.stopped == "target_psnr"
    assert result.steps < 2000 and result.history[-1].psnr >= 20


def test_time_budget_stops_the_fit():
    img = smooth_image(1, 64, 64)
    net = small_net(img, heads=(16, 16), width=128, alpha=64)
    result = fit(net, img, FitConfig(steps=100_000, time_budget_s=0.5))
    assert result.stopped == "time_budget"
    assert result.seconds < 2.0


def test_cancel_flag_stops_within_a_step():
    img = smooth_image(1, 32, 32)
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) >= 7

    result = fit(small_net(img), img, FitConfig(steps=1000), should_stop=stop)
    assert result.stopped == "cancelled" and result.steps == 7


def test_progress_callback_reports_each_interval_with_elapsed_time():
    img = smooth_image(1, 32, 32)
    seen = []
    fit(
        small_net(img),
        img,
        FitConfig(steps=25, progress_every=10, solve_heads=False),
        progress=seen.append,
    )
    assert [p.step for p in seen] == [1, 10, 20, 25]
    assert all(p.total == 25 for p in seen)
    assert all(b.elapsed_s >= a.elapsed_s for a, b in zip(seen, seen[1:], strict=False))


def test_sizes_that_do_not_divide_into_the_grid_are_padded_and_cropped():
    img = smooth_image(3, 45, 67)
    net = small_net(img, heads=(9, 13), width=64, alpha=40)
    # 13 heads over 67 columns make cells of 6, and 12 of them reach the last column: the
    # canvas pads less than a cell (a 13th head would cover padding only)
    assert net.cfg.heads == (9, 12) and net.cfg.canvas == (45, 72)
    fit(net, img, FitConfig(steps=20))
    out = render(net, (45, 67))
    assert out.shape == (3, 45, 67)
    assert psnr(out, img) > 45


def test_paper_schedule_decays_by_exp_minus_point_one_every_50_steps():
    assert lr_factor("paper", 0, 2000) == 1.0
    assert lr_factor("paper", 49, 2000) == 1.0
    assert abs(lr_factor("paper", 50, 2000) - 0.904837) < 1e-6
    assert abs(lr_factor("paper", 1999, 2000) - torch.exp(torch.tensor(-3.9)).item()) < 1e-6
    cfg = FitConfig.paper()
    assert (cfg.lr, cfg.steps, cfg.solve_heads) == (1e-3, 2000, False)


def test_baselines_fit_through_the_same_interface():
    img = smooth_image(1, 24, 24)
    for kind in ("relu", "siren", "fourier"):
        net = build_network(kind, (24, 24), 1, width=32, depth=2)
        r = fit(net, img, FitConfig(steps=100, lr=1e-3))
        assert r.steps == 100 and r.psnr > r.history[0].psnr + 8
        assert render(net, (24, 24), (48, 48), method="plain").shape == (1, 48, 48)


def test_a_fit_with_head_solves_never_ends_worse_than_its_first_solve():
    img = smooth_image(1, 64, 64, seed=2)
    net = small_net(img, heads=(16, 16), width=64, alpha=8)
    # a reckless learning rate kills ReLU units the solve needs
    result = fit(net, img, FitConfig(steps=60, lr=5e-2, schedule="constant"))
    assert result.history[0].step == 0
    assert result.psnr >= result.history[0].psnr - 1e-9


def test_paper_init_has_zero_biases_and_torch_init_does_not():
    from dataclasses import replace

    net = build_network("multihead", (32, 32), 1, heads=(4, 4), width=16, alpha=8)
    assert net.cfg.init == "paper"
    assert all(float(m.bias.detach().abs().max()) == 0 for m in net.body.net if hasattr(m, "bias"))
    assert float(net.heads.bias.abs().max()) == 0
    assert float(net.heads.weight.abs().max()) <= (3 / net.heads.weight.numel()) ** 0.5
    net.cfg = replace(net.cfg, init="torch")
    net.reset_parameters()
    assert float(net.heads.bias.abs().max()) > 0


@pytest.mark.parametrize("train", [fit, fit_projection])
def test_both_fits_stop_and_report_the_same_way(train):
    """`fit` and `fit_projection` share one loop: a cancel stops within a step and is the last
    report; the time budget leaves its reserve; the last report is the returned step."""
    img = smooth_image(3, 32, 32)
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) >= 4

    seen = []
    r = train(small_net(img, alpha=32), img, FitConfig(steps=1000), seen.append, stop)
    assert (r.stopped, r.steps, seen[-1].step) == ("cancelled", 4, 4)
    net = small_net(img, heads=(4, 4), width=64, alpha=64)
    r = train(net, img, FitConfig(steps=100_000, time_budget_s=0.6))
    assert r.stopped == "time_budget" and 0.6 * LOOP_SHARE <= r.seconds < 0.6 + 0.3
    seen = []
    r = train(small_net(img, alpha=32), img, FitConfig(steps=12, progress_every=5), seen.append)
    assert r.stopped == "steps" and seen[-1].step == r.steps == 12
    assert [p.step for p in seen if p.step > 0][:3] == [1, 5, 10]
