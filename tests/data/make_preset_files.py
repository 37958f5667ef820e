"""Writes tests/data/fast_cosine.inr and tests/data/max_cosine.inr (tests/test_decoder.py): the
astronaut crop of tests.test_stage coded by the `fast` preset and by `max` with its stage
trained 400 steps (so that it is quick to make), each at 1 bpp. With compact_v3_stage.inr they
are the files the NumPy and PyTorch decoders are compared on. Run once, from the repository
root: `python -m tests.data.make_preset_files`."""

from pathlib import Path

from mhinr.model.compress import compress
from mhinr.model.presets import Options
from tests.test_stage import astronaut_crop

if __name__ == "__main__":
    here = Path(__file__).parent
    img = astronaut_crop()
    for name, options in (
        ("fast_cosine.inr", Options(preset="fast", bpp=1.0)),
        ("max_cosine.inr", Options(preset="max", bpp=1.0, steps=400)),
    ):
        result = compress(img, "RGB", options)
        (here / name).write_bytes(result.data)
        print(name, len(result.data), "bytes", result.summary()["psnr"], "dB")
