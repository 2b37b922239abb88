"""`make lab` — the README's first command — starts JupyterLab on the course, on loopback only."""

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_make_lab_serves_the_course_on_loopback(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path)       # no server record left in ~/.local/share/jupyter
    log = open(tmp_path / "lab.log", "w+")
    proc = subprocess.Popen(["make", "-s", "lab", f"LAB_PORT={port}"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = None
        deadline = time.monotonic() + 120
        status = None
        while time.monotonic() < deadline and status is None:
            assert proc.poll() is None, f"make lab exited: {(tmp_path / 'lab.log').read_text()}"
            text = (tmp_path / "lab.log").read_text()
            m = re.search(r"Open the course at:\s+(http://127\.0\.0\.1:(\d+)/lab/tree/\S+\?token=(\w+))", text)
            if m:
                url, token = m.group(1), m.group(3)
                assert int(m.group(2)) == port
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}",
                                                timeout=2) as resp:
                        status = json.load(resp)
                except OSError:
                    pass
            time.sleep(0.3)
        assert status is not None, f"no answer from /api/status: {(tmp_path / 'lab.log').read_text()}"
        assert "started" in status
        # bound to loopback only: the port is not open on any other address of this host
        listening = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True).stdout
        local = {line.split()[3] for line in listening.splitlines()}
        assert local == {f"127.0.0.1:{port}"}, listening
        # the course's first notebook is served
        with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/api/contents/00_a_container_is_just_a_process.ipynb?token={token}&content=0",
                timeout=5) as resp:
            assert json.load(resp)["type"] == "notebook"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
