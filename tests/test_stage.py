"""The trained stage of the coefficient codec (model/synthesis.py): its file section, its
decoding, the presets that train it and the options that turn it off."""

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from mhinr.model import coefficients, synthesis
from mhinr.model.codec import CodecError, decode
from mhinr.model.compress import Options, compress
from mhinr.model.metrics import psnr
from mhinr.model.render import render

DATA = Path(__file__).parent / "data"


def astronaut_crop() -> torch.Tensor:
    import skimage.data

    crop = skimage.data.astronaut()[0:192, 100:356]
    return torch.from_numpy(crop).permute(2, 0, 1).float() / 255


def _coder_with_stage(
    img: torch.Tensor, steps: int = 300, step: float = 0.1, hidden: int = synthesis.HIDDEN
):
    from mhinr.model.coefficients import CoefficientCoder, fit_coders

    (coder,) = fit_coders(img, "RGB", Options(preset="fast"), search=False)
    decoded = coder.decoded(step)
    stage, taken = synthesis.train(decoded, img, seconds=600, max_steps=steps, hidden=hidden)
    trained: CoefficientCoder = copy.copy(coder)
    trained.stage, trained._coded = stage, None
    return coder, trained, taken


def test_a_stage_starts_as_the_identity_and_quantizes_to_what_the_file_holds():
    net = synthesis.Stage(3)
    x = torch.rand(1, 3, 20, 24)
    assert torch.equal(net(x), x)  # the output layer starts at zero
    torch.nn.init.normal_(net.out.weight, std=0.1)
    torch.nn.init.normal_(net.out.bias, std=0.01)
    biases = [conv.bias.detach().clone() for conv in net.layers()]
    ints, scales = synthesis.quantize_(net)
    assert net.bias_shift == 4  # today's files: biases in sixteenths of their row's unit
    at = 0
    for conv, bias, scale in zip(net.layers(), biases, np.split(scales, [8, 16]), strict=True):
        rows = ints[at : at + conv.bias.numel() * (conv.weight[0].numel() + 1)]
        rows = rows.reshape(conv.bias.numel(), -1)
        at += rows.size
        assert np.abs(rows[:, :-1]).max() <= synthesis.LEVELS + 1  # the weights
        # the bias rounded to a sixteenth of the weights' unit, where the weights' unit
        # would have moved the output layer's by up to half of it
        unit = torch.from_numpy(scale.astype(np.float64)).float() / 16
        assert torch.all((conv.bias.detach() - bias).abs() <= unit / 2 + 1e-7)
    again = synthesis.from_quantized(3, synthesis.HIDDEN, 0, ints, scales, net.bias_shift)
    assert torch.allclose(again(x), net(x), atol=1e-6)
    old = synthesis.from_quantized(3, synthesis.HIDDEN, 0, ints, scales)  # files before
    assert not torch.allclose(old(x), net(x), atol=1e-3)  # their biases read 16× larger
    assert net.multiplications() < 2000  # the decoder budget a pixel


def test_a_stage_trained_from_another_starts_from_its_weights_and_leaves_it_alone():
    torch.manual_seed(1)
    start = synthesis.Stage(3, hidden=4)
    torch.nn.init.normal_(start.out.weight, std=0.1)  # far from the identity
    kept = [p.detach().clone() for p in start.parameters()]
    x = torch.rand(3, 70, 70)
    trained, steps = synthesis.train(x, x, 600, max_steps=5, init=start)
    assert steps == 5 and trained.hidden == 4 and trained is not start
    fresh, _ = synthesis.train(x, x, 600, max_steps=5, hidden=4)  # the same seed
    with torch.no_grad():
        out, before, other = trained(x[None]), start(x[None]), fresh(x[None])
    # five steps from the start stay nearer it than five from a fresh stage's identity
    assert (out - before).abs().mean() < 0.8 * (other - before).abs().mean()
    assert all(torch.equal(p, k) for p, k in zip(start.parameters(), kept, strict=True))


def test_a_file_with_a_stage_decodes_to_the_encoders_quality_and_renders_in_bands():
    img = astronaut_crop()
    plain, trained, taken = _coder_with_stage(img)
    assert taken == 300
    assert trained.quality(0.1) > plain.quality(0.1)  # it learnt something
    data = trained.encode(0.1)
    assert len(data) > len(plain.encode(0.1))  # it costs bytes
    net, coded = decode(data)
    assert net.stage is not None
    assert np.array_equal(net.stage.quantized[0], trained.stage.quantized[0])
    assert psnr(render(net, (192, 256)), img) == pytest.approx(trained.quality(0.1), abs=0.02)
    u8 = render(net, (192, 256))
    # the banded decoder equals one pass over the whole image
    from mhinr.model.render import render_grid_u8

    native = render_grid_u8(net, *net.cfg.cell)[:, :192, :256]
    from mhinr.model.codec import postfilter

    if net.post_filter is not None:
        native = postfilter.apply_u8(native, net.post_filter)
    whole = synthesis.apply_u8(native, net.stage, band_rows=1000)
    assert torch.equal(synthesis.apply_u8(native, net.stage, band_rows=7), whole)
    assert torch.equal(u8, whole)


def test_a_corrupt_stage_section_is_refused():
    from mhinr.model.codec import FLAG2_STAGE

    img = astronaut_crop()[:, :64, :64]
    _, trained, _ = _coder_with_stage(img, steps=20)
    data = trained.encode(0.1)
    net, _ = decode(data)
    assert net.stage is not None and FLAG2_STAGE == 1
    for cut in (len(data) // 3, len(data) - 2):
        with pytest.raises(CodecError):
            decode(data[:cut])


def test_fast_refuses_the_options_it_would_ignore_and_compact_takes_them():
    with pytest.raises(ValueError, match="does not use steps"):
        Options(preset="fast", steps=100)
    with pytest.raises(ValueError, match="time_budget_s"):
        Options(preset="fast", time_budget_s=10)
    Options(preset="fast", steps=100, width=24)  # a trained body: the steps are its own
    Options(preset="compact", steps=100, time_budget_s=10)


def test_compact_trains_the_stage_and_keeps_it_only_where_it_pays():
    """A photo at 0.5 bpp: the stage is trained (its steps reported), and the file the
    preset returns is never worse for the target than the file without the stage."""
    img = astronaut_crop()
    reports = []
    out = compress(img, "RGB", Options(preset="compact", bpp=0.5, steps=400), reports.append)
    stage = out.stage
    assert stage is not None and stage["steps"] == 400 and out.train_steps == 400
    shown = [(p.step, p.total) for p in reports if p.phase == "stage"]
    assert shown[-1] == (400, 400)  # every part of the budget spent, the last one said so
    assert [s for s, _ in shown] == sorted(s for s, _ in shown)
    rounds = range(2, coefficients.STAGE_REQUANT_AGAIN + 2)  # "×2", "×3": the rounds that paid
    again = (f"{k} ×{n}" for k in coefficients.STAGE_REQUANT for n in rounds)
    kinds = (None, *coefficients.STAGE_REQUANT, *again)
    assert stage["requantized"] in kinds
    assert 0 < stage["steps"] / stage["seconds"] < stage["steps_per_s"]  # training alone
    assert out.met and out.bytes <= 0.5 * 192 * 256 / 8
    assert out.psnr >= stage["without"]["psnr"] - 5e-4  # the metrics round to 0.001 dB
    assert (out.stage["kept"]) == (decode(out.data)[0].stage is not None)
    off = compress(img, "RGB", Options(preset="compact", bpp=0.5, steps=0))
    assert off.stage is None and decode(off.data)[0].stage is None
    assert off.bytes == stage["without"]["bytes"]  # steps=0: today's compact, unchanged
    assert compress(img, "RGB", Options(preset="fast", bpp=0.5)).stage is None


def test_the_coefficients_quantized_for_a_stage():
    """`for_stage`: for a stage that is the identity the image it quantizes for is the
    image itself (t = d − (d − o)); for a trained one it differs, the constant terms stay
    the image's, and the coder it returns codes a file of its own."""
    img = astronaut_crop()[:, :96, :128]
    coder, trained, _ = _coder_with_stage(img, steps=200)
    identity = synthesis.Stage(3)
    same = coder.for_stage(identity, 0.1)
    assert same.stage is None
    torch.testing.assert_close(same.coef, coder.coef, atol=1e-6, rtol=0)
    assert torch.equal(same.quantized(0.1), coder.quantized(0.1))
    assert trained.stage is not None
    other = trained.for_stage(trained.stage, 0.1)
    assert torch.equal(other.coef[0], coder.coef[0])  # the constant terms: the image's
    moved = (other.coef[1:] - coder.coef[1:]).abs()
    assert moved.max() > 0.01  # the stage's correction is not nothing
    assert not torch.equal(other.quantized(0.1), coder.quantized(0.1))
    assert torch.equal(coder.coef, trained.coef)  # the coders it came from are unchanged
    other.stage = trained.stage
    net, _ = decode(other.encode(0.1))
    assert psnr(render(net, (96, 128)), img) == pytest.approx(other.quality(0.1), abs=0.02)


def test_the_coefficients_descended_through_a_stage():
    """`descended`: through a stage that is the identity and without the rate, the values
    move from the decode's towards the image's (less what the deblocking and rounding add,
    held), the constant terms too (unless `dc` is off: then they stay the image's); the rate
    pulls the others towards zero; through a trained stage they move, and the coder codes a
    file of its own."""
    img = astronaut_crop()[:, :96, :128]
    coder, trained, _ = _coder_with_stage(img, steps=200)
    step = 0.1
    decoded = coder.quantized(step).double() * step
    prediction = coder.prediction(step)
    if prediction is not None:
        decoded = decoded + prediction
    identity = synthesis.Stage(3)
    free = coder.descended(identity, step, steps=10, rate=0.0, dc=True)
    assert free.stage is None
    for rows in (slice(1, None), slice(0, 1)):  # the others, the constant terms
        far_before = (decoded[rows] - coder.coef[rows]).norm()
        assert (free.coef[rows] - coder.coef[rows]).norm() < 0.5 * far_before
    held = coder.descended(identity, step, steps=10, rate=0.0, dc=False)
    assert torch.equal(held.coef[0], coder.coef[0])
    priced = coder.descended(identity, step, steps=10, rate=2.0)
    assert priced.coef[1:].abs().sum() < free.coef[1:].abs().sum()
    assert trained.stage is not None
    other = trained.requantized_for("descended", trained.stage, step)
    assert not torch.equal(other.coef[0], coder.coef[0])  # the constant terms moved too
    assert not torch.equal(other.quantized(step), coder.quantized(step))
    assert torch.equal(coder.coef, trained.coef)  # the coders it came from are unchanged
    other.stage = trained.stage
    net, _ = decode(other.encode(step))
    assert psnr(render(net, (96, 128)), img) == pytest.approx(other.quality(step), abs=0.02)
    with pytest.raises(ValueError, match="unknown requantization"):
        trained.requantized_for("sideways", trained.stage, step)


def test_a_large_file_trains_a_wider_stage(monkeypatch):
    """The stage's width follows the file's size (coefficients.stage_hidden); a file with
    the wider stage decodes to the encoder's PSNR in both decoders."""
    from mhinr.model import coefficients
    from tests.test_decoder import both

    wide = coefficients.STAGE_WIDE_BYTES
    assert coefficients.stage_hidden(wide - 1) == synthesis.HIDDEN
    assert coefficients.stage_hidden(wide) == coefficients.STAGE_HIDDEN_WIDE > synthesis.HIDDEN
    img = astronaut_crop()[:, :96, :128]
    monkeypatch.setattr(coefficients, "STAGE_WIDE_BYTES", 1)  # this small file counts as large
    out = compress(img, "RGB", Options(preset="compact", bpp=2, steps=50))
    assert out.stage is not None and out.stage["hidden"] == coefficients.STAGE_HIDDEN_WIDE
    _, trained, _ = _coder_with_stage(img, steps=200, hidden=coefficients.STAGE_HIDDEN_WIDE)
    data = trained.encode(0.1)
    net, _ = decode(data)
    assert net.stage is not None and net.stage.hidden == coefficients.STAGE_HIDDEN_WIDE
    assert psnr(render(net, (96, 128)), img) == pytest.approx(trained.quality(0.1), abs=0.02)
    both(data, sizes=[None], methods=("resample",))


@pytest.mark.parametrize(
    "name",
    ["fast_context", "compact_context", "fast_deblock", "compact_bias", "compact_deblock",
     "fast_chroma", "compact_chroma",
     "fast_interp", "compact_interp"],
)  # fmt: skip
def test_committed_files_of_todays_format_decode_to_their_psnr(name):
    """tests/data/*_deblock.inr, *_chroma.inr and compact_bias.inr (`python -m
    tests.data.make_preset_files`, 2026-12-05): the astronaut crop, `fast` at 0.5 and 1
    bpp and at steps 0.3 and 0.1 with a 300-step stage, all coded against the interpolated
    constant terms (second flags byte, bit 1) and with the chroma predicted from channel 0
    (bit 2); the `_deblock` files and compact_bias with the deblocking filter too (bit 3);
    compact_bias's stage with its biases in sixteenths of their row's unit (bit 4); the
    `_interp` files of the same morning have the first prediction only. The `_context` files
    (2026-12-06: `fast` at 1 bpp, and the stage at step 0.3 as compact_bias) are range-coded
    under the context model with the cosines' parents in frequency (bit 5). A change to the
    predictions, the deblocking, the stage or their decoders that moves the decoded pixels
    by more than float rounding fails here, in the PyTorch decoder and in the NumPy one."""
    from mhinr.model import decoder

    data = (DATA / f"{name}.inr").read_bytes()
    expected = float((DATA / f"{name}.psnr").read_text())
    net, coded = decode(data)
    record = decoder.read(data).record
    assert record.dc_interp and record.chroma == (not name.endswith("interp"))
    deblocked = name.endswith(("deblock", "bias")) or name == "compact_context"
    assert (record.deblock is not None) == deblocked
    assert record.frequency_context == name.endswith("context")
    assert (net.stage is not None) == name.startswith("compact")
    if net.stage is not None:
        assert record.stage is not None
        shift = 4 if name in ("compact_bias", "compact_context") else 0
        assert record.stage.bias_shift == net.stage.bias_shift == shift
    assert psnr(render(net, (coded.height, coded.width)), astronaut_crop()) == pytest.approx(
        expected, abs=0.01
    )
    numpy_pixels = torch.from_numpy(decoder.read(data).native())
    assert psnr(numpy_pixels, astronaut_crop()) == pytest.approx(expected, abs=0.01)


def test_committed_file_with_a_stage_still_decodes_to_its_psnr():
    """tests/data/compact_v3_stage.inr: the astronaut crop of `astronaut_crop`, `compact` at
    step 0.1 with a stage of 300 steps (flags bit 7, second flags byte bit 0), written 2026-12-04 by
    `python -m tests.data.make_stage_file`: a change to the stage's layout, its quantization
    or its decoder that alters the decoded pixels by more than float rounding fails here."""
    expected = float((DATA / "compact_v3_stage.psnr").read_text())
    net, coded = decode((DATA / "compact_v3_stage.inr").read_bytes())
    assert net.stage is not None
    assert psnr(render(net, (coded.height, coded.width)), astronaut_crop()) == pytest.approx(
        expected, abs=0.01
    )


def test_the_first_training_starts_from_the_shipped_prior_for_its_width(monkeypatch):
    """model/stage_prior.py: a prior for each width the encoder trains, RGB only, its bytes
    checked against the hash it ships with; with STAGE_FROM_PRIOR (off by default)
    `compact` hands it to the stage's first training."""
    from mhinr.model import stage_prior

    wide = coefficients.STAGE_HIDDEN_WIDE
    assert set(stage_prior.PRIORS) == {wide}  # 8 channels gained nothing from one
    net = stage_prior.load(wide)
    assert net is not None and net.hidden == wide and net.channels == 3
    assert net is not stage_prior.load(wide)  # each caller its own
    fresh = synthesis.Stage(3, wide)
    assert not torch.allclose(net.inner.weight, fresh.inner.weight)  # the prior's features
    x = torch.rand(1, 3, 20, 20)
    with torch.no_grad():
        assert torch.equal(net(x), x)  # … and still the identity's start: never worse than x
    assert stage_prior.load(wide, channels=1) is None  # a grey image: none
    assert stage_prior.load(synthesis.HIDDEN) is None
    inits = []
    real = coefficients._train_stage

    def spy(*args, **kwargs):
        inits.append(kwargs.get("init"))
        return real(*args, **kwargs)

    monkeypatch.setattr(coefficients, "_train_stage", spy)
    img = astronaut_crop()[:, :96, :128]
    monkeypatch.setattr(coefficients, "STAGE_WIDE_BYTES", 1)  # this small file counts as large
    monkeypatch.setattr(coefficients, "STAGE_FROM_PRIOR", True)
    compress(img, "RGB", Options(preset="compact", bpp=0.5, steps=20))
    first = inits[0]
    assert first is not None
    assert torch.equal(first.inner.weight, stage_prior.load(wide).inner.weight)
    monkeypatch.setattr(coefficients, "STAGE_FROM_PRIOR", False)
    before = len(inits)
    compress(img, "RGB", Options(preset="compact", bpp=0.5, steps=20))
    assert inits[before] is None  # from the identity


def test_a_stage_prior_whose_bytes_changed_is_refused(monkeypatch):
    from mhinr.model import stage_prior

    wide = coefficients.STAGE_HIDDEN_WIDE
    name, _ = stage_prior.PRIORS[wide]
    monkeypatch.setitem(stage_prior.PRIORS, wide, (name, "0" * 64))
    stage_prior._tensors.cache_clear()
    try:
        with pytest.raises(stage_prior.StagePriorError, match="not the stage prior"):
            stage_prior.load(wide)
    finally:
        stage_prior._tensors.cache_clear()
