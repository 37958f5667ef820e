"""The `upscale` preset: the arbitrary-scale INR (the shipped prior, and the internal-learning
fit the benchmarks compare it with), its .inr storage, its renders and its API."""

import copy
import io
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from mhinr.app.main import create_app
from mhinr.model.codec import FORMAT_VERSION, PREFIX, CodecError, decode
from mhinr.model.compress import Options, check_options, compress
from mhinr.model.fit import mse_to_psnr
from mhinr.model.images import to_uint8
from mhinr.model.metrics import psnr
from mhinr.model.render import render
from mhinr.model.upscale import (
    _BF16,
    UpscaleConfig,
    UpscaleFit,
    UpscaleINR,
    _native_bf16,
    _pair,
    _validate,
    _validation_pair,
    area_down,
    area_matrix,
    cells,
    fit_upscaler,
    lanczos_held_out,
    turn,
    turn_coords,
)
from mhinr.worker.fit import run_fit
from tests.conftest import smooth_image
from tests.service_helpers import png_bytes, settings_for


def textured(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Smooth waves plus fine stripes: something a ×2 enlargement can get wrong."""
    base = smooth_image(3, h, w, seed)
    xs = torch.arange(w, dtype=torch.float32)[None, None]
    ys = torch.arange(h, dtype=torch.float32)[None, :, None]
    stripes = 0.15 * torch.sin(0.9 * xs + 0.4 * ys)
    return to_uint8((base + stripes).clamp(0, 1)).float() / 255


@pytest.fixture(scope="module")
def fitted():
    torch.manual_seed(0)
    image = textured(40, 56)
    out = compress(image, "RGB", Options(preset="upscale"))
    return image, out


@pytest.fixture(scope="module")
def trained():
    """An upscaler trained on its image (60 steps) and stored with its weights: the files
    of format version 4 and before."""
    from mhinr.model.codec import Coded, encode_upscale
    from mhinr.model.codec.upscaler import WEIGHT_LEVELS, quantize_weights_

    image = textured(40, 56)
    net, _ = fit_upscaler(image, UpscaleConfig(), UpscaleFit(steps=60, time_budget_s=600))
    quantize_weights_(net, WEIGHT_LEVELS)
    coded = Coded(40, 56, "RGB", "upscale", "int8")
    return image, net, encode_upscale(net, coded, levels=WEIGHT_LEVELS)


def test_native_size_render_reproduces_the_upload_exactly(fitted):
    image, out = fitted
    assert out.coded.storage == "upscale"
    native = render(out.net, (40, 56))
    assert torch.equal(native, to_uint8(image))
    assert out.psnr == float("inf") and out.summary()["psnr"] is None  # JSON-safe


@pytest.mark.parametrize("size", [(60, 84), (108, 151), (97, 56), (40, 113)])
def test_non_integer_and_anisotropic_scales_render_at_the_asked_size(fitted, size):
    image, out = fitted
    big = render(out.net, (40, 56), size)
    assert big.shape == (3, *size) and big.dtype == torch.uint8
    # a sensible picture of the same scene: close to Lanczos of the input at the same size
    lanczos = [
        np.asarray(
            Image.fromarray(to_uint8(image)[c].numpy()).resize(size[::-1], Image.Resampling.LANCZOS)
        )
        for c in range(3)
    ]
    assert psnr(big, torch.from_numpy(np.stack(lanczos))) > 24


@pytest.mark.parametrize(("mode", "channels"), [("L", 1), ("RGBA", 4)])
def test_grey_and_alpha_images_enlarge_too(mode, channels):
    image = textured(20, 26)[:channels] if channels < 4 else torch.cat([textured(20, 26)] * 2)[:4]
    out = compress(image, mode, Options(preset="upscale"))
    assert torch.equal(render(out.net, (20, 26)), to_uint8(image))
    big = render(out.net, (20, 26), (50, 65))
    assert big.shape == (channels, 50, 65)
    assert decode(out.data)[1].mode == mode
    # the RGB prior enlarges a grey channel as three equal ones: a sensible picture of it
    for c in range(channels):
        plane = Image.fromarray(to_uint8(image)[c].numpy())
        lanczos = np.array(plane.resize((65, 50), Image.Resampling.LANCZOS))
        assert psnr(big[c : c + 1], torch.from_numpy(lanczos)[None]) > 24


def test_render_is_continuous_across_cell_borders(fitted):
    _, out = fitted
    net = out.net
    heads, img = net.heads_for_image()[0], net.image
    eps = 1e-4
    for border in (3.0, 17.0, 30.0):  # where the four blended cells change
        pts = torch.tensor(
            [[border - eps, 20.3], [border + eps, 20.3], [11.7, border - eps], [11.7, border + eps]]
        )
        with torch.no_grad():
            vals = net.query(heads, img, pts, 2.7)
        assert (vals[0] - vals[1]).abs().max() < 1e-3
        assert (vals[2] - vals[3]).abs().max() < 1e-3


def test_smaller_sizes_are_reductions_of_the_image(fitted):
    image, out = fitted
    small = render(out.net, (40, 56), (20, 28))
    assert small.shape == (3, 20, 28)
    box = torch.nn.functional.avg_pool2d(to_uint8(image)[None].float(), 2)[0]
    assert psnr(small, box.round().to(torch.uint8)) > 28


def test_render_in_small_chunks_equals_one_chunk(fitted):
    _, out = fitted
    whole = out.net.render((95, 133))
    chunked = out.net.render((95, 133), max_points=1000)
    assert torch.equal(whole, chunked)


@pytest.mark.parametrize("views", [(0, 1, 2, 3), (0, 4), (5, 6, 7)])
def test_the_fused_render_is_the_mean_of_each_views_queries(fitted, views):
    """The render evaluates all views in one product over a separable grid, with the views'
    heads turned back onto the image's cells; `query` on each turned view is the plain
    definition. They must agree up to float rounding (bfloat16 where the CPU has it)."""
    _, out = fitted
    net = replace_blend(out.net, 1.0)
    size = (93, 131)
    h, w = net.image.shape[1:]
    sy, sx = size[0] / h, size[1] / w
    ys = (torch.arange(size[0]) + 0.5) / sy - 0.5
    xs = (torch.arange(size[1]) + 0.5) / sx - 0.5
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    pts = torch.stack([gy.reshape(-1), gx.reshape(-1)], 1)
    scale = (sy * sx) ** 0.5
    with torch.no_grad():
        vals = sum(
            net.query(heads, turn(net.image, k), turn_coords(pts, k, h, w), scale)
            for k, heads in zip(views, net.heads_for_image(views), strict=True)
        )
    want = to_uint8((vals / len(views)).T.reshape(3, *size).clamp(0, 1))
    got = net.render(size, back_project=False, views=views)
    diff = (got.int() - want.int()).abs()
    # a wrong cell or offset for any view is off by many levels; rounding by one. The render
    # computes in bfloat16 where the CPU has it (encoder and body): more values are one off
    assert diff.max() <= 1 and (diff > 0).float().mean() < (0.05 if _BF16 else 0.01)


def replace_blend(net: UpscaleINR, weight: float) -> UpscaleINR:
    """A copy of `net` (the same weights, image and caches) that keeps `weight` of the
    network at every scale; `net` is a module fixture's and keeps its own blend."""
    other = copy.copy(net)
    other.blend = [weight] * len(net.blend)
    return other


def test_banded_encoder_equals_the_whole_image_pass(fitted):
    _, out = fitted
    net = out.net
    net.set_image(net.image)
    views = tuple(range(8))
    banded = net.heads_for_image(views, band_bytes=1)  # one row a band
    for k, got in zip(views, banded, strict=True):
        with torch.no_grad():
            want = cells(net.encoder(turn(net.image, k)[None])[0])
        assert torch.allclose(got.float(), want.half().float(), atol=1e-3)


@pytest.mark.parametrize("size", [(80, 112), (93, 131)])
def test_the_render_of_a_turned_image_is_the_turned_render(fitted, size):
    """The four-rotation self-ensemble makes the enlargement exactly equivariant: a wrong
    coordinate mapping for any of the turned views breaks this."""
    image, out = fitted
    net = replace_blend(out.net, 1.0)  # the network's render (Pillow's 8-bit Lanczos is not
    straight = net.render(size)  # quite the same turned: its rounding differs)
    net.set_image(turn(image, 1))
    try:
        turned = net.render(size[::-1])
    finally:
        net.set_image(image)
    diff = (turn(straight, 1).int() - turned.int()).abs()
    assert diff.max() <= 1 and (diff > 0).float().mean() < 0.01  # rounding of float sums


def test_every_view_maps_points_onto_the_same_pixels():
    image = torch.rand(3, 5, 7)
    pts = torch.tensor([[0.0, 0.0], [4.0, 6.0], [1.0, 5.0], [3.0, 2.0]])
    for k in range(8):
        mapped = turn_coords(pts, k, 5, 7).long()
        view = turn(image, k)
        for (y, x), (ty, tx) in zip(pts.long().tolist(), mapped.tolist(), strict=True):
            assert torch.equal(view[:, ty, tx], image[:, y, x]), k


def _pair_loss(net: UpscaleINR, image: torch.Tensor) -> float:
    """Mean L1 error of ×2 predictions on fixed (small copy → crop) pairs of `image`."""
    gen = torch.Generator().manual_seed(123)
    total = 0.0
    with torch.no_grad():
        for _ in range(8):
            lr, hr, s = _pair(image, 2.0, 12, gen)
            heads = net.encoder(lr[None])[0]
            n = hr.shape[1]
            yy, xx = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
            coords = torch.stack([(yy + 0.5) / s - 0.5, (xx + 0.5) / s - 0.5], -1).reshape(-1, 2)
            pred = net.query(cells(heads), lr, coords.float(), s)
            total += float((pred - hr.reshape(3, -1).T).abs().mean())
    return total / 8


def test_a_training_margin_keeps_the_loss_off_the_crops_border(monkeypatch):
    """`UpscaleFit.margin`: the loss's points lie that many small-copy pixels inside the
    crop (0: anywhere in it); `loss` "l2" squares each point's error."""
    from mhinr.model.upscale import batch_loss

    image = textured(96, 96)
    net = UpscaleINR(UpscaleConfig())
    seen: list[torch.Tensor] = []
    query = net.query

    def spy(heads, lr, coords, scale):
        seen.append(coords.clone())
        return query(heads, lr, coords, scale)

    monkeypatch.setattr(net, "query", spy)
    for margin, lo in ((0, -0.5), (4, 3.5)):
        seen.clear()
        fit = UpscaleFit(crop=16, batch=2, queries=512, margin=margin)
        batch_loss(net, image, fit, torch.Generator().manual_seed(1), 2.0, "cpu")
        pts = torch.cat(seen)
        assert pts.min() >= lo - 1e-6 and pts.max() <= 15.5 - (lo + 0.5) + 1e-6
        assert pts.min() < lo + 0.3  # the points reach the interior's edge
    l1, mse = batch_loss(net, image, UpscaleFit(crop=16, batch=2), torch.Generator(), 2.0, "cpu")
    l2, mse2 = batch_loss(
        net, image, UpscaleFit(crop=16, batch=2, loss="l2"), torch.Generator(), 2.0, "cpu"
    )
    assert mse == pytest.approx(mse2) and float(l2) == pytest.approx(mse2, rel=1e-4)
    assert float(l1) > float(l2)  # errors well under 1: |e| > e²


def test_training_learns_to_enlarge_its_own_copies():
    """Sharp-edged blocks: bicubic blurs their edges; the trained body must do better on
    pairs it was not shown (another draw of crops) than the untrained one (≈ bicubic)."""
    gen = torch.Generator().manual_seed(5)
    blocks = torch.rand(3, 8, 8, generator=gen)
    image = to_uint8(blocks.repeat_interleave(7, 1).repeat_interleave(7, 2)).float() / 255
    cfg = UpscaleConfig()
    before = _pair_loss(UpscaleINR(cfg), image)
    net, info = fit_upscaler(image, cfg, UpscaleFit(steps=300, lr=2e-3, time_budget_s=120))
    assert info["steps"] == 300
    assert _pair_loss(net, image) < 0.9 * before  # measured: 0.80


def test_back_projection_makes_the_enlargement_average_back_to_the_image(fitted):
    image, out = fitted

    net = replace_blend(out.net, 1.0)  # the network's render: no share of Lanczos after it

    def error(size: tuple[int, int], bp: bool) -> float:
        big = net.render(size, back_project=bp).float() / 255
        down = torch.stack([area_down(area_down(ch, 56).T.contiguous(), 40).T for ch in big])
        return float((down - image).abs().mean())

    for size in ((80, 112), (100, 140)):  # ×2 and ×2.5
        corrected = error(size, True)
        assert corrected < 0.5 * error(size, False) and corrected < 1.5 / 255


def test_area_down_equals_the_area_matrix():
    x = torch.rand(5, 37)
    for n in (37, 20, 9):
        assert torch.allclose(area_down(x, n), x @ area_matrix(37, n).T, atol=1e-5)


def test_area_matrix_averages_exactly():
    m = area_matrix(5, 2)  # each small pixel covers 2.5 large ones
    assert torch.allclose(m.sum(1), torch.ones(2))
    assert torch.allclose(m[0], torch.tensor([0.4, 0.4, 0.2, 0, 0]))
    assert torch.allclose(area_matrix(6, 3), torch.kron(torch.eye(3), torch.full((1, 2), 0.5)))


# --- the .inr file ----------------------------------------------------------------------------


def test_inr_round_trip_names_the_prior_and_renders(fitted):
    """Since 2026-12-06 (format version 5) the file names the shipped prior and holds no
    weights: the image, the header and the blend weights only."""
    from mhinr.model.codec import unpack
    from mhinr.model.upscale_prior import PRIOR_NAME

    _, out = fitted
    net, coded = decode(out.data)
    assert isinstance(net, UpscaleINR) and coded.storage == "upscale"
    assert out.data[4] == 5  # the format version that reads it
    header, tensors = unpack(out.data)
    assert header["prior"] == PRIOR_NAME == net.prior == out.upscale["prior"]
    assert set(tensors) <= {"image_webp", "blend"}
    assert out.upscale["network_bytes"] + out.upscale["image_bytes"] == len(out.data)
    assert out.upscale["network_bytes"] < 500
    assert torch.equal(net.render((77, 108)), out.net.render((77, 108)))


def test_a_file_naming_another_prior_is_refused_and_every_prior_is_its_bytes(fitted):
    import hashlib

    from mhinr.model.upscale_prior import HERE, PRIORS, load_prior

    _, out = fitted
    for name, prior in PRIORS.items():  # the newest and the older ones files may name
        assert hashlib.sha256((HERE / prior.file).read_bytes()).hexdigest() == prior.sha256
        net = load_prior(name)
        assert net.cfg == prior.cfg and net.prior == name
    other = _repack(out.data, lambda raw: raw.replace(b'"prior-', b'"other-', 1))
    with pytest.raises(CodecError, match="upgrade"):
        decode(other)


def test_a_file_naming_an_older_prior_decodes_with_that_prior(fitted):
    """A file written when an older prior was the newest still renders with that one."""
    from mhinr.model.codec import pack, unpack
    from mhinr.model.upscale_prior import PRIOR_NAME, PRIORS

    _, out = fitted
    header, tensors = unpack(out.data)
    for name, prior in PRIORS.items():
        old = dict(header, prior=name, arch=prior.cfg.to_dict())
        net, _ = decode(pack(old, tensors, version=5))
        assert net.prior == name and net.cfg == prior.cfg
        assert net.render((77, 108)).shape == (3, 77, 108)
    assert list(PRIORS)[-1] == PRIOR_NAME


def test_a_prior_saved_under_a_new_name_loads_by_that_name(tmp_path, monkeypatch):
    """`save_prior` writes where `prior_file` says, and a `PRIORS` entry with that file and
    the hash it returned loads the same weights (how a new prior is added)."""
    from mhinr.model import upscale_prior as up

    monkeypatch.setattr(up, "HERE", tmp_path)
    up._prior_tensors.cache_clear()
    net = UpscaleINR(UpscaleConfig(layers=3, features=8, hidden=8))
    digest = up.save_prior(net, up.prior_file("prior-test"), "prior-test")
    assert up.prior_file("prior-test") == tmp_path / "upscale_prior-test.safetensors"
    monkeypatch.setitem(up.PRIORS, "prior-test",
                        up.Prior("upscale_prior-test.safetensors", digest, net.cfg, 0))  # fmt: skip
    try:
        back = up.load_prior("prior-test")
        for (k, a), (_, b) in zip(net.state_dict().items(), back.state_dict().items(), strict=True):
            assert torch.equal(a.half().float(), b), k
    finally:
        up._prior_tensors.cache_clear()


def test_a_photo_set_already_fetched_is_read_from_its_cache(tmp_path, monkeypatch):
    """`photo_set` downloads nothing when every file is in the cache (its packages here do not
    exist, so a download would fail), returns RGB in [0, 1] and halves JPEG sources; every
    shipped set names pinned packages and each file once."""
    from PIL import Image

    from mhinr.model import upscale_prior as up

    (tmp_path / "a").mkdir()
    Image.new("L", (40, 30), 200).save(tmp_path / "a" / "grey.png")
    Image.new("RGB", (40, 30), (255, 0, 0)).save(tmp_path / "a" / "red.jpg", quality=95)
    fake = up.PhotoSet(("no-such-package-mhinr=1",), ("a/grey.png", "a/red.jpg"))
    monkeypatch.setitem(up.PHOTO_SETS, "test", fake)
    grey, red = up.photo_set("test", cache=tmp_path)
    assert grey.shape == (3, 30, 40) and torch.allclose(grey, torch.full_like(grey, 200 / 255))
    assert red.shape == (3, 15, 20) and red[0].min() > 0.95 and red[1:].max() < 0.05
    for name, chosen in up.PHOTO_SETS.items():
        assert all("=" in p for p in chosen.packages), name
        assert len(set(chosen.files)) == len(chosen.files), name
    assert all(s in up.PHOTO_SETS for p in up.PRIORS.values() for s in p.photo_sets)


def test_the_prior_enlarges_a_photo_better_than_lanczos():
    """The shipped prior, on a photo it was not trained on (scikit-image's astronaut, the
    centre 192×192 box-averaged ×2): well above Lanczos (measured +1.9 dB)."""
    import skimage.data

    from mhinr.model.upscale import _lanczos_u8

    true = torch.from_numpy(skimage.data.astronaut()[160:352, 160:352].copy()).permute(2, 0, 1)
    small = torch.nn.functional.avg_pool2d(true[None].float(), 2)[0].round() / 255
    out = compress(small, "RGB", Options(preset="upscale"))
    gain = psnr(out.net.render((192, 192)), true) - psnr(_lanczos_u8(small, 192, 192), true)
    assert gain > 1.0, gain


def test_the_image_is_stored_losslessly_and_older_files_still_decode(trained):
    """Since 2026-12-05 the image is WebP lossless (smaller than the raw pixels with LZMA);
    a version 2 file, with raw pixels, decodes as before."""
    from mhinr.model.codec import pack, unpack

    image, net0, data = trained
    assert data[4] == 4  # an upscaler with its own weights: format version 4
    header, tensors = unpack(data)
    assert "image" not in tensors and tensors["image_webp"].dtype == np.uint8
    old = dict(tensors, image=to_uint8(image).numpy())
    del old["image_webp"]
    net, _ = decode(pack(header, old, version=2))
    assert net.prior is None
    assert torch.equal(net.render((80, 112)), net0.render((80, 112)))
    assert len(data) < len(pack(header, old, version=2))


def test_weights_are_stored_as_small_integers_and_fp16_files_still_decode(trained):
    """Files of format version 4 (2026-12-05) hold the encoder's convolution weights as
    integers in ±WEIGHT_LEVELS with one fp16 scale per output channel
    (`benchmarks.upscale_quant`), the rest fp16; a file with fp16 weights (before) decodes
    as before."""
    from mhinr.model.codec import pack, unpack
    from mhinr.model.codec.upscaler import WEIGHT_LEVELS, weight_tensors

    _, net0, data = trained
    header, tensors = unpack(data)
    for name, p in net0.named_parameters():
        if p.dim() >= 2 and name.startswith("encoder."):
            assert tensors[name].dtype == np.int8
            assert np.abs(tensors[name]).max() <= WEIGHT_LEVELS
            assert tensors[name + ".scale"].shape == (p.shape[0],) + (1,) * (p.dim() - 1)
        else:
            assert tensors[name].dtype == np.float16
    assert torch.equal(decode(data)[0].render((80, 112)), net0.render((80, 112)))
    old = {k: v for k, v in tensors.items() if k.startswith("image") or k == "blend"}
    old |= weight_tensors(net0, None)  # fp16, as the files until 2026-12-05
    net, _ = decode(pack(header, old))
    diff = net.render((80, 112)).int() - net0.render((80, 112)).int()
    assert diff.abs().max() <= 2  # the same weights to fp16's rounding


def test_a_byte_target_codes_the_image_with_the_cosine_codec_and_enlarges_its_decode():
    """With a target the file holds the `fast` codec's file of the image (a byte target less
    the header's bytes) instead of the exact image, the enlarger enlarges its decode, and
    the native render is that decode; the file meets the target."""
    from mhinr.model.codec import unpack

    image = textured(96, 128)
    exact = compress(image, "RGB", Options(preset="upscale"))
    limit = len(exact.data) * 2 // 3
    out = compress(image, "RGB", Options(preset="upscale", max_bytes=limit))
    assert out.met and len(out.data) <= limit < len(exact.data)
    _, tensors = unpack(out.data)
    assert "image_inr" in tensors and "image_webp" not in tensors
    inner, _ = decode(tensors["image_inr"].tobytes())
    decoded = render(inner, (96, 128))
    assert torch.equal(out.net.render((96, 128)), decoded)  # the native size: the decode
    assert torch.equal(out.net.image.mul(255).round().to(torch.uint8), decoded)  # enlarges it
    net, _ = decode(out.data)
    assert torch.equal(net.render((150, 200)), out.net.render((150, 200)))
    assert out.upscale["image"] == "cosine codec"
    assert out.upscale["image_bytes"] == len(tensors["image_inr"])
    assert out.psnr < float("inf") and out.psnr == pytest.approx(psnr(decoded, image))  # lossy


@pytest.mark.parametrize(("mode", "channels"), [("L", 1), ("LA", 2), ("RGBA", 4)])
def test_grey_and_alpha_images_are_kept_exactly(mode, channels):
    from mhinr.model.codec import Coded, encode_upscale

    image = to_uint8(smooth_image(channels, 20, 24, seed=channels))
    if channels in (2, 4):
        image[-1, :5] = 0  # transparent pixels: their colour is kept too
    net = UpscaleINR(UpscaleConfig(channels=channels))
    net.set_image(image.float() / 255)
    again, _ = decode(encode_upscale(net, Coded(20, 24, mode, "upscale", "fp16")))
    assert torch.equal(to_uint8(again.image), image)


def test_old_readers_are_told_to_upgrade(fitted):
    _, out = fitted
    data = bytearray(out.data)
    data[4] = FORMAT_VERSION + 1
    with pytest.raises(CodecError, match="upgrade"):
        decode(bytes(data))


def _repack(data: bytes, edit) -> bytes:
    """The file with its decompressed payload changed by `edit`, coded again (xz) with the
    checksum fixed."""
    import lzma

    from mhinr.model.codec.container import open_payload

    magic, version, _, _ = PREFIX.unpack_from(data)
    raw = edit(open_payload(data)[1])
    payload = lzma.compress(raw, format=lzma.FORMAT_XZ)
    return PREFIX.pack(magic, version, 1, zlib.crc32(payload)) + payload


def test_an_image_of_the_wrong_size_is_refused(fitted):
    _, out = fitted
    bad = _repack(out.data, lambda raw: raw.replace(b'"height":40', b'"height":41', 1))
    with pytest.raises(CodecError, match="image"):
        decode(bad)


def test_truncated_and_corrupt_files_are_refused(fitted):
    _, out = fitted
    with pytest.raises(CodecError):
        decode(out.data[: len(out.data) // 2])
    flipped = bytearray(out.data)
    flipped[len(flipped) // 2] ^= 0xFF
    with pytest.raises(CodecError):
        decode(bytes(flipped))


# --- options and the HTTP API -----------------------------------------------------------------


def test_tiny_images_and_other_presets_options_are_refused_before_fitting():
    with pytest.raises(ValueError, match="at least 12x12"):
        check_options(Options(preset="upscale"), (11, 40), 3)
    with pytest.raises(ValueError, match="does not use heads, quantization"):
        Options(preset="upscale", heads=(8, 8), quantization="int8")
    with pytest.raises(ValueError, match="does not use width, depth, steps, time_budget_s"):
        Options(preset="upscale", width=16, depth=3, steps=40, time_budget_s=30)
    with pytest.raises(ValueError, match="1920x1080"):
        check_options(Options(preset="upscale"), (2000, 2000), 3)


def test_upscale_preset_through_http(tmp_path):
    settings = settings_for(tmp_path)
    app = create_app(settings)
    upload = png_bytes(60, 44)
    with TestClient(app) as client:
        refused = client.post(
            "/fit", files={"file": ("x.png", upload)}, data={"preset": "upscale", "steps": "40"}
        )
        assert refused.status_code == 422 and "steps" in refused.json()["detail"]
        r = client.post("/fit", files={"file": ("x.png", upload)}, data={"preset": "upscale"})
        assert r.status_code == 202, r.text
        job = r.json()["job_id"]
        run_fit(job, settings, app.state.store)
        rec = client.get(f"/jobs/{job}").json()
        assert rec["status"] == "succeeded", rec
        metrics = client.get(f"/jobs/{job}/metrics").json()
        assert metrics["storage"] == "upscale" and metrics["psnr"] is None
        assert metrics["train_steps"] is None and metrics["upscale"]["prior"]
        assert client.get(f"/render?job={job}&size=150").headers["x-mhinr-render"] == "upscaler"
        assert client.get(f"/render?job={job}&size=30").headers["x-mhinr-render"] == (
            "lanczos-of-image"
        )
        big = client.get(f"/render?job={job}&size=150&format=png")
        assert big.status_code == 200
        assert Image.open(io.BytesIO(big.content)).size == (150, 110)
        native = client.get(f"/render?job={job}&format=png")
        original = np.asarray(Image.open(io.BytesIO(upload)).convert("RGB"))
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(native.content))), original)
        tiny = client.post(
            "/fit", files={"file": ("t.png", png_bytes(10, 30))}, data={"preset": "upscale"}
        )
        assert tiny.status_code == 422 and "12x12" in tiny.json()["detail"]


def test_command_line_fit_info_and_render(tmp_path, capsys):
    from mhinr.app.cli import main

    src = tmp_path / "small.png"
    src.write_bytes(png_bytes(40, 30))
    out = tmp_path / "small.inr"
    assert main(["fit", str(src), "-o", str(out), "--preset", "upscale"]) == 0
    assert "exact at the native size" in capsys.readouterr().out
    assert main(["info", str(out), "--json"]) == 0
    info = capsys.readouterr().out
    assert '"storage": "upscale"' in info and '"head_size": 32' in info
    assert '"prior": "prior-' in info
    big = tmp_path / "big.png"
    assert main(["render", str(out), "--size", "100", "-o", str(big)]) == 0
    assert Image.open(big).size == (100, 75)


def test_weight_averaging_renders_with_the_averaged_weights():
    """`ema` near 1 barely moves the average from the initial weights: the fitted network
    must then hold (about) its initial weights, not the last Adam step's."""
    image = textured(24, 24)
    cfg = UpscaleConfig()
    start = UpscaleINR(cfg)
    plain, _ = fit_upscaler(image, cfg, UpscaleFit(steps=5, lr=1e-2, time_budget_s=60))
    averaged, _ = fit_upscaler(
        image, cfg, UpscaleFit(steps=5, lr=1e-2, time_budget_s=60, ema=0.999999)
    )

    def farthest(net: UpscaleINR) -> float:
        pairs = zip(net.parameters(), start.parameters(), strict=True)
        return max(float((a - b).abs().max()) for a, b in pairs)

    assert farthest(plain) > 1e-3 and farthest(averaged) < 1e-4


def test_early_stopping_keeps_the_weights_that_validated_best():
    """With `validate_every`, the returned network is the checkpoint with the best score on
    the held-out octave: scoring it again gives the best score seen, and it is a different
    network from the last step's when a later checkpoint scored worse."""
    image = textured(64, 64)
    cfg = UpscaleConfig()
    seen = []
    fit = UpscaleFit(steps=60, lr=2e-2, time_budget_s=3600, validate_every=10)  # steps rule
    net, info = fit_upscaler(image, cfg, fit, on_validate=lambda s, v, n: seen.append((s, v)))
    assert [s for s, _ in info["validation"]] == [10, 20, 30, 40, 50, 60] and seen == info[
        "validation"
    ]
    best = max(v for _, v in seen)
    pair = _validation_pair(image)
    assert _validate(net, *pair, "cpu") == pytest.approx(best, abs=1e-4)
    last, _ = fit_upscaler(image, cfg, replace(fit, validate_every=0))
    if seen[-1][1] < best:  # the last checkpoint was not the best: the weights differ
        assert any(
            not torch.equal(a, b) for a, b in zip(net.parameters(), last.parameters(), strict=True)
        )
    assert _validation_pair(textured(40, 40)) is None  # too small to hold an octave out
    assert info["held_out_psnr"] == best  # the job's metrics report it beside Lanczos's


def test_the_priors_held_out_pairs_are_the_image_itself_and_score_a_render(fitted):
    """A shipped prior never saw the image, so its blend is chosen on the image itself
    reduced by s (8-bit, as an upload is) and enlarged back, scoring what a render gives
    (all views, back-projected); a large image is checked on its centre only."""
    from mhinr.model.upscale import MAX_CHECK_PIXELS, _held_out_pairs, _lanczos_float

    image, out = fitted
    pairs = _held_out_pairs(image, octave=False)
    assert set(pairs) == {2, 3}  # 40×56: ×4's small copy, 10×14, is too small
    small, big = pairs[3]
    assert torch.equal(big, image[:, :39, :54])
    want = torch.nn.functional.avg_pool2d(big[None], 3)[0]
    assert torch.equal(small * 255, (small * 255).round())  # 8-bit values
    assert (small - want).abs().max() <= 0.5 / 255 + 1e-6
    probe = replace_blend(out.net, 1.0)
    probe.set_image(pairs[2][0])
    mine = probe.render((40, 56)).float() / 255
    scores = out.upscale["held_out"]
    assert scores["held_out_psnr_x2"] == round(mse_to_psnr(float((mine - image).pow(2).mean())), 3)
    lanczos = _lanczos_float(pairs[2][0], (40, 56))
    assert scores["held_out_lanczos_psnr_x2"] == round(
        mse_to_psnr(float((lanczos - image).pow(2).mean())), 3
    )
    wide = torch.rand(3, 700, 1000)
    centre = _held_out_pairs(wide, octave=False)[2][1]
    ch, cw = centre.shape[1:]
    assert ch * cw <= MAX_CHECK_PIXELS and abs(ch / cw - 0.7) < 0.01  # the image's shape
    f = (MAX_CHECK_PIXELS / 700_000) ** 0.5  # the crop, then its size to a multiple of 2
    y, x = (700 - int(700 * f)) // 2, (1000 - int(1000 * f)) // 2
    assert torch.equal(centre, wide[:, y : y + ch, x : x + cw])


def test_the_held_out_check_compares_with_lanczos_on_the_same_pair():
    """Lanczos's score on the held-out pair: exact on a flat image (its weights sum to one),
    finite and below that on a textured one, and nothing where no pair can be held out."""
    flat = torch.full((3, 64, 64), 0.4)
    assert lanczos_held_out(flat) > 90
    textured_score = lanczos_held_out(textured(64, 64))
    assert textured_score is not None and 10 < textured_score < 60
    assert lanczos_held_out(textured(40, 40)) is None


def test_blend_weights_are_stored_and_a_zero_weight_renders_lanczos(fitted):
    """The file keeps the network's share at ×2, ×3, ×4; a share of 0 is Lanczos exactly,
    and a render between two scales takes the weight between theirs."""
    from mhinr.model.codec import encode_upscale
    from mhinr.model.upscale import _lanczos_u8, blend_at

    image, out = fitted
    # 40×56: it holds ×2 and ×3 pairs out (20×28, 13×18), not ×4 (10×14), which takes ×3's
    assert len(out.upscale["held_out"]) == 6 and out.net.blend[2] == out.net.blend[1]
    net, coded = decode(out.data)
    net.blend = [0.5, 0.25, 0.0]
    again, _ = decode(encode_upscale(net, coded))
    assert again.blend == [0.5, 0.25, 0.0]
    assert torch.equal(again.render((160, 224)), _lanczos_u8(image, 160, 224))  # ×4: 0
    assert blend_at(again.blend, 2.5) == pytest.approx(0.375)
    assert blend_at(again.blend, 1.5) == 0.5 and blend_at(again.blend, 6) == 0.0
    half = again.render((80, 112))  # ×2: halfway between the network and Lanczos
    again.blend = [1.0, 1.0, 1.0]
    whole, lanczos = again.render((80, 112)).float(), _lanczos_u8(image, 80, 112).float()
    assert (half.float() - (lanczos + 0.5 * (whole - lanczos))).abs().max() <= 0.5
    net.blend = [2.0, 0.0, 0.0]
    with pytest.raises(CodecError, match="blend weights"):
        decode(encode_upscale(net, coded))


@pytest.mark.parametrize("kind", ["smooth", "noisy"])
def test_an_image_the_network_cannot_improve_renders_no_worse_than_lanczos(kind):
    """A smooth low-texture image and a noisy one, box-averaged ×2, enlarged back: the
    render (the prior, blended toward Lanczos as far as the held-out pairs say) is at least
    as good as Lanczos's (to 0.05 dB)."""
    from mhinr.model.upscale import _lanczos_u8

    g = torch.Generator().manual_seed(0)
    true = smooth_image(3, 128, 128)
    if kind == "noisy":
        true = (true + 0.08 * torch.randn(3, 128, 128, generator=g)).clamp(0, 1)
    true8 = true.mul(255).round()
    small = torch.nn.functional.avg_pool2d(true8[None], 2)[0].round() / 255
    out = compress(small, "RGB", Options(preset="upscale"))
    mine = psnr(out.net.render((128, 128)), true8.to(torch.uint8))
    lanczos = psnr(_lanczos_u8(small, 128, 128), true8.to(torch.uint8))
    assert mine >= lanczos - 0.05, (mine, lanczos, out.net.blend)


def test_the_api_model_cache_counts_an_upscalers_heads_and_keeps_to_its_budget(fitted):
    from mhinr.app.deps import ModelCache
    from mhinr.model.render import resident_bytes

    _, out = fitted
    net = decode(out.data)[0]
    heads = 40 * 56 * 4 * 32 * 2  # cells × views × hidden × fp16
    params = sum(p.numel() * p.element_size() for p in net.parameters())
    assert resident_bytes(net) >= heads + params
    net.render((80, 112))  # what it counted is what a render caches
    assert sum(t.numel() * t.element_size() for t in net._stacked.values()) == heads
    one = resident_bytes(net)
    loads: list[str] = []

    def loader(tag: str):
        def load() -> bytes:
            loads.append(tag)
            return out.data

        return load

    cache = ModelCache(size=16, max_bytes=one + one // 2)  # room for one such model
    cache.get("a", 1, loader("a"))
    cache.get("a", 1, loader("a"))
    assert loads == ["a"]  # the second from memory
    cache.get("b", 1, loader("b"))
    assert cache.bytes == one and len(cache.items) == 1  # "a" made room
    cache.get("a", 1, loader("a"))
    assert loads == ["a", "b", "a"]
    counted = ModelCache(size=1, max_bytes=10 * one)  # the count bounds it too
    counted.get("a", 1, loader("a"))
    counted.get("b", 1, loader("b"))
    assert len(counted.items) == 1
    small = ModelCache(size=16, max_bytes=one // 2)
    assert small.get("c", 1, loader("c")) is not None and small.bytes == 0  # served, not kept


def test_bfloat16_renders_only_with_the_instructions():
    """oneDNN runs bfloat16 on AVX-512 CPUs without bfloat16 instructions too, ~3× slower
    than float32: renders use it only where /proc/cpuinfo lists the instructions."""
    info = Path("/proc/cpuinfo")
    if not info.exists():
        pytest.skip("no /proc/cpuinfo here")
    flags = set(info.read_text().split())
    assert _native_bf16() == bool(flags & {"avx512_bf16", "amx_bf16", "amx_tile"})
    if not _native_bf16():
        assert not _BF16
