"""Grading a class: discover, grade in parallel, write every result once, resume after a kill.

    output/
      feedback/<student>/<assignment>/<assignment>.html   to hand back: each student's own page,
                                                          without hidden tests or expected values
                                       (plus nbgrader's timestamp.txt and submission_secret.txt, when
                                       collected by nbgrader, for `nbgrader release_feedback`)
      instructor/                                         never to hand back:
        grades.csv                        one row per submission, rebuilt at the end of every run
        results/<student>/<assignment>.json   each graded cell's result (the commit point of a job)
        autograded/<student>/<assignment>/<assignment>.ipynb   the executed notebook, hidden tests in it
        gradebook.db, source/, nbgrader_config.py   the nbgrader course for formgrader (solutions in it)

Jobs run in worker threads (`--workers N`), each job in its own process, or on a Dask cluster
(`--scheduler ADDRESS`). Either way they only return results: the main thread alone writes
files and the gradebook. A result file is written last, atomically, so a submission is done
exactly when its result file exists; a re-run grades only submissions without one (or whose
notebook changed since), then records every result in the gradebook again.
"""
from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from course.project import ROOT, Module, TitoError, find_module, read_notebook_json

from . import feedback
from .gradebook import CourseGradebook
from .intake import IntakeError, Submission, discover, unpack
from .job import JobSpec, base_result, sha256
from .packages import build_grading_package
from .runner import run_job
from .sandbox import Limits, bwrap_path, sandbox_warning

CSV_COLUMNS = ["student_id", "assignment", "score", "max_score", "status", "reason"]
FEEDBACK, INSTRUCTOR = "feedback", "instructor"  # what may go back to students, and what never may
# nbgrader's exchange names a student's feedback after these files of the collected submission;
# kept beside the feedback page, `nbgrader release_feedback` hands the page back through the exchange
EXCHANGE_FILES = ("timestamp.txt", "submission_secret.txt")


def instructor_dir(output: Path) -> Path:
    return Path(output) / INSTRUCTOR


@dataclass
class Summary:
    rows: list[dict] = field(default_factory=list)
    graded_now: int = 0
    reused: int = 0
    seconds: float = 0.0  # the whole run
    grading_seconds: float = 0.0  # from the first job started to the last result written

    def count(self, status: str) -> int:
        return sum(r["status"] == status for r in self.rows)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class Batch:
    def __init__(self, assignment: str, submissions: Path | None, output: Path, workers: int = 1,
                 scheduler: str | None = None, limits: Limits = Limits(), root: Path = ROOT,
                 progress: Callable[[str], None] = print):
        self.module: Module = find_module(assignment, root)
        self.submissions, self.output = submissions and Path(submissions), Path(output).resolve()
        if self.submissions is not None and not self.submissions.exists():  # before anything is written
            raise TitoError(f"submissions directory not found: {self.submissions}")
        self.private = instructor_dir(self.output)
        self.workers, self.scheduler, self.limits, self.root = max(1, workers), scheduler, limits, root
        self.progress = progress
        self.total_points = float(read_notebook_json(self.module.source(root))["metadata"]["tinytorch"]["points"])

    # --- paths ------------------------------------------------------------------------------------
    def result_path(self, sid: str) -> Path:
        return self.private / "results" / sid / f"{self.module.name}.json"

    def _dest(self, kind: str, sid: str, suffix: str) -> Path:
        """feedback/ at the top, for the students; anything else under instructor/."""
        base = self.output if kind == FEEDBACK else self.private
        return base / kind / sid / self.module.name / f"{self.module.name}{suffix}"

    # --- the run ----------------------------------------------------------------------------------
    def run(self) -> Summary:
        started = time.monotonic()
        self.private.mkdir(parents=True, exist_ok=True)
        with open(self.private / ".lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise TitoError(f"another `tito grade` is writing to {self.output}") from None
            summary = self._run_locked()
        summary.seconds = time.monotonic() - started
        return summary

    def _run_locked(self) -> Summary:
        work = self.private / ".work"
        shutil.rmtree(work, ignore_errors=True)  # whatever a killed run left behind
        work.mkdir()
        try:
            found = self._discover(work)
            for sub in found:
                self._keep_exchange_files(sub)
            gradebook = CourseGradebook(self.private, self.module, self.root)
            previous = {sub.student_id: self._load(sub.student_id) for sub in found}
            for old in previous.values():  # a re-run makes the gradebook agree with the result files
                if old is not None:
                    gradebook.record(old)
            todo, results, reused = [], {}, 0
            for sub in found:
                if sub.path is None or sub.problem:
                    results[sub.student_id] = self._commit(self._invalid(sub), gradebook)
                    continue
                old = previous[sub.student_id]
                if old is not None and old["status"] == "graded" and old.get("submission_sha256") == sha256(sub.path):
                    results[sub.student_id] = old
                    reused += 1
                else:
                    todo.append(sub)
            if reused and not todo:
                self.progress(f"all {reused} submission(s) already graded and unchanged; nothing to grade")
            elif reused:
                self.progress(f"{reused} submission(s) already graded; grading the other {len(todo)}")
            warning = sandbox_warning()
            if warning and todo:
                self.progress(warning)
            package = build_grading_package(self.module, work / "package", self.root) if todo else None
            specs = [self._spec(sub, package, work) for sub in todo]
            done, grading_started = 0, time.monotonic()
            for result in self._execute(specs):
                done += 1
                results[result["student_id"]] = self._commit(result, gradebook)
                self.progress(f"[{done}/{len(specs)}] {result['student_id']}: {self._describe(result)}")
            rows = [self._row(results[sub.student_id]) for sub in found]
            self._write_csv(rows)
            return Summary(rows=rows, graded_now=len(specs), reused=reused,
                           grading_seconds=time.monotonic() - grading_started)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _discover(self, work: Path) -> list[Submission]:
        source = self.submissions
        try:
            if source.is_file():
                source = unpack(source, work / "intake", self.module.name)
            return discover(source, self.module.name, self.module.notebook_name)
        except IntakeError as e:
            raise TitoError(str(e)) from None

    def _spec(self, sub: Submission, package: Path, work: Path) -> JobSpec:
        data = self.root / "data"
        return JobSpec(student_id=sub.student_id, assignment=self.module.name, submission=str(sub.path.resolve()),
                       source=str(self.module.source(self.root)), release=str(self.module.release(self.root)),
                       package_dir=str(package), work_dir=str(work / "jobs" / sub.student_id),
                       data_dir=str(data) if data.is_dir() else None, limits=self.limits.to_dict(),
                       use_bwrap=bwrap_path() is not None, notes=sub.notes)

    def _execute(self, specs: list[JobSpec]):
        if not specs:
            return
        if self.scheduler:
            from distributed import Client, as_completed as dask_completed
            with Client(self.scheduler, timeout="30s") as client:
                futures = client.map(run_job, specs, pure=False, key=[f"grade-{s.student_id}" for s in specs])
                for future in dask_completed(futures):
                    yield future.result()
            return
        pool = ThreadPoolExecutor(max_workers=self.workers)
        try:
            for future in as_completed([pool.submit(run_job, s) for s in specs]):
                yield future.result()
        finally:  # interrupted: the jobs not started yet are dropped, not run to the end
            pool.shutdown(wait=True, cancel_futures=True)

    def rerender_feedback(self) -> int:
        """Feedback pages and grades.csv again from the result files, with the gradebook's scores
        (so manual grades given in the formgrader reach the students)."""
        gradebook = CourseGradebook(self.private, self.module, self.root)
        rows = []
        for path in sorted((self.private / "results").glob(f"*/{self.module.name}.json")):
            result = json.loads(path.read_text(encoding="utf-8"))
            if result["status"] == "graded":
                scores = gradebook.cell_scores(result["student_id"])
                for cell in result["cells"]:
                    cell["score"] = scores.get(cell["grade_id"], cell["score"])
                result["score"] = sum(c["score"] for c in result["cells"])
            _atomic_write(self._dest(FEEDBACK, result["student_id"], ".html"), feedback.render(result))
            rows.append(self._row(result))
        self._write_csv(rows)
        return len(rows)

    # --- writing (main thread only) ---------------------------------------------------------------
    def _invalid(self, sub: Submission) -> dict:
        result = base_result(sub.student_id, self.module.name, "invalid", sub.problem or "no notebook", sub.notes)
        if sub.path is not None and sub.path.is_file():
            result["submission_sha256"] = sha256(sub.path)
        return result

    def _keep_exchange_files(self, sub: Submission) -> None:
        folder = sub.path.parent if sub.path is not None else None
        for name in EXCHANGE_FILES:
            if folder is not None and (folder / name).is_file():
                dest = self._dest(FEEDBACK, sub.student_id, "").parent / name
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(folder / name, dest)

    def _commit(self, result: dict, gradebook: CourseGradebook) -> dict:
        sid = result["student_id"]
        result["max_score"] = self.total_points
        executed = result.pop("executed_notebook", None)
        if executed and Path(executed).exists():
            dest = self._dest("autograded", sid, ".ipynb")
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(executed, dest)
        _atomic_write(self._dest(FEEDBACK, sid, ".html"), feedback.render(result))
        if result["status"] != "error":  # a grader fault is retried on the next run
            _atomic_write(self.result_path(sid), json.dumps(result, indent=1))
        gradebook.record(result)
        return result

    def _load(self, sid: str) -> dict | None:
        try:
            return json.loads(self.result_path(sid).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def _row(self, result: dict) -> dict:
        reason = result["reason"] if result["status"] != "graded" else "; ".join(result.get("notes", []))
        return {"student_id": result["student_id"], "assignment": result["assignment"],
                "score": f"{result['score']:g}", "max_score": f"{self.total_points:g}",
                "status": result["status"], "reason": reason}

    def _write_csv(self, rows: list[dict]) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        _atomic_write(self.private / "grades.csv", buf.getvalue())

    @staticmethod
    def _describe(result: dict) -> str:
        if result["status"] == "graded":
            return f"{result['score']:g}/{result['max_score']:g} in {result['seconds']:.1f} s"
        return f"{result['status']}: {result['reason']}"


def read_grades(output: Path) -> list[dict]:
    with open(instructor_dir(output) / "grades.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
