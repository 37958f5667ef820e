"""A fit's options, declared once: `FitSpec` names each option, its type, its range and what
it does. Everything else is derived from it: the HTTP form of `POST /fit` (FastAPI reads a
pydantic model as a form) and so the OpenAPI document, the `mhinr fit` flags
(`add_flags`), the web page's hints (`GET /presets` serves `spec_schema()`), and the record
a worker reads back (`JobOptions`, which adds the checks of combinations)."""

import argparse
import re
import types
import typing
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from mhinr.model.presets import STAGE_SECONDS, TARGETS, Options

HEADS_PATTERN = r"^[0-9]{1,4}([xX][0-9]{1,4})?$"


def _heads(value: object) -> object:
    """ "64" (a square grid) or "48x64" (rows x columns), as a form or the command line give
    it, or the [rows, columns] a stored record holds."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        value = value[0]  # a form field FastAPI read as a sequence
    if value is None or value == "":
        return None
    if isinstance(value, str):
        if re.fullmatch(HEADS_PATTERN, value) is None:  # ASCII digits only: not "６４"
            raise ValueError(f"heads must look like 64 or 48x64, not {value!r}")
        rows, _, cols = value.lower().partition("x")
        value = (int(rows), int(cols or rows))
    return value


Heads = Annotated[
    tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]] | None,
    BeforeValidator(_heads),
    WithJsonSchema({"type": "string", "pattern": HEADS_PATTERN, "examples": ["64", "48x64"]}),
]


class FitSpec(BaseModel):
    """What a fit may be asked: each option once, with its range and its meaning."""

    model_config = ConfigDict(frozen=True)

    preset: Literal["compact", "fast", "max", "paper", "upscale"] = Field(
        "compact",
        description="compact: smallest file for the quality: the cosine codec (three cell "
        "sizes tried with a target), then a small ReLU stage trained on the decoded image "
        f"(up to {STAGE_SECONDS['compact']:.0f} s a target on a CPU, kept where it pays for its "
        "bytes); fast: the cosine codec alone, nothing trained, a few seconds; max: compact "
        "with more restoration filters tried and the stage trained up to "
        f"{STAGE_SECONDS['max'] / 60:.0f} minutes; paper: the paper's network; "
        "upscale: keeps the image exactly and enlarges it with mhinr's shipped upscaler "
        "network (trained once on other photos; nothing trained per image, a second or two). "
        "GET /presets describes each",
    )
    heads: Heads = Field(
        None,
        description='the grid of heads, "64" (64x64) or "48x64" (rows x columns), each 1-9999 '
        "and at most the image's size; a weights file (paper's default 64x64; elsewhere it "
        "makes the file a network's weights, not the cosine codec)",
    )
    alpha: int | None = Field(
        None, ge=1, description="hidden units each head owns (the paper's α), at most `width`"
    )
    width: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="a trained body's width (compact, fast, max: trains a ReLU body in place "
        "of the cosine one). Default: the preset's",
    )
    depth: int | None = Field(
        None,
        ge=1,
        le=16,
        description="a trained body's layers. Default: the preset's",
    )
    body: Literal["relu", "sine", "fourier"] | None = Field(
        None,
        description="the activation of a trained body (paper, or a width or depth given; "
        "default relu); the codec presets' own body is the fixed cosine one",
    )
    steps: int | None = Field(
        None,
        ge=0,
        description="training steps, at most INR_MAX_STEPS; default: the preset's (paper "
        "2000; compact and max: the trained stage's, as many as its time budget allows, 0 "
        "turns it off; fast trains nothing and refuses steps unless a width, depth or body "
        "is given: then 60; upscale trains nothing and refuses them)",
    )
    target_psnr: float | None = Field(
        None, gt=0, le=100, description="quality to reach, dB (one target at most)"
    )
    max_bytes: int | None = Field(
        None, ge=1, description="largest .inr file, bytes (one target at most)"
    )
    bpp: float | None = Field(
        None, gt=0, le=64, description="file size in bits per pixel (one target at most)"
    )
    time_budget_s: float | None = Field(
        None,
        gt=0,
        description="longest training, seconds, at most INR_MAX_TIME_BUDGET_S; default: "
        "INR_DEFAULT_TIME_BUDGET_S (compact: 45 a target for its trained stage, max: 240; "
        "fast and upscale train nothing and refuse it)",
    )
    quantization: Literal["fp32", "fp16", "int8"] | None = Field(
        None,
        description="how a weights file stores its weights (paper and explicit networks; "
        "default: the first of fp32, fp16, int8 that meets the target)",
    )
    model: Literal["multihead", "siren", "fourier", "relu"] = Field(
        "multihead", description="the network: the paper's multi-head one, or a baseline"
    )
    seed: int = Field(
        0, ge=0, le=2**31 - 1, description="random seed: the same input, the same file"
    )


class JobOptions(FitSpec):
    """A job's options as the worker reads them back from its record: the spec, with its
    combinations checked by the model's own `Options` (at most one target, alpha ≤ width,
    what a preset takes) and the service's limits by `check_limits`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="after")
    def _combination(self) -> "JobOptions":
        self.to_options()
        return self

    def to_options(self, device: str = "cpu", default_budget_s: float | None = None) -> Options:
        given = self.model_dump()
        # the service's default budget for the fits that have no budget of their own: the
        # codec presets' trained stage has its preset's (model/presets.STAGE_SECONDS)
        # and `fast` and `upscale` train nothing
        own = self.preset in ("compact", "fast", "max", "upscale")
        if given["time_budget_s"] is None and default_budget_s is not None and not own:
            given["time_budget_s"] = default_budget_s
        return Options(**given, device=device)

    def check_limits(self, max_steps: int, max_time_budget_s: float) -> None:
        if self.steps is not None and self.steps > max_steps:
            raise ValueError(f"steps: at most {max_steps}, got {self.steps}")
        if self.time_budget_s is not None and self.time_budget_s > max_time_budget_s:
            raise ValueError(
                f"time_budget_s: at most {max_time_budget_s:g}, got {self.time_budget_s:g}"
            )

    def stored(self) -> dict:
        """What the record keeps (the options given, JSON-friendly)."""
        return self.model_dump(mode="json", exclude_none=True)


def describe(exc: ValidationError) -> str:
    """A pydantic error as one line for a person: "width: Input should be …; …"."""
    parts = []
    for e in exc.errors():
        where = ".".join(str(x) for x in e.get("loc", ()))
        msg = e.get("msg", "invalid").removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts)


def job_options(given: dict[str, Any]) -> JobOptions:
    """The options as given (None: not given), checked; ValueError with one line if not."""
    try:
        return JobOptions(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        raise ValueError(describe(exc)) from None


def spec_schema() -> dict[str, dict]:
    """Each option's JSON schema (type, range, choices, description), for the web page."""
    return FitSpec.model_json_schema()["properties"]


# --- the command line -----------------------------------------------------------------------

FLAG_NAMES = {"time_budget_s": ("--time-budget", "--time-budget-s")}  # the older name first


def _flag_type(annotation: object) -> tuple[type, list[str] | None]:
    """(argparse type, choices) of a spec field: its Literal's values, or int/float/str."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        annotation = args[0] if len(args) == 1 else annotation
    if typing.get_origin(annotation) is Literal:
        return str, [str(a) for a in typing.get_args(annotation)]
    if annotation in (int, float):
        return annotation, None
    return str, None  # heads: "64" or "48x64", parsed by the spec


def add_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per spec field (`--target-psnr` for target_psnr), its help the field's
    description; a flag not given is left to the spec's default. The targets exclude each
    other."""
    targets = parser.add_mutually_exclusive_group()
    for name, field in FitSpec.model_fields.items():
        kind, choices = _flag_type(field.annotation)
        flags = FLAG_NAMES.get(name, ("--" + name.replace("_", "-"),))
        where = targets if name in TARGETS else parser
        default = "" if field.default is None else f" [default: {field.default}]"
        where.add_argument(
            *flags,
            dest=name,
            type=kind,
            choices=choices,
            default=None,
            help=f"{field.description}{default}",
        )


def from_flags(args: argparse.Namespace) -> JobOptions:
    return job_options({name: getattr(args, name) for name in FitSpec.model_fields})
