"""Grading TinyTorch submissions: nbgrader's model (locked cells and hidden tests from the
instructor's notebook), run sandboxed, in parallel, resumably. See CONTRIBUTING.md, "The autograder"."""
