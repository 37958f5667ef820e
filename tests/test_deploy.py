"""What can be checked of the deployment without a Docker engine."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
# The Compose Specification's JSON schema, as shipped in docker-compose 1.29.2
# (compose/config/compose_spec.json), kept here so the test runs offline.
SCHEMA = json.loads((Path(__file__).parent / "data" / "compose_spec.json").read_text())


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def validate(doc: dict) -> None:
    jsonschema.Draft201909Validator(SCHEMA).validate(doc)


def test_compose_files_are_valid_against_the_compose_specification():
    validate(compose())
    validate(yaml.safe_load((ROOT / "docker-compose.gpu.yml").read_text()))


def test_the_schema_check_would_catch_a_mistake():
    doc = compose()
    doc["services"]["api"]["environmnet"] = {}
    try:
        validate(doc)
    except jsonschema.ValidationError as exc:
        assert "environmnet" in exc.message
    else:
        raise AssertionError("a misspelt key passed the schema")


def test_compose_runs_a_cpu_stack_with_no_profile_and_the_gpu_by_override():
    services = compose()["services"]
    assert set(services) == {"redis", "api", "worker", "flower"}
    assert all("profiles" not in s for s in services.values())  # `up` starts them all
    assert "healthcheck" in services["redis"] and "healthcheck" in services["api"]
    assert services["worker"]["environment"]["INR_DEVICE"] == "cpu"
    assert services["worker"]["image"] == services["api"]["image"] == "mhinr-cpu:latest"
    assert "redis-data" in compose()["volumes"]
    for name in ("api", "worker"):
        assert services[name]["environment"]["INR_REDIS_URL"] == "redis://redis:6379/0"
    gpu = yaml.safe_load((ROOT / "docker-compose.gpu.yml").read_text())["services"]
    assert set(gpu) == {"worker"}  # the override changes the worker alone
    devices = gpu["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    assert gpu["worker"]["build"]["dockerfile"] == "docker/Dockerfile.worker"
    assert gpu["worker"]["environment"]["INR_DEVICE"] == "auto"


def test_docker_compose_merges_the_gpu_override():
    """docker-compose's own reading of the two files (no daemon needed): the worker is the
    CUDA image with its GPU, and keeps the base's Redis and health check."""
    if shutil.which("docker-compose") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("docker-compose is required under CI (make docker-tools)")
        pytest.skip("no docker-compose")
    out = subprocess.run(
        ["docker-compose", "-f", "docker-compose.yml", "-f", "docker-compose.gpu.yml", "config"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    worker = yaml.safe_load(out)["services"]["worker"]
    assert worker["image"] == "mhinr-gpu:latest"
    assert worker["environment"]["INR_DEVICE"] == "auto"
    assert worker["environment"]["INR_REDIS_URL"] == "redis://redis:6379/0"
    assert "healthcheck" in worker and "deploy" in worker


def test_dockerfiles_exist_and_install_the_project():
    for name in ("Dockerfile.api", "Dockerfile.worker"):
        text = (ROOT / "docker" / name).read_text()
        assert "pip install -c constraints.txt '.[server]'" in text and "COPY mhinr mhinr" in text
    assert "download.pytorch.org/whl/cpu" in (ROOT / "docker" / "Dockerfile.api").read_text()
    assert "cuda" in (ROOT / "docker" / "Dockerfile.worker").read_text()


def test_base_images_and_torch_index_default_to_the_public_ones():
    """Users elsewhere change nothing: every substitutable base defaults to the public image."""
    text = (ROOT / "docker-compose.yml").read_text() + (ROOT / "docker-compose.gpu.yml").read_text()
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
