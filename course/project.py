"""Where things live in a TinyTorch checkout, read from the files themselves."""
from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

# TINYTORCH_ROOT points tito at another checkout (the tests use scratch copies of the repository)
ROOT = Path(os.environ.get("TINYTORCH_ROOT") or Path(__file__).resolve().parent.parent).resolve()
MODULE_DIR_RE = re.compile(r"^(\d{2})_([a-z0-9_]+)$")


# The twenty modules of ../shared/spec/curriculum.md, in order; a module exists once source/ holds it.
CURRICULUM = ["01_tensor", "02_activations", "03_layers", "04_losses", "05_dataloader", "06_autograd",
              "07_optimizers", "08_training", "09_convolutions", "10_tokenization", "11_embeddings",
              "12_attention", "13_transformers", "14_profiling", "15_quantization", "16_compression",
              "17_acceleration", "18_memoization", "19_benchmarking", "20_capstone"]


def skip_slow_optional_imports() -> None:
    """Call before importing nbformat, nbclient or nbgrader.

    Their jsonschema builds an IRI grammar from the optional package rfc3987_syntax at import
    (2 s, half of every nbgrader command's start-up). Notebook validation never needs it, and
    jsonschema does without it when the import fails."""
    import sys
    sys.modules.setdefault("rfc3987_syntax", None)


class TitoError(Exception):
    """An error the user can act on: printed as one line, exit status 1."""


@dataclass(frozen=True)
class Module:
    number: str  # "01"
    name: str  # "01_tensor"; also the nbgrader assignment id

    @property
    def notebook_name(self) -> str:
        return f"{self.name}.ipynb"

    def source(self, root: Path = ROOT) -> Path:
        return root / "source" / self.name / self.notebook_name

    def release(self, root: Path = ROOT) -> Path:
        return root / "release" / self.name / self.notebook_name


def modules(root: Path = ROOT) -> list[Module]:
    """Every module of the course, in course order: those in source/, or, in a student
    distribution (no source/), those in release/."""
    base = root / "source" if (root / "source").is_dir() else root / "release"
    found = []
    if not base.is_dir():
        return found
    for d in sorted(base.iterdir()):
        m = MODULE_DIR_RE.match(d.name)
        if m and (d / f"{d.name}.ipynb").is_file():
            found.append(Module(m.group(1), d.name))
    return found


def is_student_distribution(root: Path = ROOT) -> bool:
    """A student distribution has release notebooks but no source/ (no solutions)."""
    return not (root / "source").is_dir() and (root / "release").is_dir()


def find_module(key: str, root: Path = ROOT) -> Module:
    """Look a module up by number ("1", "01") or name ("01_tensor", "tensor")."""
    known = modules(root)
    for m in known:
        if key in (m.name, m.name.split("_", 1)[1]) or (key.isdigit() and int(key) == int(m.number)):
            return m
    listing = ", ".join(m.name for m in known) or "none"
    raise TitoError(f"unknown module {key!r}: expected one of {listing}")


def pyproject(root: Path = ROOT) -> dict:
    return tomllib.loads((root / "pyproject.toml").read_text())


def namespaces(root: Path = ROOT) -> dict[str, list[str]]:
    """Public namespace -> generated modules it re-exports (pyproject [tool.tinytorch.namespaces])."""
    return pyproject(root)["tool"]["tinytorch"]["namespaces"]


def read_notebook_json(path: Path) -> dict:
    """Read a notebook as JSON, with a one-line error for the two ways files go bad."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TitoError(f"notebook not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise TitoError(f"{path} is not a valid notebook (invalid JSON: {e})") from None
    if not isinstance(nb, dict) or nb.get("nbformat") != 4:
        got = nb.get("nbformat") if isinstance(nb, dict) else type(nb).__name__
        raise TitoError(f"{path} is not a version-4 notebook (nbformat {got!r})")
    return nb
