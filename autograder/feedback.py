"""Feedback for a student, made from the grading result alone.

It never reads a notebook, so it cannot show hidden-test code: it lists each graded check,
its points, and what went wrong. For a failed visible check that is the assertion's message
(the student has those asserts); for a failed hidden check only the kind of error.
"""
from __future__ import annotations

from html import escape

STATUS_TEXT = {"passed": "passed", "failed": "failed", "timeout": "ran out of time",
               "died": "stopped the kernel", "not run": "not run"}

_STYLE = """body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;
vertical-align:top}.passed{color:#17692f}.failed,.timeout,.died,.not-run{color:#a3261b}
code{white-space:pre-wrap}"""


def render(result: dict) -> str:
    sid, assignment = escape(result["student_id"]), escape(result["assignment"])
    head = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{assignment}: feedback for {sid}"
            f"</title><style>{_STYLE}</style></head><body><h1>{assignment}</h1><p>Student: <b>{sid}</b></p>")
    if result["status"] != "graded":
        body = (f"<p class='failed'>This submission could not be graded: {escape(result['reason'])}</p>"
                f"<p>Score: {result['score']:g} / {result['max_score']:g}</p>")
    else:
        rows = "".join(
            f"<tr><td><code>{escape(c['grade_id'])}</code></td><td>{c['score']:g} / {c['points']:g}</td>"
            f"<td class='{c['status'].replace(' ', '-')}'>{STATUS_TEXT.get(c['status'], escape(c['status']))}</td>"
            f"<td><code>{escape(c['message'])}</code></td></tr>" for c in result["cells"])
        body = (f"<p>Score: <b>{result['score']:g} / {result['max_score']:g}</b></p>"
                f"<table><tr><th>check</th><th>points</th><th>result</th><th>what went wrong</th></tr>{rows}</table>")
    notes = "".join(f"<li>{escape(n)}</li>" for n in result.get("notes", []))
    if notes:
        body += f"<h2>Notes</h2><ul>{notes}</ul>"
    body += ("<p><small>Each check is a graded test cell of the notebook. Hidden tests are not shown: when one "
             "fails, re-read the task and test edge cases (shapes, dtypes, errors) yourself.</small></p>")
    return head + body + "</body></html>\n"
