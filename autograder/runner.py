"""Running one grading job in its own process, with a hard wall-clock limit.

`run_job` is what a local worker thread and a Dask worker both call. The job process starts in
its own session; when its time is up it is killed with every process it started, so nothing a
submission did can outlive it or hold the batch up.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .job import JobSpec, base_result
from .sandbox import Limits, kill_descendants

# time for the job process itself (imports, assembling, writing the result) on top of the notebook's
JOB_OVERHEAD_SECONDS = 60


def run_job(spec: JobSpec) -> dict:
    """Grade spec in a child process; always returns a result dict."""
    work = Path(spec.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    spec_file, result_file = work / "spec.json", work / "result.json"
    spec_file.write_text(spec.to_json(), encoding="utf-8")
    result_file.unlink(missing_ok=True)
    budget = Limits(**spec.limits).notebook_timeout + JOB_OVERHEAD_SECONDS
    started = time.monotonic()
    with open(work / "job.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "autograder.job", str(spec_file), str(result_file)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                                cwd=str(work), env={**os.environ, "TINYTORCH_GRADER_PARENT": str(os.getpid())})
        try:
            proc.wait(timeout=budget)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
        kill_descendants(proc.pid)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    if result_file.exists():
        try:
            return json.loads(result_file.read_text(encoding="utf-8"))
        except ValueError:
            pass
    result = base_result(spec.student_id, spec.assignment, "error", notes=spec.notes)
    if timed_out:
        result["reason"] = f"grading took longer than {budget:.0f} s and was stopped"
    else:
        tail = (work / "job.log").read_text(errors="replace")[-600:].strip()
        result["reason"] = f"the grading process exited with status {proc.returncode}: {tail}"
    result["seconds"] = round(time.monotonic() - started, 2)
    return result
