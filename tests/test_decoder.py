"""The NumPy decoder (model/decoder.py) against the PyTorch one (codec.decode + render.render):
the same pixels up to float rounding, the same `mhinr info`, and a clear refusal of the
files it leaves to PyTorch."""

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from mhinr.app.cli import describe, describe_network
from mhinr.model import decoder, synthesis
from mhinr.model.codec import CodecError, decode, format3
from mhinr.model.compress import compress
from mhinr.model.presets import Options
from mhinr.model.render import render
from tests.conftest import smooth_image
from tests.test_stage import astronaut_crop

DATA = Path(__file__).parent / "data"
# the files the presets write: today's `fast` and `compact` (with a trained stage whose
# biases are in sixteenths of their row's unit), with the cosines predicted from the constant
# terms, the chroma from channel 0, the deblocking and the frequency context model
# (tests/data/make_preset_files.py); the same two of 2026-12-05 under the legacy context
# model; a `compact` one of that day with its stage's biases in the weights' unit; the same
# morning's, with the first prediction only; those
# of 2026-12-04, without either: `fast` (16-pixel cells), `max` (8-pixel cells) and a
# `compact` one with a trained stage (make_stage_file.py)
COMMITTED = [
    "fast_context.inr",
    "compact_context.inr",
    "fast_chroma.inr",
    "compact_bias.inr",
    "compact_chroma.inr",
    "fast_interp.inr",
    "compact_interp.inr",
    "fast_cosine.inr",
    "max_cosine.inr",
    "compact_v3_stage.inr",
]
SIZES = [None, (96, 128), (100, 130), (400, 533), (37, 300)]


def assert_close(numpy_pixels: np.ndarray, torch_pixels: torch.Tensor, spread: float = 1) -> None:
    """Float rounding only: a value may land on the other side of a rounding boundary (by 1,
    in at most 0.1 % of the values, or 8 of a small image's). A resize spreads each native
    value that flips over the `spread` (output pixels an input pixel) values a Lanczos resize
    draws from it, by up to 2 where its lobes add to a rounding (since 2026-12-05 the
    cosines predicted from the constant terms leave few coefficients exactly zero, and a
    smooth 45×61 image flips 3 of its 2,745 native values)."""
    theirs = torch_pixels.numpy().astype(int)
    assert numpy_pixels.shape == theirs.shape and numpy_pixels.dtype == np.uint8
    diff = np.abs(numpy_pixels.astype(int) - theirs)
    flips = int((diff > 0).sum())
    allowed = max(8, diff.size // 1000) * max(1.0, spread)
    top = 1 if spread <= 1 else 2
    assert diff.max() <= top and flips <= allowed, (diff.max(), flips, diff.size)


def both(data: bytes, sizes=SIZES, methods=("resample", "plain")) -> None:
    mine = decoder.read(data)
    net, coded = decode(data)
    size = (coded.height, coded.width)
    assert mine.size == size
    for out in sizes:
        for method in methods:
            spread = 1.0
            if out is not None and method == "resample":
                spread = out[0] * out[1] / (size[0] * size[1])
            assert_close(mine.render(out, method), render(net, size, out, method), spread)
    assert describe(data) == describe_network(data, net, coded)


@pytest.mark.parametrize("name", COMMITTED)
def test_the_numpy_decoder_gives_the_pytorch_pixels_on_each_presets_file(name):
    both((DATA / name).read_bytes())


@pytest.fixture(scope="module")
def extra_files() -> dict[str, bytes]:
    """Files of what the committed ones lack: grey, grey with alpha and RGBA images, a
    restoration filter (priced at nothing so that the encoder keeps it, as in
    test_codec.py), and a stage whose middle layer is dilated."""
    import mhinr.model.coefficients as coefficients

    files = {}
    for mode, channels in (("L", 1), ("LA", 2), ("RGBA", 4)):
        img = smooth_image(channels, 45, 61, seed=channels)
        files[mode] = compress(img, mode, Options(preset="fast")).data
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(coefficients, "FILTER_DB_PER_OCTAVE", 0.0)
        files["filter"] = compress(smooth_image(3, 40, 56), "RGB", Options(preset="fast")).data
    img = astronaut_crop()[:, :96, :128]
    (coder,) = coefficients.fit_coders(img, "RGB", Options(preset="fast"), search=False)
    stage, _ = synthesis.train(coder.decoded(0.1), img, seconds=60, max_steps=40, dilation=2)
    dilated = copy.copy(coder)
    dilated.stage, dilated._coded = stage, None
    files["dilated"] = dilated.encode(0.1)
    return files


@pytest.mark.parametrize("kind", ["L", "LA", "RGBA", "filter", "dilated"])
def test_the_numpy_decoder_gives_the_pytorch_pixels_on_other_files(extra_files, kind):
    data = extra_files[kind]
    record = decoder.read(data).record
    assert kind != "filter" or record.post_filter is not None
    assert kind != "dilated" or (record.stage is not None and record.stage.dilation == 2)
    both(data, sizes=[None, (90, 122), (20, 31)])


def test_files_of_trained_networks_are_left_to_pytorch_with_a_clear_message():
    for name, what in (
        ("fast_v1.inr", "from before 2026-11-30"),  # format 1: a trained body
        ("fast_v3_range.inr", "trained ReLU network"),  # format 3, a trained body
    ):
        with pytest.raises(decoder.NeedsPyTorch, match=what) as err:
            decoder.read((DATA / name).read_bytes())
        assert "pip install 'mhinr[fit]'" in str(err.value)
        assert describe((DATA / name).read_bytes())["body"] == "relu"  # the CLI falls back


def test_a_weights_file_is_named_as_one():
    from mhinr.model.compress import compress as fit

    data = fit(smooth_image(1, 16, 16), "L", Options(preset="paper", steps=2)).data
    with pytest.raises(decoder.NeedsPyTorch, match="a network's weights"):
        decoder.read(data)


def test_a_corrupt_file_is_refused_by_both_decoders_alike():
    data = bytearray((DATA / "fast_cosine.inr").read_bytes())
    for broken in (bytes(data[:20]), bytes(data[:-3]), b"MINR" + bytes(data[4:-1]) + b"\x00"):
        with pytest.raises(CodecError) as mine:
            decoder.read(broken)
        with pytest.raises(CodecError) as theirs:
            decode(broken)
        assert str(mine.value) == str(theirs.value)


def test_the_format_counts_a_stages_integers_as_the_network_holds_them():
    for channels, hidden, dilation in ((3, 8, 0), (1, 4, 2), (4, 16, 1)):
        net = synthesis.Stage(channels, hidden, dilation)
        ints = sum(c.weight.numel() + c.bias.numel() for c in net.layers())
        rows = sum(c.out_channels for c in net.layers())
        assert format3.stage_counts(channels, hidden, dilation) == (ints, rows)


def test_native_renders_are_cached_and_not_written_to():
    d = decoder.read((DATA / "fast_cosine.inr").read_bytes())
    first = d.native()
    assert d.native() is first
    assert d.render() is first  # the native size is the native image itself
