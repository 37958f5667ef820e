"""What can be checked of the deployment without a Docker engine."""

import json
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[1]
# The Compose Specification's JSON schema, as shipped in docker-compose 1.29.2
# (compose/config/compose_spec.json), kept here so the test runs offline.
SCHEMA = json.loads((Path(__file__).parent / "data" / "compose_spec.json").read_text())


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def validate(doc: dict) -> None:
    jsonschema.Draft201909Validator(SCHEMA).validate(doc)


def test_compose_file_is_valid_against_the_compose_specification():
    validate(compose())


def test_the_schema_check_would_catch_a_mistake():
    doc = compose()
    doc["services"]["api"]["environmnet"] = {}
    try:
        validate(doc)
    except jsonschema.ValidationError as exc:
        assert "environmnet" in exc.message
    else:
        raise AssertionError("a misspelt key passed the schema")


def test_compose_has_the_services_healthchecks_gpu_reservation_and_a_cpu_profile():
    services = compose()["services"]
    assert {"redis", "api", "worker", "worker-cpu", "flower"} <= set(services)
    assert "healthcheck" in services["redis"] and "healthcheck" in services["api"]
    devices = services["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    assert services["worker"]["profiles"] == ["gpu"] and services["worker-cpu"]["profiles"] == [
        "cpu"
    ]
    assert "redis-data" in compose()["volumes"]
    for name in ("api", "worker", "worker-cpu"):
        assert services[name]["environment"]["INR_REDIS_URL"] == "redis://redis:6379/0"


def test_dockerfiles_exist_and_install_the_project():
    for name in ("Dockerfile.api", "Dockerfile.worker"):
        text = (ROOT / "docker" / name).read_text()
        assert "pip install -c constraints.txt '.[server]'" in text and "COPY mhinr mhinr" in text
    assert "download.pytorch.org/whl/cpu" in (ROOT / "docker" / "Dockerfile.api").read_text()
    assert "cuda" in (ROOT / "docker" / "Dockerfile.worker").read_text()


def test_base_images_and_torch_index_default_to_the_public_ones():
    """Users elsewhere change nothing: every substitutable base defaults to the public image."""
    text = (ROOT / "docker-compose.yml").read_text()
    for default in (
        "${MHINR_PYTHON_IMAGE:-python:3.11-slim}",
        "${MHINR_REDIS_IMAGE:-redis:7-alpine}",
        "${MHINR_CUDA_IMAGE:-pytorch/pytorch:2.13.0-cuda12.8-cudnn9-runtime}",
        "${MHINR_TORCH_PIP_ARGS:---index-url https://download.pytorch.org/whl/cpu}",
    ):
        assert default in text
    api = (ROOT / "docker" / "Dockerfile.api").read_text()
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in api and "flower==" in api
    services = compose()["services"]
    for name in ("api", "flower"):  # published on the loopback unless asked otherwise
        assert all(
            p.startswith("${MHINR_PUBLISH_HOST:-127.0.0.1}") for p in services[name]["ports"]
        )
