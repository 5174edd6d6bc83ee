"""Grading TinyTorch submissions with nbgrader's model: locked cells restored, hidden tests run."""
