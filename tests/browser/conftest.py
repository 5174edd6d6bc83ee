"""JupyterLab in a real browser: headless Chromium (Debian's package) driven by Playwright,
against servers the tests start on 127.0.0.1 with a token and their own Jupyter directories.

Each test records a screenshot per step; when it fails they are kept in
`.test-artifacts/browser/<test>/` (git-ignored), named in order, so the failure can be seen.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from course.project import ROOT

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / ".test-artifacts" / "browser"
TIMEOUT_MS = 60_000  # page loads and kernel starts on a loaded 2-core machine


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    setattr(item, f"rep_{outcome.get_result().when}", outcome.get_result())


@pytest.fixture(scope="session")
def browser():
    why = f"the browser tests need Chromium at {CHROMIUM} and playwright (`make setup` installs both as root)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not Path(CHROMIUM).exists():
        pytest.fail(why) if os.environ.get("CI") else pytest.skip(why)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


class Steps:
    """A page plus numbered screenshots of each step."""

    def __init__(self, page, folder: Path):
        self.page, self.folder, self.count = page, folder, 0
        folder.mkdir(parents=True, exist_ok=True)

    def shot(self, name: str) -> None:
        self.count += 1
        self.page.screenshot(path=str(self.folder / f"{self.count:02d}-{name}.png"), full_page=False)


@pytest.fixture
def steps(browser, request, tmp_path):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    s = Steps(page, tmp_path / "screenshots")
    yield s
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    if failed:
        try:
            s.shot("at-failure")
        except Exception:  # the page may be gone; the earlier steps are still kept
            pass
        dest = ARTIFACTS / request.node.name
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(s.folder, dest)
        print(f"screenshots of the failed test: {dest}")
    context.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Lab:
    """A JupyterLab server started by `tito lab` (or `jupyter lab`) in `root_dir`."""

    def __init__(self, root_dir: Path, jupyter_home: Path, tinytorch_root: Path, command: list[str]):
        self.port, self.token = free_port(), "tinytorch-browser-test"
        for name in ("config", "data", "runtime"):
            (jupyter_home / name).mkdir(parents=True, exist_ok=True)
        settings = jupyter_home / "settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True, exist_ok=True)
        (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
        notebook = jupyter_home / "settings" / "@jupyterlab" / "notebook-extension"
        notebook.mkdir(parents=True, exist_ok=True)  # every cell in the DOM, so tests can read any output
        (notebook / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
        env = {**os.environ, "JUPYTER_CONFIG_DIR": str(jupyter_home / "config"),
               "JUPYTER_DATA_DIR": str(jupyter_home / "data"), "JUPYTER_RUNTIME_DIR": str(jupyter_home / "runtime"),
               "JUPYTERLAB_SETTINGS_DIR": str(jupyter_home / "settings"),
               "JUPYTERLAB_WORKSPACES_DIR": str(jupyter_home / "workspaces"),
               "TINYTORCH_ROOT": str(tinytorch_root), "PYTHONPATH": str(tinytorch_root)}
        args = [*command, "--no-browser", f"--port={self.port}", "--ServerApp.ip=127.0.0.1",
                f"--IdentityProvider.token={self.token}"]
        if os.geteuid() == 0:
            args.append("--allow-root")
        self.log = open(jupyter_home / "server.log", "w")
        self.proc = subprocess.Popen(args, cwd=root_dir, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(f"{self.base}/api/status?token={self.token}", timeout=5).read()
                return
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    self.stop()
                    raise RuntimeError(f"jupyter lab did not start:\n{(jupyter_home / 'server.log').read_text()}")
                time.sleep(0.5)

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base}/{path.lstrip('/')}{sep}token={self.token}"

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.log.close()


@pytest.fixture
def lab_factory(tmp_path):
    started = []

    def start(root_dir, tinytorch_root=ROOT, command=None):
        lab = Lab(root_dir, tmp_path / f"jupyter-{len(started)}", tinytorch_root,
                  command or [sys.executable, "-m", "tito.cli", "lab"])
        started.append(lab)
        return lab
    yield start
    for lab in started:
        lab.stop()
