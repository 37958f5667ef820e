"""Writes tests/data/compact_v3_stage.inr and its PSNR (tests/test_stage.py): the astronaut crop
coded at step 0.1 on 16-pixel cells with a stage trained 300 steps. Run once, from the
repository root: `python -m tests.data.make_stage_file`."""

from pathlib import Path

from mhinr.model.codec import decode
from mhinr.model.metrics import psnr
from mhinr.model.render import render
from tests.test_stage import _coder_with_stage, astronaut_crop

if __name__ == "__main__":
    here = Path(__file__).parent
    img = astronaut_crop()
    _, trained, _ = _coder_with_stage(img)
    data = trained.encode(0.1)
    net, coded = decode(data)
    value = psnr(render(net, (coded.height, coded.width)), img)
    (here / "compact_v3_stage.inr").write_bytes(data)
    (here / "compact_v3_stage.psnr").write_text(f"{value:.4f}\n")
    print(len(data), "bytes", f"{value:.4f} dB")
