"""Files the command line and the store write: atomic, and with the umask's mode."""

import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_take_the_umask_of_the_process(tmp_path, umask, mode):
    target = tmp_path / "out.bin"
    code = (
        f"import os; os.umask({umask}); from mhinr.model.files import write_atomic; "
        f"write_atomic({str(target)!r}, b'x' * 10)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    assert stat.S_IMODE(target.stat().st_mode) == mode
    assert target.read_bytes() == b"x" * 10
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]  # no temporary left behind
