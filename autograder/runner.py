"""Running one grading job in its own process, with a hard wall-clock limit.

`run_job` is what a local worker thread and a Dask worker both call. Each calling thread has a
job server: a process (`python -m autograder.runner`) that has imported the job's libraries
(nbclient, jupyter_client, nbformat: a third of a second of CPU) once, and forks one child per
job. The child starts its own session and is the job process; when its time is up the server
kills it with every process it started, so nothing a submission did can outlive it or hold the
batch up. A server dies with the thread that started it, and its jobs die with it.
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from .job import JobSpec, base_result
from .sandbox import Limits, die_with_parent, kill_descendants

# time for the job process itself (imports, assembling, writing the result) on top of the notebook's
JOB_OVERHEAD_SECONDS = 60

_local = threading.local()


def _server() -> subprocess.Popen:
    """This thread's job server, started on first use (and again if it died)."""
    server = getattr(_local, "server", None)
    if server is None or server.poll() is not None:
        server = _local.server = subprocess.Popen(
            [sys.executable, "-m", "autograder.runner"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            cwd=str(Path(__file__).resolve().parent.parent), env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            start_new_session=True)  # Ctrl-C stops the batch; its running jobs are not interrupted mid-write
    return server


def _ask(request: dict, wait: float) -> dict | None:
    """Send one job to this thread's server and wait for its outcome; None if the server failed."""
    server, line = _server(), b""
    try:
        server.stdin.write(json.dumps(request).encode() + b"\n")
        server.stdin.flush()
        if select.select([server.stdout], [], [], wait)[0]:
            line = server.stdout.readline()
    except OSError:
        pass
    if not line:  # it died or did not answer in time: the next job gets a fresh one
        server.kill()
        server.wait()
        return None
    return json.loads(line)


def run_job(spec: JobSpec) -> dict:
    """Grade spec in a child process; always returns a result dict."""
    work = Path(spec.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    spec_file, result_file = work / "spec.json", work / "result.json"
    spec_file.write_text(spec.to_json(), encoding="utf-8")
    result_file.unlink(missing_ok=True)
    budget = Limits(**spec.limits).notebook_timeout + JOB_OVERHEAD_SECONDS
    started = time.monotonic()
    outcome = _ask({"spec": str(spec_file), "result": str(result_file), "work": str(work), "budget": budget},
                   wait=budget + 30)
    if result_file.exists():
        try:
            return json.loads(result_file.read_text(encoding="utf-8"))
        except ValueError:
            pass
    result = base_result(spec.student_id, spec.assignment, "error", notes=spec.notes)
    if outcome is None:
        result["reason"] = "the grading process could not be started or did not report back"
    elif outcome["timed_out"]:
        result["reason"] = f"grading took longer than {budget:.0f} s and was stopped"
    else:
        tail = (work / "job.log").read_text(errors="replace")[-600:].strip() if (work / "job.log").exists() else ""
        result["reason"] = f"the grading process exited with status {outcome['returncode']}: {tail}"
    result["seconds"] = round(time.monotonic() - started, 2)
    return result


# --- the job server -------------------------------------------------------------------------------

def _run_child(request: dict) -> None:
    """In the forked child: become the job process (its own session, its own log) and grade."""
    try:
        os.setsid()
        os.chdir(request["work"])
        log = os.open(Path(request["work"]) / "job.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        os.environ["TINYTORCH_GRADER_PARENT"] = str(os.getppid())
        from .job import main
        code = main([request["spec"], request["result"]])
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001  (whatever happens, the child never returns to the server loop)
        import traceback
        traceback.print_exc()
        code = 1
    os._exit(code or 0)


def _wait(pid: int, budget: float) -> tuple[int, bool]:
    """The child's exit status, and whether it had to be killed at the end of its budget."""
    fd = os.pidfd_open(pid)
    try:
        timed_out = not select.select([fd], [], [], budget)[0]
    finally:
        os.close(fd)
    kill_descendants(pid)
    try:
        os.killpg(pid, signal.SIGKILL)  # the job's session: whatever it started and left behind
    except ProcessLookupError:
        pass
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), timed_out


def serve() -> None:
    """Read one job per line on stdin, fork a child for it, answer with its outcome on stdout."""
    die_with_parent()
    from course.project import skip_slow_optional_imports
    skip_slow_optional_imports()
    # what every job needs, imported once here instead of once per job
    import jupyter_client.kernelspec  # noqa: F401
    import jupyter_client.manager  # noqa: F401
    import nbclient  # noqa: F401
    import nbformat  # noqa: F401

    from . import job  # noqa: F401
    for line in sys.stdin.buffer:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _run_child(request)
        returncode, timed_out = _wait(pid, request["budget"])
        sys.stdout.buffer.write(json.dumps({"returncode": returncode, "timed_out": timed_out}).encode() + b"\n")
        sys.stdout.buffer.flush()


if __name__ == "__main__":
    serve()
