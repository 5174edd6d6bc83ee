"""Rebuild tinytorch_prose.txt from the course's own prose (run from anywhere: python data/corpus/build.py).

The corpus is the markdown cells of every module notebook in source/, in module order, then
README.md: text this project wrote, under its MIT licence. Sections are separated by a blank
line; nothing else is changed. CONTRIBUTING.md is left out: it quotes the solution and
hidden-test markers, which nothing in the student distribution (data/ ships) may contain.
"""
import hashlib
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent / "tinytorch_prose.txt"


def prose(root=ROOT):
    parts = []
    for nb_path in sorted(root.glob("source/*/*.ipynb")):
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
        parts += ["".join(c["source"]).strip() for c in nb["cells"] if c["cell_type"] == "markdown"]
    parts += [(root / name).read_text(encoding="utf-8").strip() for name in ("README.md",)]
    return "\n\n".join(p for p in parts if p) + "\n"


if __name__ == "__main__":
    text = prose()
    OUT.write_text(text, encoding="utf-8")
    data = text.encode("utf-8")
    print(f"{OUT.name}: {len(text):,} characters, {len(data):,} bytes, sha256 {hashlib.sha256(data).hexdigest()}")
