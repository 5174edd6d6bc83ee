"""`tito lab` starts JupyterLab 4 with the nbgrader extension enabled, and stops cleanly."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from course.project import ROOT


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def test_lab_serves_with_nbgrader_enabled_and_stops_cleanly(tmp_path):
    port, token = free_port(), "tinytorch-test-token"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    proc = subprocess.Popen([sys.executable, "-m", "tito.cli", "lab", "--no-browser", f"--port={port}",
                             "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 90
        while True:
            try:
                status = get(f"{base}/api/status?token={token}")
                break
            except OSError:
                assert proc.poll() is None, f"jupyter lab exited early:\n{proc.stdout.read().decode()}"
                assert time.time() < deadline, "jupyter lab did not answer within 90 s"
                time.sleep(0.5)
        assert "started" in status
        version = get(f"{base}/api/?token={token}")
        extensions = get(f"{base}/lab/api/extensions?token={token}")
        items = extensions if isinstance(extensions, list) else extensions.get("data", extensions)
        nbgrader = [e for e in items if "nbgrader" in e.get("name", "")]
        assert nbgrader, f"nbgrader lab extension not listed: {[e.get('name') for e in items]}"
        assert all(e.get("enabled") for e in nbgrader), f"nbgrader lab extension not enabled: {nbgrader}"
        assert version["version"], version
        lab_page = urllib.request.urlopen(f"{base}/lab?token={token}", timeout=10).read().decode()
        assert '"appVersion": "4.' in lab_page or "appVersion\":\"4." in lab_page.replace(" ", ""), \
            "expected JupyterLab 4"
    finally:
        proc.send_signal(signal.SIGTERM)  # tito execs the server, so the signal reaches jupyter itself
        try:
            proc.wait(timeout=30)
        finally:
            proc.stdout.close()
    time.sleep(0.5)
    try:
        os.killpg(proc.pid, 0)
        leftover = True
    except ProcessLookupError:
        leftover = False
    assert not leftover, "processes of the lab session outlived it"
