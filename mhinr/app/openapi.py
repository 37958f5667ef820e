"""The OpenAPI document as the server really behaves: FastAPI's defaults corrected where
they describe something else."""

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from mhinr.app.schemas import ERROR_EXAMPLES, ERROR_TEXT
from mhinr.app.settings import ApiSettings

ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}


def install(app: FastAPI, settings: ApiSettings) -> None:
    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            tidy(schema, settings)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override


def tidy(schema: dict, settings: ApiSettings) -> None:
    """In place: (1) every 422 is ErrorOut (one line), not FastAPI's list of validation
    errors, which this service never sends (app/errors.py); (2) a multipart form's optional
    fields are left out when not wanted: they are not "null" (a string in a form); (3) the
    limits this server was started with (INR_MAX_STEPS, INR_MAX_TIME_BUDGET_S) are the
    fields' maxima, and the bearer key is required only where it has one (INR_API_KEY)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for ops in schema["paths"].values():
        for op in ops.values():
            if not settings.api_key:  # this server asks for no key: nothing is required
                op.pop("security", None)
            for status, answer in op.get("responses", {}).items():
                if status[0] in "45":  # every error answer is ErrorOut, whatever the route
                    content = answer.setdefault("content", {})
                    content.pop("text/event-stream", None)
                    body = content.setdefault("application/json", {})
                    body["schema"] = ERROR_REF
                    if "example" not in body and int(status) in ERROR_EXAMPLES:
                        body["example"] = {"detail": ERROR_EXAMPLES[int(status)]}
                    if status == "422":  # FastAPI's own "Validation Error" otherwise
                        answer["description"] = ERROR_TEXT[422]
            form = op.get("requestBody", {}).get("content", {}).get("multipart/form-data")
            if form is not None:
                ref = form["schema"].get("$ref", "")
                body = components.get(ref.rsplit("/", 1)[-1], form["schema"])
                _inline_models(body, components)
                _no_nulls(body)
                props = body.get("properties", {})
                if "file" in props:
                    props["file"]["minLength"] = 1  # an empty upload is 400
                targets = [t for t in ("target_psnr", "max_bytes", "bpp") if t in props]
                if len(targets) > 1:  # at most one target (JobOptions)
                    body["not"] = {
                        "anyOf": [
                            {"required": [a, b]}
                            for i, a in enumerate(targets)
                            for b in targets[i + 1 :]
                        ]
                    }
                if "steps" in props:
                    props["steps"]["maximum"] = settings.max_steps
                if "time_budget_s" in props:
                    props["time_budget_s"]["maximum"] = settings.max_time_budget_s
            for param in op.get("parameters", []):  # INR_MAX_RENDER_SIDE
                if param["name"] in ("size", "width", "height") and param["in"] == "query":
                    for branch in param["schema"].get("anyOf", [param["schema"]]):
                        if branch.get("type") == "integer":
                            branch["maximum"] = settings.max_render_side
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)


def _inline_models(body: dict, components: dict) -> None:
    """A form read into a pydantic model (POST /fit's FitForm) is `allOf: [$ref]` beside
    the file: its fields are written into the form's own properties, one flat form, and the
    model's schema is dropped (nothing else refers to it)."""
    for part in body.pop("allOf", []):
        name = part.get("$ref", "").rsplit("/", 1)[-1]
        model = components.pop(name, part)
        body["properties"] = {**body.get("properties", {}), **model.get("properties", {})}
        body["required"] = sorted({*body.get("required", []), *model.get("required", [])})


def _no_nulls(body: dict) -> None:
    for prop in body.get("properties", {}).values():
        branches = prop.get("anyOf")
        if branches and {"type": "null"} in branches:
            rest = [b for b in branches if b != {"type": "null"}]
            prop.pop("anyOf")
            if len(rest) == 1:
                prop.update(rest[0])
            else:
                prop["anyOf"] = rest
            if prop.get("default", 0) is None:
                prop.pop("default")
