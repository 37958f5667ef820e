"""Any .inr file back into its network: the container's version says which format."""

from mhinr.model.codec.compact import decode_compact
from mhinr.model.codec.container import COMPACT_VERSION, CodecError, Coded, open_payload, parse_json
from mhinr.model.codec.format1 import check_sizes, config_from, load_params
from mhinr.model.codec.transforms import load_coefficients
from mhinr.model.codec.upscaler import decode_upscale
from mhinr.model.network import INRConfig, MultiHeadINR
from mhinr.model.upscale import UpscaleConfig, UpscaleINR


def decode(data: bytes) -> tuple[MultiHeadINR | UpscaleINR, Coded]:
    version, raw = open_payload(data)
    if version == COMPACT_VERSION:
        return decode_compact(raw)
    header, tensors = parse_json(raw)
    try:
        image = dict(header["image"])
        image.pop("extra", None)  # files written before 2026-11-30 carry an empty one
        coded = Coded(**image)
    except (KeyError, TypeError, ValueError) as exc:
        raise CodecError(f"the header is invalid: {exc}") from None
    if coded.storage == "upscale":
        cfg = config_from(UpscaleConfig, header)
        return decode_upscale(cfg, tensors, coded, header.get("prior")), coded
    cfg = config_from(INRConfig, header, ("heads", "cell"))
    check_sizes(cfg, coded)
    net = MultiHeadINR(cfg)
    if coded.storage == "weights":
        load_params(net, [n for n, _ in net.named_parameters()], tensors)
    elif coded.storage == "coefficients":
        load_coefficients(net, coded, tensors)
    else:
        raise CodecError(f"unknown storage {coded.storage!r}")
    return net.eval(), coded
