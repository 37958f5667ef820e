"""The OpenAPI document against the running server: schemathesis with all its checks (status
codes, content types, headers and bodies as documented, negative data refused, schema-valid
data accepted, Allow headers, deleted resources gone, …), a bounded number of examples per
operation, against `mhinr serve` holding one finished job whose id it is given."""

import shutil
import subprocess
import sys
from pathlib import Path

from tests.service_helpers import png_bytes
from tests.test_e2e import service, submit, wait

CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = 10  # per operation and phase: about 800 requests, ~30 s here


def test_the_server_answers_as_its_openapi_document_says(tmp_path):
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    assert st, "schemathesis is a dev dependency: make install"
    with service(tmp_path) as client:
        job = submit(client, png_bytes(48, 40))
        assert wait(client, job)["status"] == "succeeded"
        # the real job's id for every job parameter, so the checks reach past 404
        config = tmp_path / "schemathesis.toml"
        config.write_text(f'[parameters]\njob_id = "{job}"\njob = "{job}"\n\n' + CONFIG.read_text())
        run = subprocess.run(
            [
                st,
                "--config-file",
                str(config),
                "run",
                f"{client.base_url}/openapi.json",
                "--checks",
                "all",
                "--max-examples",
                str(EXAMPLES),
                "--workers",
                "1",
                "--seed",
                "1",
                "--request-timeout",
                "30",
            ],
            capture_output=True,
            text=True,
            timeout=400,
            cwd=tmp_path,  # its cache folder (.schemathesis) goes there, not into the checkout
        )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-6000:]
    assert " passed" in report and "0 passed" not in report.split("generated")[-1]
