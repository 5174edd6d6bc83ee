"""One grading job: a submission in, a result out. A job never raises; every outcome is a result.

A job runs in its own process (`python -m autograder.job SPEC RESULT`, started by
`autograder.runner`), which the runner kills with all its descendants when the notebook's time
is up. Inside, the assembled notebook (`autograder.assemble`) is executed cell by cell with
nbclient in the sandboxed grading kernel. A cell that kills the kernel or outlives its timeout
(a loop that ignores interrupts included) is neutralised and the notebook re-run in a fresh
kernel, so one bad cell costs only its own points.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty

from course.project import skip_slow_optional_imports

from .assemble import Assembled, assemble, text
from .protocol import CELLS_FILE_ENV, MARKER_PREFIX, THREADS_RE
from .sandbox import (Limits, become_subreaper, die_with_parent, job_uid, kernel_argv, kernel_env,
                      kill_descendants)

MAX_RERUNS = 3
STOP_REASONS = {"timeout": "ran out of time", "died": "killed the kernel",
                "threads": "started threads that were still running when a test began"}
TEST_STOP_MESSAGES = {  # what a student reads when the test itself was the cell that stopped
    "timeout": "this test did not finish in time (an infinite loop, or code that is far too slow)",
    "died": "the kernel died while this test ran (the code exited or crashed the interpreter)",
    "threads": "this test started threads that were still running when the next test began"}
KERNEL_NAME = "tinytorch-grader"


@dataclass
class JobSpec:
    student_id: str
    assignment: str
    submission: str  # path of the submitted notebook
    source: str  # the instructor's notebook
    release: str  # the student release (stubs for missing solution cells)
    package_dir: str  # grading package: reference before the module, stubs from it on
    work_dir: str  # this job's own directory (the kernel's scratch is inside it)
    data_dir: str | None = None
    limits: dict = field(default_factory=dict)
    use_bwrap: bool = True
    notes: list[str] = field(default_factory=list)  # from intake, e.g. a renamed notebook

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, s: str) -> "JobSpec":
        return cls(**json.loads(s))


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def base_result(student_id: str, assignment: str, status: str, reason: str = "", notes: list[str] = ()) -> dict:
    """A result with no graded cells yet; `grade` fills it in. status: graded, invalid or error."""
    return {"student_id": student_id, "assignment": assignment, "status": status, "reason": reason,
            "score": 0.0, "max_score": 0.0, "cells": [], "notes": list(notes),
            "submission_sha256": None, "seconds": 0.0, "phases": {}, "sandbox": None}


# --- execution ------------------------------------------------------------------------------------

class _Stopped(Exception):
    def __init__(self, index: int, kind: str):
        super().__init__(kind)
        self.index, self.kind = index, kind


def _ready_client_class():
    from jupyter_client.asynchronous import AsyncKernelClient

    class ReadyClient(AsyncKernelClient):
        """Ready when the kernel has answered kernel_info on the shell channel and its idle status for
        that request came on IOPub (so IOPub is connected and drained). jupyter_client's own wait
        then listens to a silent IOPub for another 0.2 s, a sixth of a Module 01 grading."""

        async def wait_for_ready(self, timeout=None):
            deadline = time.monotonic() + (60 if timeout is None else timeout)
            asked = set()  # a slow kernel answers an earlier request: any of them will do
            while True:
                asked.add(self.kernel_info())
                try:
                    reply = await self.shell_channel.get_msg(timeout=1)
                except Empty:
                    reply = None
                if reply and reply["msg_type"] == "kernel_info_reply":
                    try:
                        while True:
                            msg = await self.iopub_channel.get_msg(timeout=0.2)
                            if (msg["parent_header"].get("msg_id") in asked and msg["msg_type"] == "status"
                                    and msg["content"]["execution_state"] == "idle"):
                                self._handle_kernel_info_reply(reply)
                                return
                    except Empty:  # IOPub was not connected yet when the kernel answered: ask again
                        pass
                if not await self.is_alive():
                    raise RuntimeError("Kernel died before replying to kernel_info")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Kernel didn't respond in {timeout} seconds")

    return ReadyClient


def _client_class():
    from nbclient import NotebookClient

    class CappedClient(NotebookClient):
        """Keeps at most `output_budget` bytes of output from the whole notebook. Past it, only the
        grader's marker lines get through, so a flood of output costs no test its credit."""
        output_budget = 0
        _spent = 0
        _truncated = False

        def output(self, outs, msg, display_id, cell_index):
            content = msg.get("content", {})
            self._spent += len(json.dumps(content, default=str))
            if self._spent <= self.output_budget:
                return super().output(outs, msg, display_id, cell_index)
            from nbformat.v4 import new_output
            if not self._truncated:
                self._truncated = True
                outs.append(new_output("stream", name="stdout",
                                       text="[output truncated by the grader: the notebook printed too much]\n"))
            if msg.get("msg_type") == "error":  # small, and it says why a test failed
                return super().output(outs, msg, display_id, cell_index)
            text = content.get("text", "") if msg.get("msg_type") == "stream" else ""
            kept = "".join(line for line in str(text).splitlines(keepends=True) if line.startswith(MARKER_PREFIX))
            if kept:
                outs.append(new_output("stream", name="stdout", text=kept))
            return None

    return CappedClient


def _write_kernelspec(kernel_dir: Path, argv: list[str], env: dict) -> None:
    spec_dir = kernel_dir / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "kernel.json").write_text(json.dumps(
        {"argv": argv, "display_name": "TinyTorch grader", "language": "python", "env": env}))


def execute(assembled: Assembled, spec: JobSpec, limits: Limits, deadline: float,
            phases: dict[str, float] | None = None) -> tuple[dict, _Stopped | None]:
    """Run the notebook in a fresh sandboxed kernel; stops at the first cell that hangs or kills it.
    Adds the wall time of its phases (kernel start, cells, kernel stop) to `phases`."""
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    work = Path(spec.work_dir)
    scratch = work / f"scratch-{secrets.token_hex(4)}"
    scratch.mkdir(parents=True)
    os.chdir(scratch)  # where the kernel's sockets are (see ip= below); back to work when it is done
    data_dir = Path(spec.data_dir) if spec.data_dir else None
    env = kernel_env(scratch, Path(spec.package_dir), data_dir)
    # the instructor's cells go to the kernel in a file it reads and deletes before any submission code
    cells_file = scratch / "cells.json"
    fd = os.open(cells_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"token": assembled.token, "cells": assembled.trusted}, f)
    env[CELLS_FILE_ENV] = str(cells_file)
    uid = job_uid() if spec.use_bwrap else None
    _write_kernelspec(work / "kernels", kernel_argv(limits, scratch, Path(spec.package_dir), data_dir,
                                                    spec.use_bwrap, uid), env)
    km = AsyncKernelManager(kernel_name=KERNEL_NAME,
                            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(work / "kernels")]),
                            # relative to the scratch directory, the working directory of both sides:
                            # a socket's path must stay under 108 bytes, whatever the output directory
                            transport="ipc", ip="kernel",
                            connection_file=str(scratch / "connection.json"))
    km.client_factory = _ready_client_class()
    if uid is not None:  # the kernel's own user must own its scratch and read its connection file
        km.write_connection_file()
        for path in (scratch, scratch / "connection.json", cells_file):
            os.chown(path, uid, uid)
    nb = nbformat.from_dict(assembled.notebook)
    client = _client_class()(nb, km=km, timeout=limits.cell_timeout, startup_timeout=60, allow_errors=True,
                             interrupt_on_timeout=False, shutdown_kernel="immediate", iopub_timeout=5,
                             resources={"metadata": {"path": str(scratch)}})
    client.output_budget = limits.output_bytes
    stopped: _Stopped | None = None
    watchdog_fired = threading.Event()

    def watchdog():  # the notebook's time is up: kill the kernel, nbclient then reports it dead
        while not done.wait(0.5):
            if time.monotonic() > deadline:
                watchdog_fired.set()
                kill_descendants()
                return

    done = threading.Event()
    threading.Thread(target=watchdog, daemon=True).start()
    index = -1
    kernel_log = open(work / "kernel.log", "ab")  # the kernel's own stdout and stderr, capped by RLIMIT_FSIZE
    clock = [time.monotonic()]  # started, ready, cells done
    try:
        with client.setup_kernel(env=env, cwd=str(scratch), stdout=kernel_log, stderr=kernel_log):
            clock.append(time.monotonic())
            for index, cell in enumerate(nb.cells[: assembled.last_graded + 1]):
                if cell.cell_type != "code" or not cell.source.strip():
                    continue
                try:
                    client.execute_cell(cell, index)
                except Exception as e:  # nbclient raises a handful of types for hangs and deaths
                    name = type(e).__name__
                    kind = "timeout" if ("Timeout" in name or watchdog_fired.is_set()) else "died"
                    stopped = _Stopped(index, kind)
                    break
                origin = _thread_origin(nb, cell)
                if origin is not None:
                    stopped = _Stopped(origin, "threads")
                    break
    except Exception as e:  # the kernel did not start, or died while shutting down
        if stopped is None:
            stopped = _Stopped(max(index, 0), "died" if index >= 0 else f"kernel failed to start: {e}")
    finally:
        clock += [time.monotonic()] * (3 - len(clock))
        done.set()
        kill_descendants()
        kernel_log.close()
        os.chdir(work)
        shutil.rmtree(scratch, ignore_errors=True)
        if phases is not None:
            for name, seconds in zip(("kernel start", "cells", "kernel stop"),
                                     (clock[1] - clock[0], clock[2] - clock[1], time.monotonic() - clock[2])):
                phases[name] = phases.get(name, 0.0) + seconds
    return nbformat.from_dict(nb), stopped


def _thread_origin(nb, cell) -> int | None:
    """The index of the cell whose threads made the kernel refuse this graded cell, if it did."""
    err = _error(cell)
    m = THREADS_RE.search(err[1]) if err else None
    if m is None:
        return None
    number = int(m.group(1))
    return next((i for i, c in enumerate(nb.cells) if c.get("execution_count") == number), None)


# --- scoring --------------------------------------------------------------------------------------

def _stdout(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == "stdout")


def _error(cell) -> tuple[str, str] | None:
    for o in cell.get("outputs", []):
        if o.get("output_type") == "error":
            return o.get("ename", "Error"), o.get("evalue", "")
    return None


def score_cells(nb: dict, assembled: Assembled, stops: dict[int, str]) -> list[dict]:
    """Each graded cell: full points if its end marker was printed, else 0 and why.

    The message of a failed visible assert is shown (the student has those asserts); for a failed
    hidden test only the kind of error is, never its message or code."""
    rows = []
    for g in assembled.graded:
        cell = nb["cells"][g.index]
        out, err = _stdout(cell), _error(cell)
        row = {"grade_id": g.grade_id, "points": g.points, "score": 0.0}
        if g.index in stops:
            row.update(status=stops[g.index], message=TEST_STOP_MESSAGES[stops[g.index]])
        elif g.end_marker in out and err is None:
            row.update(status="passed", score=g.points, message="")
        elif not cell.get("outputs") and cell.get("execution_count") is None:
            row.update(status="not run", message="not run: an earlier cell stopped the kernel")
        elif g.visible_marker in out:
            row.update(status="failed", message=f"a hidden test failed ({err[0] if err else 'no result'})")
        else:
            ename, evalue = err if err else ("Error", "the test did not finish")
            if ename == "NotImplementedError" and not evalue.strip():
                evalue = "not implemented yet (a function this test calls still raises NotImplementedError)"
            row.update(status="failed", message=f"{ename}: {evalue}"[:500])
        rows.append(row)
    return rows


def grade(spec: JobSpec) -> dict:
    """Grade one submission; the result as a dict (see base_result). Never raises."""
    started = time.monotonic()
    result = base_result(spec.student_id, spec.assignment, "error", notes=spec.notes)
    try:
        limits = Limits(**spec.limits)
        deadline = started + limits.notebook_timeout
        result["sandbox"] = "bubblewrap" if spec.use_bwrap else "limits only"
        result["submission_sha256"] = sha256(Path(spec.submission))
        submission = json.loads(Path(spec.submission).read_text(encoding="utf-8"))
        source_nb = json.loads(Path(spec.source).read_text(encoding="utf-8"))
        release_nb = json.loads(Path(spec.release).read_text(encoding="utf-8"))
        stopped_cells: dict[str, str] = {}  # cell id -> a key of STOP_REASONS
        phases = result["phases"]
        for attempt in range(MAX_RERUNS + 1):
            assembled = assemble(source_nb, release_nb, submission, set(stopped_cells))
            nb, stopped = execute(assembled, spec, limits, deadline, phases)
            if stopped is None:
                break
            if stopped.kind not in STOP_REASONS:
                raise RuntimeError(stopped.kind)
            cell_id = nb["cells"][stopped.index]["id"]
            stopped_cells[cell_id] = stopped.kind
            what = STOP_REASONS[stopped.kind]
            if time.monotonic() > deadline or attempt == MAX_RERUNS:
                result["notes"].append(f"cell {cell_id} {what}; the cells after it were not run")
                break
            result["notes"].append(f"cell {cell_id} {what}; it was neutralised and the notebook run again")
        stops = {i: stopped_cells[c["id"]] for i, c in enumerate(nb["cells"]) if c["id"] in stopped_cells}
        result["cells"] = score_cells(nb, assembled, stops)
        result["notes"] += assembled.notes
        result["score"] = sum(c["score"] for c in result["cells"])
        result["max_score"] = sum(c["points"] for c in result["cells"])
        result["status"] = "graded"
        # the executed copy shows the instructor's cells as written, without the grader's markers
        by_id = {c["id"]: c for c in source_nb["cells"]}
        for i, cell in enumerate(nb["cells"]):
            if i not in assembled.student_cells and cell["id"] in by_id:
                cell["source"] = text(by_id[cell["id"]])
        executed = Path(spec.work_dir) / "executed.ipynb"
        executed.write_text(json.dumps(nb, indent=1), encoding="utf-8")
        result["executed_notebook"] = str(executed)
    except Exception as e:  # the grader's own fault: say so, and let the batch go on
        result.update(status="error", reason=f"grading failed: {type(e).__name__}: {e}",
                      traceback=traceback.format_exc()[-4000:])
    result["seconds"] = round(time.monotonic() - started, 2)
    result["phases"] = {k: round(v, 3) for k, v in result["phases"].items()}
    return result


def main(argv: list[str] | None = None) -> int:
    skip_slow_optional_imports()
    spec_path, result_path = (sys.argv[1:] if argv is None else argv)[:2]
    become_subreaper()
    die_with_parent()
    if os.environ.get("TINYTORCH_GRADER_PARENT") not in (None, str(os.getppid())):
        return 1  # the batch that started this job is already gone
    spec = JobSpec.from_json(Path(spec_path).read_text(encoding="utf-8"))
    result = grade(spec)
    kill_descendants()
    tmp = Path(result_path).with_suffix(".tmp")
    tmp.write_text(json.dumps(result), encoding="utf-8")
    os.replace(tmp, result_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
