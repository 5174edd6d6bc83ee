"""Bad input to the student commands: a one-line error saying what to do, exit 1, files untouched."""
import json

import pytest

from .test_student_journey import repo, tito  # noqa: F401  (fixture and helper)

COMMANDS = [["module", a] for a in ("start", "test", "export", "reset")] + [["student", "init"], ["reference"],
                                                                           ["status"], ["lab"], ["module"], ["student"],
                                                                           ["grade"], ["feedback"]]


def one_line_error(result, *needles):
    assert result.returncode == 1, f"expected exit 1, got {result.returncode}\n{result.stdout}{result.stderr}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tito: error:"), f"expected a one-line error, got:\n{result.stderr}"
    for n in needles:
        assert n in lines[0], f"the error should mention {n!r}: {lines[0]}"


@pytest.mark.parametrize("action", ["start", "test", "export", "reset"])
def test_unknown_module_number(repo, action):
    one_line_error(tito(repo, "module", action, "99"), "99", "01_tensor")


@pytest.mark.parametrize("action", ["test", "export", "reset"])
def test_commands_before_start_say_to_start(repo, action):
    one_line_error(tito(repo, "module", action, "01"), "tito module start 01")


def test_start_twice_keeps_the_work(repo):
    tito(repo, "module", "start", "01", check=True)
    nb = repo / "modules/01_tensor/01_tensor.ipynb"
    nb.write_text(nb.read_text() + " ")  # the student's edit
    before = nb.read_bytes()
    one_line_error(tito(repo, "module", "start", "01"), "already exists", "--force")
    assert nb.read_bytes() == before
    tito(repo, "module", "start", "01", "--force", check=True)
    assert [b.read_bytes() for b in (nb.parent / "backups").iterdir()] == [before], "--force keeps a backup"


@pytest.mark.parametrize("content, needle", [("{not json", "invalid JSON"),
                                             (json.dumps({"nbformat": 3, "cells": []}), "nbformat")])
@pytest.mark.parametrize("action", ["test", "export"])
def test_corrupt_notebook_is_reported_and_left_alone(repo, content, needle, action):
    tito(repo, "student", "init", check=True)
    tito(repo, "module", "start", "01", check=True)
    nb = repo / "modules/01_tensor/01_tensor.ipynb"
    nb.write_text(content)
    one_line_error(tito(repo, "module", action, "01"), needle)
    assert nb.read_text() == content


def test_export_in_reference_mode_asks_for_student_init(repo):
    tito(repo, "module", "start", "01", check=True)
    before = (repo / "tinytorch/core/tensor.py").read_bytes()
    one_line_error(tito(repo, "module", "export", "01"), "tito student init")
    assert (repo / "tinytorch/core/tensor.py").read_bytes() == before


def test_reset_backs_up_even_a_corrupt_notebook(repo):
    tito(repo, "module", "start", "01", check=True)
    nb = repo / "modules/01_tensor/01_tensor.ipynb"
    nb.write_text("{broken")
    tito(repo, "module", "reset", "01", check=True)
    assert [b.read_text() for b in (nb.parent / "backups").iterdir()] == ["{broken"]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(repo, command):
    result = tito(repo, *command, "--help")
    assert result.returncode == 0 and "usage: tito" in result.stdout, result.stdout + result.stderr
