"""Writes the committed files of the presets as they code today (tests/test_decoder.py,
tests/test_options.py, tests/test_codec.py, tests/test_stage.py): the astronaut crop of
tests.test_stage coded by `fast` at 1 bpp (fast_chroma.inr) and at step 0.1 with a stage
trained 300 steps (compact_chroma.inr; on this small crop `compact` itself keeps no stage:
its ~340 bytes are 10–20 % of the file) — at those rates the encoder chooses no deblocking,
so today's encoder writes them byte for byte as on the morning of 2026-12-05 — and, with
the deblocking filter (model/codec/deblock.py, 2026-12-05), `fast` at 0.5 bpp
(fast_deblock.inr) and step 0.3 with a stage trained 300 steps on that decode
(compact_deblock.inr); each with its PSNR (.psnr). All four predict the cosines from the
constant terms (format3.dc_interpolation) and the chroma from channel 0
(format3.ChromaPredictor). The older files (fast_interp.inr and compact_interp.inr of the
morning of 2026-12-05, without the chroma prediction; fast_cosine.inr and max_cosine.inr
from 2026-12-04, without either; compact_v3_stage.inr) stay as they were written: they are
the old files a decoder must still read. Run once, from the repository root: `python -m
tests.data.make_preset_files`."""

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
        "fast_chroma.inr": compress(img, "RGB", Options(preset="fast", bpp=1.0)).data,
        "compact_chroma.inr": _coder_with_stage(img)[1].encode(0.1),
        "fast_deblock.inr": compress(img, "RGB", Options(preset="fast", bpp=0.5)).data,
        "compact_deblock.inr": _coder_with_stage(img, step=0.3)[1].encode(0.3),
    }
    for name, data in files.items():
        (here / name).write_bytes(data)
        net, coded = decode(data)
        value = psnr(render(net, (coded.height, coded.width)), img)
        (here / name.replace(".inr", ".psnr")).write_text(f"{value:.4f}\n")
        print(name, len(data), "bytes", f"{value:.4f} dB")
