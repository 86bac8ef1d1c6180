"""In CI (the CI environment variable set), a missing test extra fails the run instead of
skipping its tests silently; on a developer's machine it still skips (tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

V73 = Path(__file__).parent / "connectome" / "test_connectome_leaddbs_v73.py"


def _pytest_without_hdf5storage(tmp_path: Path, ci: bool) -> subprocess.CompletedProcess:
    hide = tmp_path / "hide"
    hide.mkdir(exist_ok=True)
    # the module is "not installed": importing it raises ModuleNotFoundError, as a missing extra does
    (hide / "hdf5storage.py").write_text('raise ModuleNotFoundError("hidden by the test", name="hdf5storage")\n')
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = os.pathsep.join([str(hide), *filter(None, [env.get("PYTHONPATH")])])
    if ci:
        env["CI"] = "true"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(V73)],
                          capture_output=True, text=True, env=env, cwd=Path(__file__).parents[1], timeout=300)


def test_missing_extra_fails_in_ci_and_skips_elsewhere(tmp_path):
    local = _pytest_without_hdf5storage(tmp_path, ci=False)
    assert local.returncode == 5 and "1 skipped" in local.stdout, local.stdout[-800:]  # 5: no test ran
    ci = _pytest_without_hdf5storage(tmp_path, ci=True)
    assert ci.returncode not in (0, 5), ci.stdout[-800:]
    assert "CI: the test extra 'hdf5storage' is missing" in ci.stdout, ci.stdout[-800:]
