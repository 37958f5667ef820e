"""Writes the committed files of the presets as they code today (tests/test_decoder.py,
tests/test_options.py, tests/test_codec.py, tests/test_stage.py): the astronaut crop of
tests.test_stage coded by `fast` at 1 bpp (fast_context.inr), and at step 0.3 with a stage
trained 300 steps on that decode, its biases in sixteenths of their row's unit
(compact_context.inr; on this small crop `compact` itself keeps no stage: its ~350 bytes
are 10–20 % of the file); each with its PSNR (.psnr). Both predict the cosines from the
constant terms (format3.dc_interpolation) and the chroma from channel 0
(format3.ChromaPredictor), have the deblocking filter (model/codec/deblock.py) and code
their coefficients under the context model with the cosines' parents in frequency
(entropy.frequency_model, format 3's second flags byte, bit 5). Today's encoder writes
fast_context.inr byte for byte as on 2026-12-06. The older files stay as they were written
— they are the old files a decoder must still read: fast_chroma.inr, fast_deblock.inr and
compact_bias.inr (2026-12-05, late: the same tools under entropy.LEGACY), compact_chroma.inr
and compact_deblock.inr (2026-12-05, their stage's biases in the weights' unit),
fast_interp.inr and compact_interp.inr (the morning of 2026-12-05, without the chroma
prediction), fast_cosine.inr and max_cosine.inr (2026-12-04, without either),
compact_v3_stage.inr. Run once, from the repository root:
`python -m tests.data.make_preset_files`."""

from pathlib import Path

from mhinr.model.codec import decode
from mhinr.model.compress import compress
from mhinr.model.metrics import psnr
from mhinr.model.presets import Options
from mhinr.model.render import render
from tests.test_stage import _coder_with_stage, astronaut_crop

if __name__ == "__main__":
    here = Path(__file__).parent
    img = astronaut_crop()
    files = {
        "fast_context.inr": compress(img, "RGB", Options(preset="fast", bpp=1.0)).data,
        "compact_context.inr": _coder_with_stage(img, step=0.3)[1].encode(0.3),
    }
    for name, data in files.items():
        (here / name).write_bytes(data)
        net, coded = decode(data)
        value = psnr(render(net, (coded.height, coded.width)), img)
        (here / name.replace(".inr", ".psnr")).write_text(f"{value:.4f}\n")
        print(name, len(data), "bytes", f"{value:.4f} dB")
