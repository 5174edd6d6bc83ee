"""A class on JupyterHub with nbgrader's exchange, on one machine, loopback only.

The deployment of the README's "A class on JupyterHub": JupyterHub with configurable-http-proxy,
local Unix users whose servers run as themselves (LocalProcessSpawner) from one shared
environment, and nbgrader's exchange directory. The instructor releases Module 01 with nbgrader;
two students fetch it through their own servers (the Assignments extension's HTTP API, as the
browser calls it), one completes it and one leaves it blank, both submit; the instructor
collects and grades with `tito grade`, releases the feedback with nbgrader, and the students
fetch it: it shows their score and no hidden test.

Needs root (it creates and removes the users), the shared environment at /opt/tinytorch-hub and
the proxy under .venv/hub (`make setup` builds both as root); skipped without them, except in CI.
"""
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from autograder.samples import fill_solutions
from course.project import ROOT, find_module

USER_ENV = Path("/opt/tinytorch-hub")  # what every user's server runs: jupyterhub-singleuser, nbgrader
PROXY = ROOT / ".venv" / "hub" / "node_modules" / ".bin" / "configurable-http-proxy"
COURSE = "tinytorch"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def requirements_missing():
    if os.geteuid() != 0:
        return "the JupyterHub test creates Unix users: run it as root"
    for path in (USER_ENV / "bin" / "jupyterhub-singleuser", PROXY, Path(sys.executable).parent / "jupyterhub",
                 Path("/usr/sbin/useradd")):
        if not path.exists():
            return f"{path} is missing (`make setup` as root installs the hub's tools)"
    return None


class Hub:
    """JupyterHub on 127.0.0.1 with its proxy, and the REST calls the test makes."""

    def __init__(self, base: Path, users: list[str], exchange: Path):
        self.base, self.users, self.token = base, users, secrets.token_hex(32)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        hub_dir = base / "hub"
        hub_dir.mkdir()
        (hub_dir / "jupyterhub_config.py").write_text(f"""
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {self.port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {free_port()}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{free_port()}"
c.ConfigurableHTTPProxy.command = [{str(PROXY)!r}]
c.JupyterHub.db_url = "sqlite:///{hub_dir}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{hub_dir}/cookie_secret"
c.JupyterHub.pid_file = "{hub_dir}/jupyterhub.pid"
c.JupyterHub.spawner_class = "localprocess"  # each user's server runs as that Unix user
c.Spawner.cmd = [{str(USER_ENV / "bin" / "jupyterhub-singleuser")!r}]
c.Spawner.notebook_dir = "~"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.Authenticator.allowed_users = {set(users)!r}
c.JupyterHub.services = [{{"name": "tinytorch-test", "api_token": {self.token!r}}}]
c.JupyterHub.load_roles = [{{"name": "tinytorch-test", "services": ["tinytorch-test"],
                            "scopes": ["admin:users", "admin:servers", "access:servers"]}}]
""")
        self.log = open(hub_dir / "jupyterhub.log", "w")
        self.proc = subprocess.Popen([str(Path(sys.executable).parent / "jupyterhub"), "-f", "jupyterhub_config.py"],
                                     cwd=hub_dir, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.wait(lambda: self.api("GET", "/hub/api/")[0] == 200, 90, "the hub did not answer")

    def api(self, method, path, data=None, form=None):
        """(status, decoded JSON or text) of one request through the proxy, with the service token."""
        body, headers = None, {"Authorization": f"token {self.token}"}
        if form is not None:
            body = "&".join(f"{k}={v}" for k, v in form.items()).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif data is not None:
            body = json.dumps(data).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data=body, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=120) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode(errors="replace")
        except OSError as e:
            return 0, str(e)
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def wait(self, condition, seconds, what):
        deadline = time.time() + seconds
        while not condition():
            if self.proc.poll() is not None or time.time() > deadline:
                raise AssertionError(f"{what}:\n{self.hub_log()}")
            time.sleep(0.5)

    def hub_log(self):
        return (self.base / "hub" / "jupyterhub.log").read_text()[-4000:]

    def start_server(self, user):
        status, body = self.api("POST", f"/hub/api/users/{user}/server")
        assert status in (201, 202), f"starting {user}'s server: {status} {body}"
        ready = lambda: (self.api("GET", f"/hub/api/users/{user}")[1].get("servers", {}).get("", {}).get("ready"))
        self.wait(ready, 150, f"{user}'s server did not become ready")

    def stop(self):
        for user in self.users:
            self.api("DELETE", f"/hub/api/users/{user}/server")
        os.killpg(self.proc.pid, 15)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
        self.log.close()


def as_user(user, *cmd, cwd):
    result = subprocess.run(["runuser", "-u", user, "--", *cmd], cwd=cwd, capture_output=True, text=True,
                            timeout=300, env={"PATH": f"{USER_ENV / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": pwd.getpwnam(user).pw_dir})
    assert result.returncode == 0, f"{user}: {' '.join(map(str, cmd))}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture
def classroom():
    why = requirements_missing()
    if why:
        pytest.fail(why) if os.environ.get("CI") else pytest.skip(why)
    suffix = secrets.token_hex(3)
    instructor, students = f"tt-teach-{suffix}", [f"tt-ada-{suffix}", f"tt-alan-{suffix}"]
    base = Path(tempfile.mkdtemp(prefix="tinytorch-hub-", dir="/tmp"))
    base.chmod(0o755)
    exchange = base / "exchange"
    exchange.mkdir()
    exchange.chmod(0o1777)  # nbgrader's exchange: everyone writes, nobody removes another's files
    created = []
    hub = None
    try:
        for user in [instructor, *students]:
            subprocess.run(["useradd", "--create-home", "--home-dir", str(base / "home" / user), "--shell", "/bin/sh",
                            user], check=True, capture_output=True)
            created.append(user)
            home = base / "home" / user
            (home / ".jupyter").mkdir()
            config = f'c = get_config()\nc.CourseDirectory.course_id = "{COURSE}"\nc.Exchange.root = "{exchange}"\n'
            if user == instructor:
                config += f'c.CourseDirectory.root = "{home / "course"}"\n'
            (home / ".jupyter" / "nbgrader_config.py").write_text(config)
            subprocess.run(["chown", "-R", f"{user}:{user}", str(home)], check=True)
        (base / "home").chmod(0o755)
        hub = Hub(base, [instructor, *students], exchange)
        yield hub, instructor, students, base
    finally:
        if hub is not None:
            hub.stop()
        for user in created:
            subprocess.run(["pkill", "-KILL", "-u", user], capture_output=True)
            subprocess.run(["userdel", user], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def test_a_class_releases_fetches_submits_collects_grades_and_returns_feedback(classroom):
    hub, instructor, students, base = classroom
    ada, alan = students
    m = find_module("01")
    course = base / "home" / instructor / "course"

    # the instructor releases Module 01 from the course's source notebook
    shutil.copytree(m.source().parent, course / "source" / m.name)
    subprocess.run(["chown", "-R", f"{instructor}:{instructor}", str(course)], check=True)
    as_user(instructor, "nbgrader", "generate_assignment", m.name, "--force", cwd=course)
    as_user(instructor, "nbgrader", "release_assignment", m.name, cwd=course)

    # each student fetches it through their own server; ada completes it, alan leaves it blank
    form = {"course_id": COURSE, "assignment_id": m.name}
    for user in students:
        hub.start_server(user)
        status, listing = hub.api("POST", f"/user/{user}/assignments/fetch", form=form)
        assert status == 200, f"{user} fetch: {status} {listing}"
    fetched = f"{m.name}/{m.notebook_name}"  # nbgrader fetches into ~/<assignment>/
    status, model = hub.api("GET", f"/user/{ada}/api/contents/{fetched}?content=1")
    assert status == 200, f"ada's fetched notebook is not at ~/{fetched}: {status} {model}"
    released = model["content"]
    assert "### BEGIN HIDDEN TESTS" not in json.dumps(released), "the released notebook holds hidden tests"
    completed = fill_solutions(released, json.loads(m.source().read_text()))
    status, body = hub.api("PUT", f"/user/{ada}/api/contents/{fetched}",
                           data={"type": "notebook", "format": "json", "content": completed})
    assert status == 200, f"saving ada's work: {status} {body}"
    for user in students:
        status, listing = hub.api("POST", f"/user/{user}/assignments/submit", form=form)
        submitted = [a for a in listing.get("value", []) if a.get("status") == "submitted"] if status == 200 else []
        assert listing.get("success") and submitted, f"{user} submit: {status} {listing}"

    # the instructor collects and grades with tito
    as_user(instructor, "nbgrader", "collect", m.name, cwd=course)
    submitted = course / "submitted"
    assert sorted(p.name for p in submitted.iterdir()) == sorted(students)
    grades = base / "grades"
    graded = subprocess.run([sys.executable, "-m", "tito.cli", "grade", m.name, "--submissions", str(submitted),
                             "--output", str(grades), "--workers", "2"], capture_output=True, text=True, timeout=900)
    assert graded.returncode == 0, graded.stdout + graded.stderr
    rows = {r.split(",")[0]: r.split(",") for r in (grades / "instructor" / "grades.csv").read_text().splitlines()[1:]}
    assert rows[ada][2:5] == ["17", "17", "graded"] and rows[alan][2:5] == ["0", "17", "graded"], rows

    # the feedback goes back through the exchange, and shows each student their score and no hidden test
    released = subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "release_feedback", m.name,
                               "--CourseDirectory.root=.", f"--CourseDirectory.course_id={COURSE}",
                               f"--Exchange.root={base / 'exchange'}"], cwd=grades, capture_output=True, text=True,
                              timeout=300)
    assert released.returncode == 0, released.stdout + released.stderr
    source_cells = json.loads(m.source().read_text())["cells"]
    hidden = [line.strip() for c in source_cells for block in "".join(c["source"]).split("### BEGIN HIDDEN TESTS")[1:]
              for line in block.split("### END HIDDEN TESTS")[0].splitlines() if len(line.strip()) > 25]
    assert hidden, "Module 01 should have hidden tests to look for"
    for user, score in ((ada, "17 / 17"), (alan, "0 / 17")):
        status, listing = hub.api("POST", f"/user/{user}/assignments/fetch_feedback", form=form)
        assert status == 200, f"{user} fetch_feedback: {status} {listing}"
        status, folder = hub.api("GET", f"/user/{user}/api/contents/{m.name}/feedback")
        assert status == 200 and folder["content"], f"{user} has no feedback folder: {status} {folder}\n{listing}\n{released.stderr}"
        stamp = urllib.parse.quote(folder["content"][0]["path"])  # a folder named after the submission time
        status, page = hub.api("GET", f"/user/{user}/api/contents/{stamp}/{m.name}.html?type=file&format=text&content=1")
        assert status == 200, f"{user}'s feedback page: {status} {page}"
        html = page["content"]
        assert score in html, f"{user}'s feedback should show {score}"
        leaked = [line for line in hidden if line in html]
        assert not leaked and "HIDDEN" not in html, f"{user}'s feedback shows hidden tests: {leaked[:2]}"
