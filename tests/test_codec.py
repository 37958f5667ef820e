import contextlib
import json
import math
import pathlib
import struct
import zlib
from dataclasses import replace

import numpy as np
import pytest
import torch

from mhinr.model.codec import (
    FORMAT_VERSION,
    PREFIX,
    CodecError,
    Coded,
    decode,
    encode_weights,
    pack,
)
from mhinr.model.coefficients import RDOQ_LAMBDA
from mhinr.model.compress import Options, compress
from mhinr.model.fit import FitConfig, fit
from mhinr.model.metrics import psnr, ssim
from mhinr.model.network import build_network
from mhinr.model.ratecontrol import boundary, finish
from mhinr.model.render import render
from tests.conftest import smooth_image

DATA = pathlib.Path(__file__).parent / "data"


def test_restoration_filter_never_harms_a_smooth_decoded_image():
    """A decoded image is smooth, so the normal equations are ill-conditioned: the filter
    must still not be worse than none (before the ridge it cost 2 dB here)."""
    from mhinr.model.codec import postfilter

    g = torch.Generator().manual_seed(5)
    small = torch.rand(1, 3, 24, 32, generator=g)
    decoded = torch.nn.functional.interpolate(small, scale_factor=16, mode="bilinear")[0]
    original = (decoded + 0.02 * torch.randn(decoded.shape, generator=g)).clamp(0, 1)
    f = postfilter.solve(decoded, original, stride=2)
    assert f.abs().max() < 2
    # nothing to restore here (the error is noise): within 0.1 dB of no filter
    assert psnr(postfilter.apply(decoded, f), original) >= psnr(decoded, original) - 0.1


@pytest.fixture(scope="module")
def fitted():
    img = smooth_image(3, 40, 56)
    net = build_network("multihead", (40, 56), 3, heads=(10, 14), width=32, alpha=16)
    fit(net, img, FitConfig(steps=10))
    return net, img


def test_fp32_round_trip_renders_bit_for_bit(fitted):
    net, _ = fitted
    data = encode_weights(net, Coded(40, 56, "RGB", quantization="fp32"))
    back, coded = decode(data)
    assert (coded.height, coded.width, coded.mode) == (40, 56, "RGB")
    for size in [(40, 56), (80, 112), (33, 70)]:
        assert torch.equal(render(back, (40, 56), size), render(net, (40, 56), size))
    # the connection indices were regenerated from the seed, not stored
    assert torch.equal(back.heads.index, net.heads.index)


@pytest.mark.parametrize(("quantization", "min_psnr"), [("fp16", 45), ("int8", 30)])
def test_lossy_weights_stay_close_to_the_fp32_render(fitted, quantization, min_psnr):
    net, _ = fitted
    ref = render(net, (40, 56))
    data = encode_weights(net, Coded(40, 56, "RGB", quantization=quantization))
    assert psnr(render(decode(data)[0], (40, 56)), ref) > min_psnr
    assert len(data) < len(encode_weights(net, Coded(40, 56, "RGB", quantization="fp32")))


@pytest.mark.parametrize("kind", ["siren", "fourier", "relu"])
def test_baselines_round_trip(kind):
    net = build_network(kind, (16, 16), 1, width=16, depth=2)
    data = encode_weights(net, Coded(16, 16, "L"))
    assert torch.equal(
        render(decode(data)[0], (16, 16), method="plain"), render(net, (16, 16), method="plain")
    )


def good_file(fitted) -> bytes:
    return encode_weights(fitted[0], Coded(40, 56, "RGB", quantization="fp16"))


def test_corrupt_byte_is_caught_by_the_checksum(fitted):
    data = bytearray(good_file(fitted))
    data[len(data) // 2] ^= 0x40
    with pytest.raises(CodecError, match="checksum"):
        decode(bytes(data))


def test_truncated_file_is_refused(fitted):
    data = good_file(fitted)
    for cut in (3, PREFIX.size, len(data) // 2, len(data) - 1):
        with pytest.raises(CodecError):
            decode(data[:cut])


def test_foreign_file_is_refused():
    with pytest.raises(CodecError, match="magic"):
        decode(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)


def test_newer_version_is_refused_with_upgrade_advice(fitted):
    data = bytearray(good_file(fitted))
    data[4] = FORMAT_VERSION + 1
    with pytest.raises(CodecError, match="newer"):
        decode(bytes(data))


def rewrap(fitted, edit) -> bytes:
    """A file with a valid checksum whose header was changed by `edit`."""
    from mhinr.model.codec import unpack

    header, tensors = unpack(good_file(fitted))
    edit(header, tensors)
    return pack(header, tensors)


def test_inconsistent_header_is_refused(fitted):
    def shrink_width(h, t):
        h["arch"]["width"] = 16
        h["arch"]["alpha"] = 8

    with pytest.raises(CodecError, match="shape"):
        decode(rewrap(fitted, shrink_width))

    def bad_mode(h, t):
        h["image"]["mode"] = "CMYK"

    with pytest.raises(CodecError, match="mode"):
        decode(rewrap(fitted, bad_mode))

    def huge(h, t):
        h["arch"]["heads"] = [100000, 100000]

    with pytest.raises(CodecError):
        decode(rewrap(fitted, huge))

    def missing(h, t):
        del t["heads.weight"]

    with pytest.raises(CodecError, match="lacks"):
        decode(rewrap(fitted, missing))


def test_garbage_payload_with_a_valid_checksum_is_refused():
    payload = b"not xz at all"
    data = PREFIX.pack(b"MINR", FORMAT_VERSION, 1, zlib.crc32(payload)) + payload
    with pytest.raises(CodecError, match="decompress"):
        decode(data)
    raw = struct.pack("<I", 2) + b"{]" + b"xx"
    import lzma

    payload = lzma.compress(raw, format=lzma.FORMAT_XZ)
    with pytest.raises(CodecError, match="malformed"):
        decode(PREFIX.pack(b"MINR", 1, 1, zlib.crc32(payload)) + payload)  # a JSON container


@pytest.mark.parametrize(("channels", "mode"), [(3, "RGB"), (1, "L"), (4, "RGBA")])
def test_coefficient_storage_reports_the_real_files_numbers(channels, mode):
    img = smooth_image(channels, 48, 64, seed=channels)
    out = compress(img, mode, Options(preset="fast"))
    assert out.coded.storage == "coefficients"
    net, coded = decode(out.data)
    rendered = render(net, (48, 64))
    assert psnr(rendered, img) == pytest.approx(out.psnr)
    assert out.bytes == len(out.data)
    assert out.bpp == pytest.approx(8 * len(out.data) / (48 * 64))
    assert out.psnr > 30
    assert rendered.shape == (channels, 48, 64)
    # the search measures the files it compares without SSIM; the file returned has the SSIM
    # of what it decodes to
    assert out.ssim == pytest.approx(ssim(rendered, img))
    budget = compress(img, mode, Options(preset="fast", max_bytes=out.bytes // 2))
    back = render(decode(budget.data)[0], (48, 64))
    assert budget.ssim == pytest.approx(ssim(back, img)) and budget.ssim < out.ssim


def test_rate_control_meets_a_byte_budget_and_a_psnr_target():
    img = smooth_image(3, 64, 64, seed=7)
    small = compress(img, "RGB", Options(preset="fast", max_bytes=1200))
    assert small.met and 0.9 * 1200 < small.bytes <= 1200  # the finest step that fits
    aim = small.psnr + 2  # above what the byte budget allows
    good = compress(img, "RGB", Options(preset="fast", target_psnr=aim))
    assert good.met and good.psnr >= aim
    assert good.bytes > small.bytes and good.psnr > small.psnr


@pytest.mark.parametrize("ok_below", [True, False])
@pytest.mark.parametrize(
    "g",
    [
        lambda x: -1.3 * (x - 0.37),  # nearly what log(bytes) is against log(step)
        lambda x: 3.0 - math.exp(x + 2.5),  # curved, steep beyond the root (ln 3 − 2.5)
        lambda x: math.floor(-40 * (x + 1.1)) / 40,  # steps, as integer coefficients give
    ],
)
def test_the_step_search_lands_on_the_ok_side_next_to_the_root(g, ok_below):
    lo, hi, root = math.log(1e-3), math.log(2.0), None
    a, b = lo, hi  # the root by bisection, to compare
    for _ in range(60):
        m = (a + b) / 2
        a, b = (m, b) if g(m) >= 0 else (a, m)
    root = (a + b) / 2
    x, _, evals = boundary(g, math.log(0.1), lo, hi, ok_below, 0.0074, 1e-9, -1.2)
    assert x is not None and evals <= 9  # bisection of the range took 10
    assert (g(x) >= 0) if ok_below else (g(x) < 0)  # on the side where the target holds
    assert abs(x - root) <= 0.0074 + 1e-9  # and next to the root


def test_the_step_search_says_when_the_root_is_out_of_range():
    far = lambda x: -(x - 5.0)  # noqa: E731  g ≥ 0 over the whole range
    assert boundary(far, 0.0, -7.0, 0.7, False, 0.0074, 1e-3, -1.2)[:2] == (None, 0.7)
    assert boundary(far, 0.0, -7.0, 0.7, True, 0.0074, 1e-3, -1.2)[0] == 0.7  # all of it ok


def test_an_unreachable_target_is_reported_as_not_met():
    img = smooth_image(3, 32, 32, seed=1)
    out = compress(img, "RGB", Options(preset="fast", max_bytes=50))
    assert out.met is False and out.bytes > 50


def test_paper_preset_stores_weights():
    img = smooth_image(1, 32, 32)
    out = compress(
        img, "L", Options(preset="paper", steps=5, heads=(8, 8), width=32, alpha=8, depth=2)
    )
    assert out.coded.storage == "weights" and out.coded.quantization == "fp32"
    assert out.net.cfg.heads == (8, 8)


def test_options_refuse_nonsense():
    for bad in (
        dict(preset="tiny"),
        dict(steps=-1),
        dict(alpha=64, width=32),
        dict(target_psnr=30, bpp=0.5),
        dict(quantization="int4"),
    ):
        with pytest.raises(ValueError):
            Options(**bad)


def test_cli_round_trip(tmp_path, capsys):
    from PIL import Image

    from mhinr.app.cli import main

    src = tmp_path / "in.png"
    a = (smooth_image(3, 40, 48) * 255).round().byte().permute(1, 2, 0).numpy()
    Image.fromarray(a).save(src)
    out = tmp_path / "x.inr"
    assert main(["fit", str(src), "-o", str(out), "--preset", "fast", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["bytes"] == out.stat().st_size
    assert set(summary) >= {"psnr", "ssim", "bytes", "bpp", "params", "seconds"}
    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["width"], info["height"], info["bytes"]) == (48, 40, out.stat().st_size)
    png = tmp_path / "big.png"
    assert main(["render", str(out), "--size", "96", "-o", str(png)]) == 0
    assert Image.open(png).size == (96, 80)
    assert (
        main(
            ["render", str(out), "--width", "30", "--height", "10", "-o", str(tmp_path / "s.webp")]
        )
        == 0
    )
    assert Image.open(tmp_path / "s.webp").size == (30, 10)
    # a target the file cannot meet: said, with what it reached
    argv = ["fit", str(src), "-o", str(out), "--preset", "fast", "--max-bytes", "40"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "target not met: the smallest file this preset makes of this image is" in printed
    assert f"{out.stat().st_size:,} bytes" in printed


def test_cli_bad_input_is_one_line_and_non_zero(tmp_path, capsys):
    from mhinr.app.cli import main

    junk = tmp_path / "junk.png"
    junk.write_bytes(b"hello")
    assert main(["fit", str(junk), "-o", str(tmp_path / "o.inr")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mhinr: error:") and "\n" not in err
    assert not (tmp_path / "o.inr").exists()
    assert main(["info", str(tmp_path / "missing.inr")]) == 2
    assert main(["render", str(junk), "--size", "10", "-o", str(tmp_path / "o.png")]) == 2
    assert np.all([not p.name.startswith(".") for p in tmp_path.iterdir()])  # no temp files left


def test_classic_at_bytes_finds_the_largest_quality_that_fits():
    from mhinr.model.classic import at_bytes, encode_classic, measure

    u8 = (smooth_image(3, 64, 64) * 255).round().byte()
    budget = len(encode_classic(u8, "JPEG", 50))
    res = at_bytes(u8, "JPEG", budget)
    assert res.bytes <= budget and res.subsampling in ("4:2:0", "4:4:4")
    bigger = encode_classic(u8, "JPEG", res.quality + 1, res.subsampling)
    assert len(bigger) > budget or res.quality == 100
    # the better of the two chroma layouts at that size: never worse than either alone
    for sub in ("4:2:0", "4:4:4"):
        fits = [q for q in range(1, 101) if len(encode_classic(u8, "JPEG", q, sub)) <= budget]
        if fits:
            assert res.psnr >= measure(u8, "JPEG", max(fits), subsampling=sub).psnr
    assert at_bytes(u8, "WEBP", 10) is None
    assert at_bytes(u8, "WEBP", 100_000).quality == 100
    avif = at_bytes(u8, "AVIF", budget)  # the AVIF of the same size: fits, and decodes
    assert avif.format == "AVIF" and avif.bytes <= budget and avif.psnr > 20
    assert len(encode_classic(u8, "AVIF", avif.quality + 1)) > budget or avif.quality == 100
    jxl = at_bytes(u8, "JXL", budget)  # JPEG XL (pillow-jxl-plugin, the server extra)
    assert jxl.format == "JXL" and jxl.bytes <= budget and jxl.psnr > 20
    assert at_bytes(u8, "JXL", 10**6).quality == 99  # its highest lossy quality


@pytest.mark.parametrize("preset", ["paper", "compact", "fast", "max", "upscale"])
@pytest.mark.parametrize("size", [(12, 13), (37, 53), (67, 45), (300, 451)])
def test_every_preset_codes_any_size_from_the_smallest_up(preset, size):
    """Sizes that do not divide into the presets' grids (the paper preset once failed after
    the whole fit on 451x300 with "the padding is larger than a cell")."""
    from mhinr.model.compress import check_options
    from mhinr.model.images import to_uint8

    h, w = size
    image = to_uint8(smooth_image(3, h, w, seed=h)).float() / 255
    opt = Options(preset=preset, steps=None if preset in ("fast", "upscale") else 2)
    check_options(opt, (h, w), 3)
    out = compress(image, "RGB", opt)
    net, coded = decode(out.data)
    assert (coded.height, coded.width) == (h, w)
    assert render(net, (h, w)).shape == (3, h, w)
    big = (h + h // 4 + 1, w + w // 4 - 1)  # a non-integer enlargement
    assert render(net, (h, w), big).shape == (3, *big)


def test_file_from_before_the_dead_header_field_went_still_decodes(fitted):
    """Files written before 2026-11-30 carry `"extra": {}` in their image header."""

    def old_header(h, t):
        h["image"]["extra"] = {}

    old_net, old_coded = decode(rewrap(fitted, old_header))
    net, coded = decode(good_file(fitted))
    assert old_coded == coded
    size = (coded.height, coded.width)
    assert torch.equal(render(old_net, size), render(net, size))


# --- format 3: the compact binary coefficient file --------------------------------------------


@pytest.fixture(scope="module")
def compact_file():
    img = smooth_image(3, 40, 56)
    out = compress(img, "RGB", Options(preset="fast"))
    return img, out


def test_compact_files_are_format_3_with_a_binary_header(compact_file):
    img, out = compact_file
    assert out.data[:4] == b"MINR" and out.data[4] == 3
    net, coded = decode(out.data)
    assert (coded.height, coded.width, coded.mode, coded.storage) == (40, 56, "RGB", "coefficients")
    assert abs(psnr(render(net, (40, 56)), img) - out.psnr) < 1e-9
    # the same preset's format 1 file of this image: 1,882 bytes at 35.74 dB; format 3 is
    # smaller (binary header, DC prediction, Karhunen–Loève order; 1,304 bytes at 37.86 dB
    # on 2026-11-30) at the same default step
    old = (DATA / "fast_v1.inr").read_bytes()
    assert len(out.data) < len(old) and out.psnr > 35.74 + 1


def test_format_1_compact_file_still_decodes():
    """tests/data/fast_v1.inr: `fast` on smooth_image(3, 40, 56), written by the format 1
    code (2026-11-29, PSNR 35.740 dB)."""
    net, coded = decode((DATA / "fast_v1.inr").read_bytes())
    assert coded.storage == "coefficients" and coded.quantization == "int8"
    assert psnr(render(net, (40, 56)), smooth_image(3, 40, 56)) == pytest.approx(35.740, abs=0.01)


def test_compact_file_corrupt_truncated_or_padded_is_refused(compact_file):
    data = compact_file[1].data
    for cut in (PREFIX.size - 1, PREFIX.size + 3, len(data) // 2, len(data) - 1):
        with pytest.raises(CodecError):
            decode(data[:cut])
    bad = bytearray(data)
    bad[len(bad) // 2] ^= 0x10
    with pytest.raises(CodecError, match="checksum"):
        decode(bytes(bad))


def _recode(data: bytes, edit) -> bytes:
    """A format 3 file whose inflated record was changed by `edit`, re-wrapped validly."""
    import lzma

    from mhinr.model.codec import LZMA_RAW, open_payload

    _, raw = open_payload(data)
    raw = edit(bytearray(raw))
    payload = lzma.compress(bytes(raw), format=lzma.FORMAT_RAW, filters=LZMA_RAW)
    return PREFIX.pack(b"MINR", 3, 3, zlib.crc32(payload)) + payload


def test_compact_record_that_does_not_add_up_is_refused(compact_file):
    from mhinr.model.codec import COMPACT

    data = compact_file[1].data
    with pytest.raises(CodecError, match="more than its header"):
        decode(_recode(data, lambda r: r + b"\0"))
    with pytest.raises(CodecError, match="truncated"):
        decode(_recode(data, lambda r: r[:-1]))

    def mode(r):
        r[8] = 9
        return r

    with pytest.raises(CodecError, match="unknown mode"):
        decode(_recode(data, mode))

    def huge(r):  # a width of 65,535: the parameter limit, before any allocation
        struct.pack_into("<H", r, 12, 65535)
        return r

    with pytest.raises(CodecError):
        decode(_recode(data, huge))

    def step(r):
        struct.pack_into("<f", r, COMPACT.size - 7, float("nan"))
        return r

    with pytest.raises(CodecError, match="step"):
        decode(_recode(data, step))


def test_restoration_filter_solve_recovers_a_known_filter_and_bands_do_not_matter():
    from mhinr.model.codec import postfilter

    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 300, 131, generator=g, dtype=torch.float64)
    truth = (torch.randn(2, 51, generator=g) * 0.1).half().float()  # 2 channels, 5×5, bias
    y = postfilter.apply(x, truth).double()
    assert (postfilter.solve(x, y) - truth).abs().max() < 1e-3  # fp16 rounding
    old = postfilter.BAND_ROWS
    try:
        postfilter.BAND_ROWS = 7  # many bands with halos: the same normal equations
        assert (postfilter.solve(x, y) - truth).abs().max() < 1e-3
    finally:
        postfilter.BAND_ROWS = old


@pytest.fixture(scope="module")
def filtered_file():
    """A `fast` file that carries a restoration filter: on this small smooth image the
    filter's 456 bytes do not pay at the default price, so they are priced at nothing."""
    import mhinr.model.coefficients as coefficients

    img = smooth_image(3, 40, 56)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(coefficients, "FILTER_DB_PER_OCTAVE", 0.0)
        out = compress(img, "RGB", Options(preset="fast"))
    return img, out


def test_compact_file_carries_its_restoration_filter_and_the_render_uses_it(filtered_file):
    img, out = filtered_file
    net, _ = decode(out.data)
    assert net.post_filter is not None and net.post_filter.shape == (3, 76)
    with_filter = psnr(render(net, (40, 56)), img)
    assert with_filter == pytest.approx(out.psnr, abs=1e-9)
    plain = render(net, (40, 56), method="plain")  # the network alone
    net.post_filter = net.deblock = None  # (the file may have a deblocking too)
    assert torch.equal(render(net, (40, 56)), plain)
    assert with_filter > psnr(plain, img)  # the filter was solved to reduce the error
    # at other sizes: the filtered native samples, resized
    net2, _ = decode(out.data)
    big = render(net2, (40, 56), (80, 112))
    assert not torch.equal(big, render(net, (40, 56), (80, 112)))


def test_compact_file_with_a_bad_restoration_filter_is_refused(filtered_file):
    from mhinr.model.codec import COMPACT, FLAG2_DEBLOCK, FLAG_FILTER_CODED, open_payload

    data = filtered_file[1].data
    flags_at = COMPACT.size - 1
    payload = open_payload(data)[1]
    more = payload[flags_at] >> 7  # a second flags byte after the header …
    if more and payload[COMPACT.size] & FLAG2_DEBLOCK:
        more += 2  # … and the deblocking's two bytes after it
    at = COMPACT.size + more + 4 * (9 + 3)  # the filter's size byte follows the colours

    def edit(offset: int, value: bytes):
        def apply(r):
            r[offset : offset + len(value)] = value
            return r

        return apply

    assert open_payload(data)[1][flags_at] & FLAG_FILTER_CODED  # the taps are range-coded
    with pytest.raises(CodecError, match="restoration filter of size"):
        decode(_recode(data, edit(at, b"\x04")))
    with pytest.raises(CodecError, match="fraction bits"):
        decode(_recode(data, edit(at + 1, b"\x1e")))
    with pytest.raises(CodecError, match="restoration filter does not decode"):
        decode(_recode(data, edit(at + 4, b"\xf0")))  # a table index beyond the tables
    with pytest.raises(CodecError):  # its length says more bytes than it has
        decode(_recode(data, edit(at + 2, struct.pack("<H", 60000))))

    def no_filter_bit(r):
        r[flags_at] &= ~2
        r[at : at + 4 + struct.unpack_from("<H", r, at + 2)[0]] = b""
        return r

    with pytest.raises(CodecError, match="coded-filter flag without a filter"):
        decode(_recode(data, no_filter_bit))

    def as_fp16(value: float):  # an older file's filter: fp16 taps, flags bit 6 clear
        def apply(r):
            n = struct.unpack_from("<H", r, at + 2)[0]
            taps = np.full(3 * 76, value, np.float16)
            taps[0] = 1.0
            r[at : at + 4 + n] = bytes([5]) + taps.tobytes()
            r[flags_at] &= ~FLAG_FILTER_CODED
            return r

        return apply

    net, _ = decode(_recode(data, as_fp16(0.0)))  # still read
    assert net.post_filter[0, 0] == 1 and net.post_filter.abs().sum() == 1
    with pytest.raises(CodecError, match="not finite"):
        decode(_recode(data, as_fp16(np.inf)))


def test_the_restoration_filter_is_left_out_where_it_does_not_pay(monkeypatch):
    import mhinr.model.coefficients as coefficients

    img = smooth_image(3, 40, 56)
    monkeypatch.setattr(coefficients, "FILTER_DB_PER_OCTAVE", 1000.0)  # bytes priced high
    out = compress(img, "RGB", Options(preset="fast"))
    net, _ = decode(out.data)
    assert net.post_filter is None
    assert psnr(render(net, (40, 56)), img) == pytest.approx(out.psnr, abs=1e-9)


def test_banded_filter_application_equals_the_whole_image():
    from mhinr.model.codec import postfilter

    g = torch.Generator().manual_seed(5)
    img = (torch.rand(3, 70, 33, generator=g) * 255).round().to(torch.uint8)
    filters = (torch.randn(3, 76, generator=g) * 0.05).half().float()
    whole = postfilter.apply_u8(img, filters, band_rows=1000)
    assert torch.equal(postfilter.apply_u8(img, filters, band_rows=7), whole)
    assert torch.equal(
        whole,
        postfilter.apply(img.float() / 255, filters).clamp(0, 1).mul(255).round().to(torch.uint8),
    )


def test_compact_file_with_unknown_flags_is_refused(compact_file):
    from mhinr.model.codec import COMPACT

    def flag(second: bytes):  # bit 7: a second flags byte, then that byte
        def change(r):
            r[COMPACT.size - 1] |= 128
            r[COMPACT.size : COMPACT.size] = second
            return r

        return change

    with pytest.raises(CodecError, match="unknown flags"):  # bit 6 is not defined
        decode(_recode(compact_file[1].data, flag(b"\x40")))
    with pytest.raises(CodecError, match="bias unit without a stage"):  # bit 4 needs bit 0
        decode(_recode(compact_file[1].data, flag(b"\x10")))
    # bit 5 (the frequency context model) needs range-coded cells: this small file's are
    # byte planes
    with pytest.raises(CodecError, match="frequency context without range-coded"):
        decode(_recode(compact_file[1].data, flag(b"\x20")))


# --- the Karhunen–Loève order of the coefficient basis ----------------------------------------


@pytest.fixture(scope="module")
def coder():
    from mhinr.model.coefficients import fit_coders

    img = smooth_image(3, 40, 56)  # a trained body (an explicit width)
    return img, fit_coders(img, "RGB", Options(preset="fast", width=24), False)[0]


def test_klt_rotation_orders_the_basis_by_model_variance_and_needs_no_bytes(coder):
    from mhinr.model.codec import AR1_RHO, coding_basis, klt_rotation

    _, c = coder
    plain = coding_basis(c.net)
    rot = klt_rotation(plain, c.net.cfg.cell)
    k = rot.shape[0]
    assert torch.allclose(rot.T @ rot, torch.eye(k, dtype=torch.float64), atol=1e-12)
    assert torch.equal(rot[0], torch.eye(k, dtype=torch.float64)[0])  # the constant stays
    ordered = plain @ rot
    assert torch.allclose(ordered, coding_basis(c.net, klt=True), atol=1e-12)
    n_y, n_x = c.net.cfg.cell
    ys = torch.arange(n_y, dtype=torch.float64).repeat_interleave(n_x)
    xs = torch.arange(n_x, dtype=torch.float64).repeat(n_y)
    cov = AR1_RHO ** ((ys[:, None] - ys).abs() + (xs[:, None] - xs).abs())
    var = (ordered.T @ cov @ ordered).diagonal()[1:]
    assert (var[1:] <= var[:-1] + 1e-9).all()  # largest model variance first
    # the decoder knows only the body: a basis whose columns differ in sign (or any rotation
    # of the non-constant part) gives the same ordered basis, signs included
    flipped = plain.clone()
    flipped[:, 1::2] *= -1
    assert torch.allclose(flipped @ klt_rotation(flipped, (n_y, n_x)), ordered, atol=1e-9)


def _assert_decodes_to_reconstruction(data: bytes, c, step: float) -> torch.Tensor:
    """The file's network alone (no deblocking, no restoration filter) renders what the
    encoder's quantized coefficients reconstruct, up to float rounding; returns the render."""
    net, coded = decode(data)
    net.post_filter = net.deblock = None
    rec = (c.reconstruction(step).clamp(0, 1) * 255).round().to(torch.uint8)
    out = render(net, (coded.height, coded.width))
    assert psnr(out, rec) > 50
    return out


def test_klt_ordered_file_decodes_to_the_encoders_reconstruction(coder):
    from mhinr.model.codec import COMPACT, FLAG_KLT, open_payload

    img, c = coder
    step = 0.05
    files = {}
    for klt in (False, True):
        c.tools = replace(c.tools, klt=klt)
        data = c.encode(step)
        flags = open_payload(data)[1][COMPACT.size - 1]
        assert bool(flags & FLAG_KLT) == klt
        _assert_decodes_to_reconstruction(data, c, step)
        files[klt] = (c.quantized(step), c.coef)
    c.tools = replace(c.tools, klt=True)
    # the energy is packed into the first rows: more zeros at the end than in Cholesky order
    for klt, (q, coef) in files.items():
        head = (coef[1:6] ** 2).sum() / (coef[1:] ** 2).sum()
        files[klt] = (head, (q[-8:] != 0).sum())
    assert files[True][0] > files[False][0] and files[True][1] <= files[False][1]


@pytest.mark.parametrize("step", [0.2, 0.001])  # one byte a value; two (byte planes)
def test_coefficients_of_any_width_round_trip_in_byte_planes(coder, step):
    from mhinr.model.codec import COMPACT, FLAG_PLANAR, open_payload, zigzag

    _, c = coder
    c.tools = replace(
        c.tools, context_coding=False
    )  # the LZMA2 record (smaller files may choose it anyway), and
    try:  # so no RDOQ (its rates are the range coder's): the coder as the file was made
        data = c.encode(step)
        raw = open_payload(data)[1]
        assert raw[COMPACT.size - 1] & FLAG_PLANAR
        width = 1 if zigzag(c.quantized(step).numpy()).max() < 256 else 2
        assert raw[COMPACT.size - 2] == width
        _assert_decodes_to_reconstruction(data, c, step)
    finally:
        c.tools = replace(c.tools, context_coding=True)


# --- the context-modelled range coding of the coefficients (model/codec/entropy.py) -----


def _laplace_rows(shape, seed=0):
    """Integers like the coefficients: Laplace, falling in scale row by row."""
    rng = np.random.default_rng(seed)
    scale = 4 * np.exp(-np.arange(shape[0]) / 6)[:, None, None, None]
    return np.round(rng.laplace(size=shape) * scale).astype(np.int64)


@pytest.mark.parametrize(
    ("shape", "cell"),
    [((33, 3, 6, 7), None), ((25, 1, 1, 1), None), ((49, 4, 2, 9), None),
     ((64, 3, 6, 7), (8, 8)), ((12, 1, 5, 4), (3, 4))],
)  # fmt: skip
def test_range_coding_round_trips_any_integers(shape, cell):
    """Under entropy.LEGACY (any rows), and under the frequency model of a cell whose
    cosines are the rows (cell=...)."""
    from mhinr.model.codec import entropy

    model = entropy.LEGACY if cell is None else entropy.frequency_model(cell)
    q = _laplace_rows(shape)
    q.flat[7] = 10**6  # far beyond every table: escaped, its excess in Exp-Golomb bits
    q.flat[0] = -77_777
    q.flat[-1] = -(2**33)
    data = entropy.encode(q, model)
    assert np.array_equal(entropy.decode(data, shape, model), q)
    assert entropy.encode(q, model) == data  # the α fit and the coding are deterministic
    if cell is not None:  # the other model reads other tables: not these integers
        with contextlib.suppress(ValueError):
            assert not np.array_equal(entropy.decode(data, shape, entropy.LEGACY), q)


def test_the_frequency_context_codes_a_photos_cosines_in_fewer_bytes(photo_coder):
    """entropy.frequency_model against entropy.LEGACY on the same integers (a photo's
    16-pixel cosine cells at two steps): the cosines' parents in frequency say more about
    a coefficient than the cell's decaying average (benchmarks/results/context_probe.md:
    ~3.6 % fewer bits on held-out photos)."""
    from mhinr.model.codec import entropy
    from mhinr.model.codec.format3 import dc_med_residuals

    img, c = photo_coder
    for step in (0.05, 0.15):
        q = c.quantized(step).numpy().astype(np.int64)
        q4 = q.reshape((q.shape[0], 3, *c.net.cfg.heads)).copy()
        q4[0] = dc_med_residuals(q4[0])
        legacy = len(entropy.encode(q4, entropy.LEGACY))
        frequency = len(entropy.encode(q4, entropy.frequency_model(c.net.cfg.cell)))
        assert frequency < 0.97 * legacy, (step, frequency, legacy)  # 6.6, 8.8 % on 2026-12-06


def test_range_coding_spends_fewer_bits_where_the_context_says_so():
    """Rows whose neighbourhood is busy get wide tables, quiet ones narrow: coding a field
    whose activity varies by region costs less than the same values shuffled across it."""
    from mhinr.model.codec import entropy

    rng = np.random.default_rng(2)
    loud = np.zeros((1, 1, 16, 16))
    loud[..., :8, :] = 1  # the top half busy in every row, the bottom half quiet
    q = np.round(rng.laplace(size=(20, 1, 16, 16)) * (0.2 + 8 * loud)).astype(np.int64)
    shuffled = q.reshape(20, -1)[:, rng.permutation(256)].reshape(q.shape)
    assert len(entropy.encode(q)) < 0.9 * len(entropy.encode(shuffled))


def test_truncated_or_corrupt_range_coded_section_raises_value_error_only():
    from mhinr.model.codec import entropy

    shape = (33, 3, 4, 5)
    q = _laplace_rows(shape, seed=1)
    data = entropy.encode(q)
    for cut in (1, 2, 3, 5):  # not whole words
        with pytest.raises(ValueError, match="truncated"):
            entropy.decode(data[:-cut], shape)
    rng = np.random.default_rng(3)
    # (a file's checksum catches what the coder cannot: a stream cut by whole words, even
    # to none, decodes to other integers: the range decoder reads missing words as zeros)
    for _ in range(100):  # a flipped bit: an error or other integers, never a crash
        bad = bytearray(data)
        bad[rng.integers(len(bad))] ^= 1 << int(rng.integers(8))
        with contextlib.suppress(ValueError):
            assert entropy.decode(bytes(bad), shape).shape == shape


@pytest.fixture(scope="module")
def photo_coder():
    """`fast` fitted to a 96×128 crop of a photograph (scikit-image's astronaut)."""
    import skimage.data

    from mhinr.model.coefficients import fit_coders

    crop = skimage.data.astronaut()[100:196, 150:278]
    img = torch.from_numpy(crop).permute(2, 0, 1).float() / 255
    return img, fit_coders(img, "RGB", Options(preset="fast"), False)[0]


def test_range_coded_file_is_smaller_and_decodes_to_the_encoders_reconstruction(photo_coder):
    from mhinr.model.codec import COMPACT, FLAG_PLANAR, FLAG_RANGE_CODED, open_payload

    img, c = photo_coder
    step = 0.05
    files = {}
    c.rdoq = 0.0  # the same integers either way (RDOQ prices with the range coder's rates)
    try:
        for on in (False, True):
            c.tools = replace(c.tools, context_coding=on)
            files[on] = c.encode(step)
        c.tools = replace(c.tools, context_coding=True)
        renders = [_assert_decodes_to_reconstruction(data, c, step) for data in files.values()]
    finally:
        c.tools, c.rdoq = replace(c.tools, context_coding=True), RDOQ_LAMBDA
    assert files[True][5] == 4 and files[False][5] == 3  # the coder byte
    flags = open_payload(files[True])[1][COMPACT.size - 1]
    assert flags & FLAG_RANGE_CODED and not flags & FLAG_PLANAR
    assert len(files[True]) < 0.93 * len(files[False])
    assert torch.equal(renders[0], renders[1])  # the same integers either way


def test_rdoq_moves_ac_integers_one_step_towards_zero_for_a_smaller_file(photo_coder):
    """entropy.rd_quantize: where a coefficient's saved bits are worth more than its added
    error; the constant terms untouched; the file smaller, decoding to what the encoder
    reconstructs."""
    img, c = photo_coder
    step = 0.05
    rdoq = c.quantized(step)
    c.rdoq = 0.0
    try:
        plain, plain_file = c.quantized(step), c.encode(step)
    finally:
        c.rdoq = RDOQ_LAMBDA
    moved = rdoq != plain
    assert moved.any() and not moved[0].any()  # AC rows only
    assert torch.equal((plain - rdoq)[moved], torch.sign(plain)[moved])  # one step to zero
    data = c.encode(step)
    assert len(data) < len(plain_file)
    _assert_decodes_to_reconstruction(data, c, step)


def test_range_coded_file_corrupt_or_truncated_is_refused(photo_coder):
    import lzma

    from mhinr.model.codec import LZMA_RAW, open_payload

    _, c = photo_coder
    data = c.encode(0.05)
    assert data[5] == 4
    for cut in (PREFIX.size + 2, PREFIX.size + 40, len(data) - 4, len(data) - 1):
        with pytest.raises(CodecError):
            decode(data[:cut])
    # a valid checksum over a section cut in a word: the coefficient decoder says so
    payload = data[PREFIX.size :]
    short = payload[: len(payload) - 3]
    with pytest.raises(CodecError, match="coefficient"):
        decode(PREFIX.pack(b"MINR", 3, 4, zlib.crc32(short)) + short)
    huge = struct.pack("<I", 2**31) + payload[4:]  # a stream length beyond the payload
    with pytest.raises(CodecError, match="truncated"):
        decode(PREFIX.pack(b"MINR", 3, 4, zlib.crc32(huge)) + huge)
    # the record and its section re-wrapped whole in one LZMA2 stream (coder 3) still decode
    raw = open_payload(data)[1]
    whole = lzma.compress(raw, format=lzma.FORMAT_RAW, filters=LZMA_RAW)
    net, _ = decode(PREFIX.pack(b"MINR", 3, 3, zlib.crc32(whole)) + whole)
    ref, _ = decode(data)
    assert torch.equal(render(net, (96, 128)), render(ref, (96, 128)))


def test_range_coded_file_of_2026_11_30_still_decodes():
    """tests/data/fast_v3_range.inr: `fast` on the 96×128 astronaut crop at step 0.05, range
    coded (flags bit 4), written 2026-11-30: a change to the context model, the tables or
    the `constriction` version that alters the decoding fails here."""
    import skimage.data

    net, coded = decode((DATA / "fast_v3_range.inr").read_bytes())
    crop = skimage.data.astronaut()[100:196, 150:278]
    img = torch.from_numpy(crop).permute(2, 0, 1).float() / 255
    assert coded.step == pytest.approx(0.05)
    assert psnr(render(net, (96, 128)), img) == pytest.approx(32.3678, abs=0.001)


@pytest.mark.parametrize("shape", [(3, 6, 9), (1, 1, 1), (4, 1, 7), (2, 5, 1)])
def test_median_edge_dc_prediction_round_trips(shape):
    from mhinr.model.codec import dc_med_residuals, dc_med_sums

    dc = np.random.default_rng(4).integers(-300, 300, size=shape)
    res = dc_med_residuals(dc)
    assert np.array_equal(dc_med_sums(res), dc)
    if shape[1] > 1 and shape[2] > 1:  # a plane is predicted exactly inside
        plane = np.add.outer(np.arange(shape[1]), 2 * np.arange(shape[2]))[None]
        assert np.abs(dc_med_residuals(plane)[:, 1:, 1:]).max() <= 2


def test_range_coded_file_with_median_dc_flag_alone_is_refused(photo_coder):
    import lzma

    from mhinr.model.codec import (
        COMPACT,
        FLAG_DC_MEDIAN,
        FLAG_DC_PREDICTION,
        LZMA_RAW,
        open_payload,
    )

    data = photo_coder[1].encode(0.05)
    raw = bytearray(open_payload(data)[1])
    assert raw[COMPACT.size - 1] & FLAG_DC_MEDIAN
    raw[COMPACT.size - 1] &= ~FLAG_DC_PREDICTION
    whole = lzma.compress(bytes(raw), format=lzma.FORMAT_RAW, filters=LZMA_RAW)
    with pytest.raises(CodecError, match="median-edge DC flag without DC prediction"):
        decode(PREFIX.pack(b"MINR", 3, 3, zlib.crc32(whole)) + whole)


def test_a_section_of_nothing_but_escapes_is_refused_quickly():
    """A crafted section whose every value escapes its table would cost a Python loop a
    value: the decoder stops at a bound far above any real file's count."""
    import time

    from mhinr.model.codec import entropy

    shape = (33, 3, 40, 40)
    q = np.full(shape, 10**5, np.int64)  # every value beyond every table
    q[:, :, ::2] = 0
    data = entropy.encode(q)
    t = time.perf_counter()
    with pytest.raises(ValueError, match="too many escaped values"):
        entropy.decode(data, shape)
    assert time.perf_counter() - t < 5
    ok = _laplace_rows(shape)
    ok.flat[::50] = 10**5  # 2 % escaped: still decodes
    assert np.array_equal(entropy.decode(entropy.encode(ok), shape), ok)


@pytest.fixture
def fitted_widths(monkeypatch) -> list[int]:
    """The body widths the coefficient storage fits, in order, from here on."""
    import mhinr.model.coefficients as co

    widths = []
    real = co.fit_projection

    def spy(net, *args, **kwargs):
        widths.append(net.cfg.width)
        return real(net, *args, **kwargs)

    monkeypatch.setattr(co, "fit_projection", spy)
    return widths


def test_presets_code_the_fixed_body_and_train_only_an_asked_for_width(fitted_widths):
    """`compact` and `max` with a target code the fixed body on 8-, 12- and 16-pixel cells
    and keep the best file, `fast` and every preset without a target on 16-pixel cells;
    none of them trains a body unless a width is asked for."""
    import mhinr.model.coefficients as co

    widths = fitted_widths
    img = smooth_image(3, 64, 64)
    tried = []
    real = co.best_coder

    def spy(coders, *args, **kwargs):
        tried.append(sorted((c.net.cfg.cell[0], c.kernel) for c in coders))
        return real(coders, *args, **kwargs)

    co.best_coder = spy
    try:
        for preset, bpp, cells in (
            ("compact", 0.5, [(8, 5), (11, 5), (16, 5)]),  # 12: 64 rows make cells of 11
            ("max", 1.0, sorted((c, k) for c in (8, 11, 16) for k in (3, 5, 7))),
            ("fast", 0.5, [(16, 5)]),
            ("compact", None, [(16, 5)]),
        ):
            tried.clear()
            steps = None if preset == "fast" else 20  # a short trained stage
            out = compress(img, "RGB", Options(preset=preset, bpp=bpp, steps=steps))
            assert tried == [cells] and widths == []
            assert out.net.cfg.init == "fixed" and out.net.cfg.cell[0] in (8, 11, 16)
            assert bpp is None or out.met
    finally:
        co.best_coder = real
    out = compress(img, "RGB", Options(preset="compact", width=24, steps=2, bpp=0.5))
    assert widths == [24] and out.net.cfg.width == 24 and out.net.cfg.init == "torch"


def test_coding_reports_progress_a_file_and_stops_when_cancelled():
    """Without the trained stage (steps=0) a job's progress is the files coded: one report
    each (with a preview), and a cancel stops between files with the best so far."""
    img = smooth_image(3, 64, 64)
    reports = []
    out = compress(img, "RGB", Options(preset="compact", bpp=0.5, steps=0), reports.append)
    assert [(p.step, p.total) for p in reports] == [(1, 3), (2, 3), (3, 3)]
    assert max(p.psnr for p in reports) == pytest.approx(out.psnr)
    assert reports[-1].image().shape == (3, 64, 64)
    reports.clear()
    stopped = compress(img, "RGB", Options(preset="max", bpp=0.5), reports.append, lambda: True)
    assert len(reports) == 1 and stopped.bytes > 0  # the first file, then the cancel


# --- the fixed body ------------------------------------------------------------------------


@pytest.mark.parametrize("cell", [(8, 8), (6, 8), (7, 7), (16, 16), (12, 11)])
def test_the_cosine_body_is_the_cells_dct_at_the_pixels_and_cosines_between(cell):
    """Every cell shape: the fixed body's features and the constant are the cell's
    orthonormal DCT at its pixel centres, in an order whose model variance falls; between
    the pixels they are the continuous cosines (a half-pixel shift of the lowest one)."""
    from mhinr.model.codec import ar1_covariance
    from mhinr.model.network import INRConfig, MultiHeadINR, cell_coordinates, dct_basis

    n = cell[0] * cell[1]
    cfg = INRConfig((2, 2), cell, 3, n - 1, 1, n - 1, body="cosine", init="fixed")
    net = MultiHeadINR(cfg)
    assert not list(net.body.parameters())  # nothing to store
    u = dct_basis(cell)
    assert torch.allclose(u.T @ u, torch.eye(n, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(u[:, 0], torch.full((n,), n**-0.5, dtype=torch.float64))
    feats = net.body(cell_coordinates(*cell)).double()
    assert torch.allclose(feats, u[:, 1:], atol=1e-6)
    var = (u.T @ ar1_covariance(cell) @ u).diagonal()
    assert var[1] > var[n // 2] > var[-1]
    if cell[1] > 1:  # the first cosine along x, between two pixel centres: cos(π(x + 1)/2)
        mid = torch.tensor([[cell_coordinates(*cell)[0, 0], 0.0]])
        first = [i for i, f in enumerate(net.body.freq.tolist()) if f[0] == 0][0]
        expect = (2 / cell[1]) ** 0.5 * (1 / cell[0]) ** 0.5 * math.cos(math.pi / 2)
        assert net.body(mid)[0, first].item() == pytest.approx(expect, abs=1e-6)


def test_a_fixed_body_file_holds_no_body_and_decodes_exactly():
    from mhinr.model.codec import COMPACT, open_payload
    from mhinr.model.coefficients import fit_coders
    from mhinr.model.presets import Arch

    img = smooth_image(3, 40, 56)
    (c,) = fit_coders(img, "RGB", Options(preset="fast"), True, archs=[Arch(8, fixed=True)])
    assert c.net.cfg.init == "fixed" and c.net.cfg.width == 63 and c.net.cfg.depth == 1
    trained = fit_coders(img, "RGB", Options(preset="fast", width=63, depth=1), False)[0]
    for step in (0.3, 0.02):
        data = c.encode(step)
        assert COMPACT.unpack_from(open_payload(data)[1])[7] == 2  # init "fixed"
        # a trained body of the same shape codes 63·2 int8, 63 f16 scales, 63 f16 biases
        assert len(data) < len(trained.encode(step)) - 200
        net, _ = decode(data)
        assert net.cfg.body == "cosine" and not list(net.body.parameters())
        _assert_decodes_to_reconstruction(data, c, step)
        out = finish(data, img, {})
        assert out.psnr == pytest.approx(c.quality(step), abs=0.01)


def test_a_fixed_body_of_the_wrong_shape_is_refused():
    from mhinr.model.codec import COMPACT
    from mhinr.model.coefficients import FIXED, fit_coders

    img = smooth_image(3, 40, 56)
    (c,) = fit_coders(img, "RGB", Options(preset="fast"), True, archs=[FIXED])

    def deeper(raw: bytearray) -> bytearray:
        fields = list(COMPACT.unpack_from(raw))
        fields[5] = 2  # depth 2: a fixed body has one layer
        raw[: COMPACT.size] = COMPACT.pack(*fields)
        return raw

    with pytest.raises(CodecError, match="cosine body"):
        decode(_recode(c.encode(0.1), deeper))


# --- the cosines predicted from the constant terms (format3.dc_interpolation) -------------


def _catmull_rom_matrix(cells: int, n: int) -> torch.Tensor:
    """[cells·n, cells]: each pixel's weights on the cell centres (Catmull-Rom, indices
    clamped at the edges), written out tap by tap."""
    m = torch.zeros(cells * n, cells, dtype=torch.float64)
    for y in range(cells * n):
        s = (y + 0.5) / n - 0.5  # in cells, 0 at the first cell's centre
        base = math.floor(s)
        t = s - base
        taps = [
            (-(t**3) + 2 * t**2 - t) / 2,
            (3 * t**3 - 5 * t**2 + 2) / 2,
            (-3 * t**3 + 4 * t**2 + t) / 2,
            (t**3 - t**2) / 2,
        ]
        for j, weight in zip(range(base - 1, base + 3), taps, strict=True):
            m[y, min(max(j, 0), cells - 1)] += weight
    return m


@pytest.mark.parametrize("cell", [(16, 16), (12, 12), (8, 12)])
def test_dc_interpolation_is_the_cosines_of_the_interpolated_means(cell):
    """The NumPy prediction (separable, 5×5 neighbourhoods, DCTs of the weights) equals its
    definition: the cells' means interpolated between the cells' centres by Catmull-Rom's
    cubic, each cell's DCT of that image, the constant's row zero."""
    from mhinr.model.codec.format3 import dc_interpolation
    from mhinr.model.network import dct_basis, split_cells

    rng = np.random.default_rng(1)
    dc = rng.integers(-60, 60, (3, 5, 7))
    step = 0.3
    basis = dct_basis(cell)
    means = torch.from_numpy(dc * step * float(basis[0, 0]))
    rows, cols = _catmull_rom_matrix(5, cell[0]), _catmull_rom_matrix(7, cell[1])
    up = torch.einsum("yi,cij,xj->cyx", rows, means, cols)
    expected = basis.T @ split_cells(up, 5, 7)
    expected[0] = 0
    got = dc_interpolation(dc, step, cell)
    assert np.abs(got - expected.numpy()).max() < 1e-10
    assert np.abs(got).max() > 1  # not trivially zero


@pytest.fixture(scope="module")
def cosine_coder():
    from mhinr.model.coefficients import fit_coders
    from mhinr.model.presets import Arch

    img = smooth_image(3, 64, 80)
    return img, fit_coders(
        img, "RGB", Options(preset="compact"), True, [Arch(cell=16, fixed=True)]
    )[0]


def test_dc_interpolated_file_decodes_to_the_encoders_reconstruction(cosine_coder):
    """A cosine-body file coded against the interpolation (flags2 bit 1) decodes, in both
    decoders, to what the encoder reconstructed; coded at a coarse step, where most cells
    keep only their constant, the smooth image comes back closer than flat cells do, in no
    more bytes."""
    from mhinr.model import decoder
    from mhinr.model.codec import COMPACT, FLAG2_CHROMA, FLAG2_DC_INTERP, open_payload

    img, c = cosine_coder
    step = 1.0
    assert c.tools.dc_interp
    c.post_filter = False  # the cells alone
    c.tools = replace(c.tools, deblock=False)
    try:
        data = c.encode(step)
        raw = open_payload(data)[1]
        assert raw[COMPACT.size] & FLAG2_DC_INTERP
        out = _assert_decodes_to_reconstruction(data, c, step)
        numpy_out = decoder.read(data).native()
        assert np.abs(numpy_out.astype(int) - out.numpy().astype(int)).max() <= 1
        c.tools = replace(c.tools, dc_interp=False, chroma=False)
        flat = c.encode(step)
        raw = open_payload(flat)[1]
        flags2 = raw[COMPACT.size] if raw[COMPACT.size - 1] & 128 else 0
        assert not flags2 & (FLAG2_DC_INTERP | FLAG2_CHROMA)
        flat_out = _assert_decodes_to_reconstruction(flat, c, step)
    finally:
        c.tools = replace(c.tools, dc_interp=True, chroma=True, deblock=True)
        c.post_filter = True
    assert (c.quantized(step)[1:] != 0).float().mean() < 0.05  # mostly constants
    assert psnr(out, img) > psnr(flat_out, img) + 1 and len(data) <= len(flat) + 2


@contextlib.contextmanager
def _tools(c, **changes):
    """A coder's coding tools changed for the block, then as they were."""
    before = c.tools
    c.tools = replace(before, **changes)
    try:
        yield c
    finally:
        c.tools = before


def test_dc_interpolation_needs_the_cosine_body(coder):
    """A trained body's file cannot say it was coded against the interpolation: the writer
    refuses it, and a reader refuses a record that claims it."""
    from mhinr.model.codec import COMPACT, open_payload
    from mhinr.model.codec.format3 import FLAG_MORE, read

    _, c = coder
    with _tools(c, dc_interp=True), pytest.raises(ValueError, match="cosine body"):
        c.encode(0.05)
    with _tools(c, context_coding=False):  # the byte-plane record: one stream
        raw = bytearray(open_payload(c.encode(0.05))[1])
    if raw[COMPACT.size - 1] & FLAG_MORE:  # a second flags byte with bit 1
        raw[COMPACT.size] |= 2
    else:
        raw[COMPACT.size - 1] |= FLAG_MORE
        raw[COMPACT.size : COMPACT.size] = bytes([2])
    with pytest.raises(CodecError, match="cosine body"):
        read(bytes(raw))


# --- channels ≥ 1 predicted from channel 0 (format3.ChromaPredictor) ----------------------


def test_chroma_prediction_is_its_definition():
    """format3.chroma_prediction (running sums, separable box sums) equals its definition
    written out cell by cell: row k ≥ 1 of channel c ≥ 1 predicted as α·e₀, e₀ channel 0's
    integer times the step, α the ridge least-squares fit of the decoded e_c on e₀ over rows
    1 … k−1 of the (2r+1)² cells around the cell (edges replicated), clipped to ±2."""
    from mhinr.model.codec.format3 import CHROMA_RADIUS, CHROMA_RIDGE, chroma_prediction

    rng = np.random.default_rng(2)
    q = rng.integers(-5, 6, (6, 3, 4, 7)) * (rng.random((6, 3, 4, 7)) < 0.6)
    q[:, 1] += 2 * q[:, 0]  # channel 1 follows channel 0
    step, r = 0.2, CHROMA_RADIUS
    k_rows, channels, hy, hx = q.shape
    e = q * step
    expected = np.zeros(q.shape)
    for k in range(1, k_rows):
        for c in range(1, channels):
            for y in range(hy):
                for x in range(hx):
                    num = den = 0.0
                    for yy in range(y - r, y + r + 1):
                        for xx in range(x - r, x + r + 1):
                            cy, cx = min(max(yy, 0), hy - 1), min(max(xx, 0), hx - 1)
                            for j in range(1, k):
                                num += e[j, c, cy, cx] * e[j, 0, cy, cx]
                                den += e[j, 0, cy, cx] ** 2
                    alpha = min(max(num / (den + CHROMA_RIDGE * step**2), -2.0), 2.0)
                    expected[k, c, y, x] = alpha * e[k, 0, y, x]
            e[k, c] += expected[k, c]  # the decoded row: the integers plus the prediction
    got = chroma_prediction(q, step)
    assert np.abs(got - expected).max() < 1e-9
    assert np.abs(got[:, 1]).max() > 0.5  # not trivially zero
    assert not got[0].any() and not got[:, 0].any()


def test_chroma_predicted_file_decodes_to_the_encoders_reconstruction(cosine_coder):
    """A colour cosine-body file codes channels ≥ 1 against the prediction from channel 0
    (flags2 bit 2): the prediction the encoder quantized against is the decoder's own
    (chroma_prediction of the file's integers, exactly), and both decoders give the
    encoder's reconstruction; without it the second flags byte loses bit 2 and the file
    decodes as before."""
    from mhinr.model import decoder
    from mhinr.model.codec import COMPACT, FLAG2_CHROMA, open_payload
    from mhinr.model.codec.format3 import chroma_prediction

    img, c = cosine_coder
    step = 0.02
    assert c.tools.chroma
    c.post_filter = False  # the cells alone
    c.tools = replace(c.tools, deblock=False)
    try:
        data = c.encode(step)
        assert open_payload(data)[1][COMPACT.size] & FLAG2_CHROMA
        q = c.quantized(step).numpy().astype(np.int64).reshape(-1, 3, *c.net.cfg.heads)
        terms = c.chroma(step).numpy().reshape(q.shape)
        assert np.array_equal(terms, chroma_prediction(q, step)) and np.abs(terms).max() > 0
        out = _assert_decodes_to_reconstruction(data, c, step)
        numpy_out = decoder.read(data).native()
        assert np.abs(numpy_out.astype(int) - out.numpy().astype(int)).max() <= 1
        c.tools = replace(c.tools, chroma=False)
        plain = c.encode(step)
        assert not open_payload(plain)[1][COMPACT.size] & FLAG2_CHROMA
        _assert_decodes_to_reconstruction(plain, c, step)
    finally:
        c.tools = replace(c.tools, chroma=True, deblock=True)
        c.post_filter = True


def test_chroma_prediction_needs_the_cosine_body_in_colour(coder):
    """The writer refuses the chroma prediction on a trained body; a reader refuses a
    record that claims it on a trained body or a grey image."""
    from mhinr.model.codec import COMPACT, open_payload
    from mhinr.model.codec.format3 import FLAG_MORE, read
    from mhinr.model.coefficients import FIXED, fit_coders

    _, c = coder
    with _tools(c, chroma=True), pytest.raises(ValueError, match="cosine body in colour"):
        c.encode(0.05)
    (grey,) = fit_coders(smooth_image(1, 40, 56), "L", Options(preset="fast"), True, [FIXED])
    assert not grey.tools.chroma
    for one in (c, grey):
        with _tools(one, context_coding=False):  # the byte-plane record
            raw = bytearray(open_payload(one.encode(0.05))[1])
        if raw[COMPACT.size - 1] & FLAG_MORE:
            raw[COMPACT.size] |= 4
        else:
            raw[COMPACT.size - 1] |= FLAG_MORE
            raw[COMPACT.size : COMPACT.size] = bytes([4])
        with pytest.raises(CodecError, match="chroma prediction"):
            read(bytes(raw))


# --- the deblocking filter at the cells' borders (model/codec/deblock.py) -----------------


def test_deblocking_is_its_definition():
    """One vertical border between flat cells of 100 and 120 (a step of 20 levels, the
    gradient on either side 0): d = 3·20 − 20 = 40, so with a ramp of 2 the pixels next to
    the border move by (40·3 + 8) // 16 = 8 and the next ones by (40 + 8) // 16 = 3 toward
    each other; a threshold under the step leaves it alone, pixels beyond the ramp never
    move, and the horizontal borders are the same transposed."""
    from mhinr.model.codec.deblock import deblock_u8, valid

    img = np.full((3, 6, 16), 100, np.uint8)
    img[:, :, 8:] = 120
    out = deblock_u8(img, (8, 8), 2, 32).astype(int)
    assert out[0, 0, 5:11].tolist() == [100, 103, 108, 112, 117, 120]
    assert (out == out[:1, :1]).all(axis=(0, 1)).all()  # every row and channel alike
    assert np.array_equal(deblock_u8(img, (8, 8), 2, 16), img)  # 20 > 16: an edge, kept
    across = deblock_u8(img.transpose(0, 2, 1).copy(), (8, 8), 2, 32)
    assert np.array_equal(across, out.transpose(0, 2, 1))
    flat = np.full((3, 32, 32), 77, np.uint8)
    assert np.array_equal(deblock_u8(flat, (16, 16), 4, 255), flat)
    assert valid(8, 255, (16, 16)) and not valid(9, 32, (16, 16)) and not valid(2, 0, (8, 8))


def test_deblocked_file_decodes_to_the_encoders_image_in_both_decoders(cosine_coder):
    """At a coarse step the encoder keeps the deblocking setting that lowers the error most
    (flags2 bit 3, its two bytes): both decoders apply it to the cells as the encoder did,
    and the result is closer to the image than the cells alone."""
    from mhinr.model import decoder
    from mhinr.model.codec import COMPACT, FLAG2_DEBLOCK, open_payload

    img, c = cosine_coder
    step = 1.0
    c.post_filter = False  # the cells and the deblocking alone
    try:
        data = c.encode(step)
        image, setting = c.deblocked(step)
        assert setting is not None and open_payload(data)[1][COMPACT.size] & FLAG2_DEBLOCK
        assert decoder.read(data).record.deblock == setting
        net, coded = decode(data)
        out = render(net, (coded.height, coded.width))
        expected = (image * 255).round().to(torch.uint8)
        assert psnr(out, expected) > 50  # the encoder's deblocked image, up to rounding
        assert np.abs(decoder.read(data).native().astype(int) - out.numpy().astype(int)).max() <= 1
        cells = _assert_decodes_to_reconstruction(data, c, step)
        assert psnr(out, img) > psnr(cells, img)
        assert psnr(out, img) == pytest.approx(c.quality(step), abs=0.02)
    finally:
        c.post_filter = True


def test_a_deblocking_wider_than_half_a_cell_is_refused(cosine_coder):
    """The writer refuses a ramp wider than half a cell (the borders' ramps would overlap);
    a reader refuses a record that holds one."""
    from mhinr.model.codec import COMPACT, encode_coefficients, open_payload
    from mhinr.model.codec.format3 import read

    _, c = cosine_coder
    with _tools(c, context_coding=False):  # the byte-plane record: one stream
        raw = bytearray(open_payload(c.encode(1.0))[1])
    assert c.deblocked(1.0)[1] is not None
    raw[COMPACT.size + 1] = 9  # the ramp, on 16-pixel cells
    with pytest.raises(CodecError, match="deblocking"):
        read(bytes(raw))
    coded = decode(c.encode(1.0))[1]
    q = c.quantized(1.0).numpy()
    with pytest.raises(ValueError, match="deblocking"):
        encode_coefficients(c.net, coded, q, c.bq, "lzma", c.tools, None, None, (9, 32))
