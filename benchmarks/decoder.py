"""The NumPy decoder (model/decoder.py) against the PyTorch one: `mhinr render` of a Kodak
`compact` file to 1024 px and `mhinr info` from a cold process (the command line as a user
runs it), the same work with PyTorch's decoder from a cold process, and where the NumPy
decoder's time goes (in one warm process: reading the record, which is mostly the range
decoder; the cells; the deblocking, the filter and the stage; the resize; the PNG).

    python -m benchmarks.decoder [--image kodim23] [--runs 10] [--file some.inr]

Without --file it first fits the image with `compact` (about a minute). Timed alone on the
machine's cores (it says how many).
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import KODAK, machine, md_table, write_result

TORCH_RENDER = """
import sys
from mhinr.model.codec import decode
from mhinr.model.pixels import encode
from mhinr.model.render import output_size, render
net, coded = decode(open(sys.argv[1], "rb").read())
size = (coded.height, coded.width)
out = render(net, size, output_size(size, 1024)).numpy()
open(sys.argv[2], "wb").write(encode(out, "png", 95, coded.mode))
"""


def cold(cmd: list[str], runs: int) -> list[float]:
    """Wall seconds of `cmd` in a new process, `runs` times (one warm-up run first, so that
    the files are in the page cache as for a user's second command)."""
    subprocess.run(cmd, check=True, capture_output=True)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return times


def breakdown(data: bytes) -> list[tuple[str, float]]:
    """(step, ms) of one NumPy decode and 1024-px render, in a warm process."""
    from mhinr.model import decoder, pixels
    from mhinr.model.codec import container, format3

    marks = [("", time.perf_counter())]

    def mark(name: str) -> None:
        marks.append((name, time.perf_counter()))

    raw = container.open_payload(data)[1]
    mark("inflate (LZMA2)")
    rec = format3.read(raw)
    mark("the record (range decoder)")
    d = decoder.Decoded(rec, len(data))
    h, w = d.size
    image = d.grid_u8(*rec.cell)[:, :h, :w]
    mark("the cells (cosines × coefficients)")
    if rec.deblock is not None:
        image = decoder.deblock_u8(image, rec.cell, *rec.deblock)
    mark("deblocking")
    if rec.post_filter is not None:
        image = decoder.apply_filter_u8(image, rec.post_filter)
    mark("restoration filter")
    if rec.stage is not None:
        image = decoder.apply_stage_u8(image, decoder.Stage(rec.channels, rec.stage))
    mark("trained stage")
    out = pixels.output_size((h, w), 1024)
    big = pixels.resize_u8(image, *out, (0, 0, w, h))
    mark("Lanczos to 1024 px")
    pixels.encode(big, "png", 95)
    mark("PNG")
    return [(name, 1000 * (t - marks[i][1])) for i, (name, t) in enumerate(marks[1:])]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", default="kodim23")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--file", type=Path, help="a .inr file (default: fit the image with compact)")
    ap.add_argument("--out", default="decoder", help="results/OUT.md")
    a = ap.parse_args()
    mhinr = str(Path(sys.executable).with_name("mhinr"))
    with tempfile.TemporaryDirectory() as tmp:
        model = a.file or Path(tmp) / f"{a.image}.inr"
        if a.file is None:
            subprocess.run(
                [mhinr, "fit", str(KODAK / f"{a.image}.png"), "-o", str(model)], check=True
            )
        out = str(Path(tmp) / "out.png")
        rows = []
        for label, cmd in (
            ("mhinr render --size 1024 (NumPy)", [mhinr, "render", str(model), "--size", "1024",
                                                   "-o", out]),
            ("mhinr info (NumPy)", [mhinr, "info", str(model)]),
            ("decode + render 1024 with PyTorch", [sys.executable, "-c", TORCH_RENDER,
                                                    str(model), out]),
        ):  # fmt: skip
            times = cold(cmd, a.runs)
            rows.append([label, f"{statistics.median(times):.3f}", f"{min(times):.3f}",
                         f"{max(times):.3f}"])  # fmt: skip
            print(*rows[-1], sep="  ")
        data = model.read_bytes()
        breakdown(data)  # warm: the tables and the thread pool made once
        steps = breakdown(data)
    for name, ms in steps:
        print(f"{name:>36}: {ms:6.1f} ms")
    table = md_table(["command (a new process each run)", "median s", "min s", "max s"], rows)
    parts = md_table(["step", "ms"], [[n, f"{ms:.1f}"] for n, ms in steps])
    write_result(
        f"{a.out}.md",
        f"""# The NumPy decoder against PyTorch's

`python -m benchmarks.decoder {" ".join(sys.argv[1:])}` on {machine()}; a
{len(data):,}-byte `compact` file of {a.image}, rendered to 1024 px (PNG). Each command in
a new process, {a.runs} runs after one warm-up (the page cache warm, as for a user's second
command).

{table}

Where the NumPy decoder's time goes (one warm process):

{parts}
""",
    )


if __name__ == "__main__":
    main()
