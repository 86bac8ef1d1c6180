"""`neuromodmap serve` as a user runs it: prints where it serves, answers, stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parents[2]


def _serve(*args: str) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(HERE / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("NEUROMODMAP_TOKEN", None)
    proc = subprocess.Popen([sys.executable, "-m", "neuromodmap", "serve", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    return proc, line


def _stop(proc: subprocess.Popen) -> tuple[str, str]:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    return out, err


def test_serve_prints_the_address_answers_and_stops_on_ctrl_c(trials_db: Path):
    proc, line = _serve("--db", str(trials_db), "--port", "0")
    try:
        m = re.fullmatch(r"Serving on (http://127\.0\.0\.1:(\d+)/)\n", line)
        assert m, line
        r = httpx.get(m.group(1) + "api/trials?modality=tms&limit=1", timeout=30)
        assert r.status_code == 200 and r.json()["total"] >= 1
        assert httpx.get(m.group(1), timeout=30, follow_redirects=True).url.path == "/trials"
    finally:
        out, err = _stop(proc)
    assert proc.returncode == 0, err
    assert "Stopped." in out and "Traceback" not in err


def test_a_public_host_gets_a_generated_token(trials_db: Path):
    proc, line = _serve("--db", str(trials_db), "--host", "0.0.0.0", "--port", "0")
    try:
        m = re.fullmatch(r"Serving on http://0\.0\.0\.0:(\d+)/\?token=([A-Za-z0-9_\-]{20,})\n", line)
        assert m, line
        base = f"http://127.0.0.1:{m.group(1)}"
        assert httpx.get(base + "/api/trials", timeout=30).status_code == 401
        r = httpx.get(base + "/api/trials?limit=1", headers={"Authorization": f"Bearer {m.group(2)}"}, timeout=30)
        assert r.status_code == 200
    finally:
        _stop(proc)
    assert proc.returncode == 0


def test_a_given_token_is_used_and_a_missing_store_is_one_clear_error(trials_db: Path, tmp_path: Path):
    proc, line = _serve("--db", str(trials_db), "--port", "0", "--token", "my-token-123")
    try:
        assert line.startswith("Serving on http://127.0.0.1:") and line.endswith("/?token=my-token-123\n")
    finally:
        _stop(proc)
    proc, line = _serve("--db", str(tmp_path / "nope.duckdb"))
    proc.wait(timeout=30)
    err = proc.stderr.read()
    assert proc.returncode == 2 and "nope.duckdb" in err and "does not exist" in err and "Traceback" not in err
