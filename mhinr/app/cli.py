"""The `mhinr` command line: fit, render and inspect .inr files offline."""

import argparse
import json
import sys
from pathlib import Path

from mhinr.model.files import write_atomic

OUTPUT_FORMATS = {".png": "PNG", ".webp": "WEBP", ".jpg": "JPEG", ".jpeg": "JPEG", ".avif": "AVIF"}


def parser(fit_flags: bool = True) -> argparse.ArgumentParser:
    """The command line. `fit_flags` False leaves out `fit`'s options (they import the
    model, and PyTorch with it: 1.5 s that `render` and `info` need not wait)."""
    p = argparse.ArgumentParser(prog="mhinr", description="Images as multi-head ReLU INRs.")
    sub = p.add_subparsers(dest="command", required=True)

    f = sub.add_parser("fit", help="fit a network to an image and write the .inr file")
    f.add_argument("image", type=Path)
    f.add_argument("-o", "--output", type=Path, help="the .inr file to write")
    if fit_flags:  # every option of worker/options.FitSpec (pydantic: `pip install 'mhinr[fit]'`)
        try:
            from mhinr.worker.options import add_flags
        except ImportError:  # the decoder alone: `mhinr fit` says what to install (cmd_fit)
            fit_flags = False
    if fit_flags:
        add_flags(f)
    else:
        f.add_argument("rest", nargs=argparse.REMAINDER)
    f.add_argument(
        "--explain", action="store_true", help="print what the fit would do, and do nothing"
    )
    f.add_argument("--json", action="store_true", help="print the final metrics as one JSON object")

    r = sub.add_parser("render", help="render a .inr file to an image at any size")
    r.add_argument("model", type=Path)
    size = r.add_mutually_exclusive_group()
    size.add_argument("--size", type=int, help="the longer side in pixels (aspect kept)")
    size.add_argument("--width", type=int)
    r.add_argument("--height", type=int)
    r.add_argument("-o", "--output", type=Path, required=True, help=".png, .webp, .jpg or .avif")
    r.add_argument("--method", default="resample", choices=["resample", "plain"])

    i = sub.add_parser("info", help="describe a .inr file")
    i.add_argument("model", type=Path)
    i.add_argument("--json", action="store_true")

    s = sub.add_parser("serve", help="run the HTTP API (and, without Redis, one worker)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)

    g = sub.add_parser("sign", help="sign a render URL for a server with INR_URL_SIGNING_KEY")
    g.add_argument("url", help='the path and query, e.g. "/render?job=ID&size=512"')
    g.add_argument("--expires-in", type=float, help="seconds the URL stays valid")

    w = sub.add_parser("worker", help="run a worker (several may share a Redis queue)")
    w.add_argument("--concurrency", type=int, default=None, help="fits at once (threads)")
    return p


def _torch_threads(fits: int = 1) -> None:
    from mhinr.worker.settings import apply_torch_threads, get_settings

    apply_torch_threads(get_settings(), fits)


def cmd_fit(args: argparse.Namespace) -> int:
    from mhinr.model.compress import compress
    from mhinr.model.images import load_image
    from mhinr.model.plan import plan
    from mhinr.worker.options import from_flags

    options = from_flags(args).to_options()
    if args.output is None and not args.explain:
        raise ValueError("fit needs -o OUT.inr (or --explain)")
    image = load_image(args.image)
    the_plan = plan(options, image.size, image.channels)
    if args.explain:
        h, w = image.size
        print(f"{args.image} ({w}x{h}, {image.mode}) with the {options.preset} preset:")
        print(the_plan.explain())
        return 0
    _torch_threads()
    bar = None
    if sys.stderr.isatty() and not args.json:
        from tqdm import tqdm

        bar = tqdm(desc="fitting", unit="step", leave=False)

    def progress(p) -> None:
        if bar is not None:
            bar.set_description(p.phase, refresh=False)  # coding, stage, upscaler, training
            bar.total = p.total
            bar.n = p.step
            bar.set_postfix(psnr=f"{p.psnr:.2f}")
            bar.refresh()

    try:
        result = compress(image.pixels, image.mode, options, progress)
    finally:
        if bar is not None:
            bar.close()
    write_atomic(args.output, result.data)
    summary = result.summary()
    if args.json:
        print(json.dumps(summary))
    else:
        print_summary(args.output, summary)
    return 0


def print_summary(output: Path, summary: dict) -> None:
    """`mhinr fit`'s report of the file it wrote, for a person."""
    quality = (
        "exact at the native size"
        if summary["psnr"] is None
        else f"PSNR {summary['psnr']:.2f} dB, SSIM {summary['ssim']:.4f}"
    )
    print(
        f"{output}: {summary['bytes']:,} bytes, {summary['bpp']:.3f} bpp, {quality}, "
        f"{summary['params']:,} parameters, {summary['seconds']:.1f} s"
    )
    if summary["target_outcome"]:
        print(f"target {summary['target_outcome']}")
    check = summary.get("upscale") or {}
    if check.get("held_out_psnr") is not None and check.get("held_out_lanczos_psnr"):
        print(
            f"upscaler: {check.get('prior') or 'trained on the image'}; held out (the "
            f"image's half-size copy ×2 against the image): {check['held_out_psnr']:.2f}"
            f" dB, Lanczos {check['held_out_lanczos_psnr']:.2f} dB"
            + (
                ""
                if min(check.get("blend") or [1]) >= 1
                else "; renders keep "
                + ", ".join(f"{a:.0%} at ×{i + 2}" for i, a in enumerate(check["blend"]))
                + " of the network's enlargement, the rest Lanczos's"
            )
        )
    stage = summary.get("stage")
    if stage:
        print(
            "trained stage"
            + (f" ({stage['hidden']} channels)" if stage.get("hidden") else "")
            + f": {stage['steps']:,} steps in {stage['seconds']:.0f} s"
            + (f" ({stage['steps_per_s']:.0f} a second), " if stage.get("steps_per_s") else ", ")
            + f"{stage['bytes']} bytes, "
            + ("kept" if stage["kept"] else "not kept (it did not pay for its bytes)")
            + (
                f", the coefficients quantized again for it ({stage['requantized']})"
                if stage.get("requantized") and stage["kept"]
                else ""
            )
            + f" — without it {stage['without']['bytes']:,} bytes at "
            f"{stage['without']['psnr']:.2f} dB"
        )


def _decoded(data: bytes):
    """The file decoded by the NumPy decoder where it can (model/decoder.py: the presets'
    cosine codec files, no PyTorch imported), else by PyTorch's (model/codec/inr.py); what it
    lacks to decode the file is an error that says what to install."""
    from mhinr.model import decoder

    try:
        return decoder.read(data)
    except decoder.NeedsPyTorch as exc:
        try:
            from mhinr.model.codec import decode
        except ImportError:
            raise ValueError(str(exc)) from None
        return decode(data)


def cmd_render(args: argparse.Namespace) -> int:
    from mhinr.model import pixels

    fmt = OUTPUT_FORMATS.get(args.output.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"output must end in {', '.join(OUTPUT_FORMATS)}, not {args.output.name!r}"
        )
    decoded = _decoded(args.model.read_bytes())
    if isinstance(decoded, tuple):  # decoded by PyTorch
        from mhinr.model.render import render

        net, coded = decoded
        _torch_threads()
    else:
        coded = decoded.coded
    size = (coded.height, coded.width)
    out_h, out_w = pixels.output_size(size, args.size, args.width, args.height)
    if out_h * out_w > 32_000_000 or max(out_h, out_w) > 8192:
        raise ValueError(f"{out_w}x{out_h} is over the render limit (8192 a side, 32 megapixels)")
    if isinstance(decoded, tuple):
        image = render(net, size, (out_h, out_w), method=args.method).numpy()
    else:
        image = decoded.render((out_h, out_w), method=args.method)
    write_atomic(args.output, pixels.encode(image, fmt, 95, coded.mode))
    print(f"{args.output}: {out_w}x{out_h} {fmt}")
    return 0


def describe(data: bytes) -> dict:
    """What `mhinr info` says of a file (the NumPy decoder's description where it decodes
    the file, the same fields from the decoded network otherwise)."""
    decoded = _decoded(data)
    if not isinstance(decoded, tuple):
        return decoded.describe()
    return describe_network(data, *decoded)


def describe_network(data: bytes, net, coded) -> dict:
    """`describe` of a network decoded by PyTorch."""
    from mhinr.model.codec import deblock as deblocking

    cfg = net.cfg
    info = {
        "bytes": len(data),
        "bpp": round(8 * len(data) / (coded.height * coded.width), 4),
        "width": coded.width,
        "height": coded.height,
        "mode": coded.mode,
        "storage": coded.storage,
        # a weights file's precision, or a trained body's; the cosine body has no weights
        "quantization": None if getattr(cfg, "body", None) == "cosine" else coded.quantization,
    }
    if coded.storage == "upscale":
        info |= {
            "encoder": f"{cfg.layers} layers x {cfg.features} channels",
            "head_size": cfg.hidden,
            # the shipped network the file names (None: the file holds its own weights)
            "prior": net.prior,
            # the network's share of a render at ×2, ×3, ×4 (the rest Lanczos's)
            "blend": net.blend,
        }
    else:
        info |= {
            # format 3 stores the step as float32: shown to the digits it has
            "step": None if coded.step is None else float(f"{coded.step:.7g}"),
            "heads": list(cfg.heads),
            "cell": list(cfg.cell),
            "alpha": cfg.alpha,
            "body": cfg.body,
            "depth": cfg.depth,
            "width_units": cfg.width,
            "deblocking": deblocking.describe(getattr(net, "deblock", None)),
            "stage": "none"
            if getattr(net, "stage", None) is None
            else f"ReLU, {net.stage.hidden} channels, {net.stage.multiplications()} "
            "multiplications a pixel",
        }
    return info | {"params": net.parameter_count(), "seed": cfg.seed}


def cmd_info(args: argparse.Namespace) -> int:
    info = describe(args.model.read_bytes())
    if args.json:
        print(json.dumps(info))
    else:
        for k, v in info.items():
            print(f"{k:>13}: {v}")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    import logging

    from mhinr.worker.celery_app import create_celery
    from mhinr.worker.settings import get_settings

    settings = get_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    n = args.concurrency or settings.worker_concurrency
    _torch_threads(n)  # the cores shared by the fits it runs at once
    app = create_celery(settings)
    argv = [
        "worker",
        "--loglevel=INFO",
        f"--concurrency={n}",
        "--pool=solo" if n == 1 else "--pool=threads",
    ]
    if settings.embedded:  # the filesystem transport has no broadcast
        argv += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    else:  # this process's heartbeat in Redis: the API is ready while some worker beats
        import os
        import socket
        import threading

        from mhinr.worker.lifecycle import run_worker_beat
        from mhinr.worker.store import make_store

        name = f"{socket.gethostname()}-{os.getpid()}"
        stop = threading.Event()
        threading.Thread(
            target=run_worker_beat, args=(make_store(settings), name, stop), daemon=True
        ).start()
    app.worker_main(argv)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from mhinr.app.main import create_app
    from mhinr.app.settings import get_api_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    _torch_threads()  # the API's renders
    # the reaper and, without Redis, the worker run in the app's lifespan (app/background.py)
    app = create_app(get_api_settings(), background=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    from mhinr.app.settings import get_api_settings
    from mhinr.app.signing import sign_url

    key = get_api_settings().url_signing_key
    if not key:
        raise ValueError("INR_URL_SIGNING_KEY is not set: there is nothing to sign with")
    print(sign_url(key, args.url, args.expires_in))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    light = bool(argv) and argv[0] in ("render", "info", "sign")  # no fit options to parse
    args = parser(fit_flags=not light).parse_args(argv)
    from mhinr.model.codec.container import CodecError

    commands = {
        "fit": cmd_fit,
        "render": cmd_render,
        "info": cmd_info,
        "serve": cmd_serve,
        "sign": cmd_sign,
        "worker": cmd_worker,
    }
    try:
        return commands[args.command](args)
    except ImportError as exc:
        # `pip install mhinr` decodes and renders the cosine codec's files; the rest needs more
        extra = "server" if args.command in ("serve", "worker", "sign") else "fit"
        print(f"mhinr: error: {args.command} needs pip install 'mhinr[{extra}]' ({exc})",
              file=sys.stderr)  # fmt: skip
        return 2
    except (CodecError, ValueError, OSError) as exc:  # ImageError is a ValueError
        print(f"mhinr: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mhinr: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
