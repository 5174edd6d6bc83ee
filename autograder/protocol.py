"""What the grader and the grading kernel say to each other, in one place.

Kept apart from `kernel.py` so that a grading job, which only sends cells, does not import
ipykernel and numpy (most of a second per submission).
"""
import re

# first line of each cell the grader sends: the kernel records an instructor cell's names, and
# resets the room and hardens the asserts before a graded cell
INSTRUCTOR_MARK = "# tinytorch-grader: instructor cell"
GRADED_MARK = "# tinytorch-grader: graded cell"
# a graded cell refused because threads of the submission are running; the grader neutralises
# cell In[number] and runs the notebook again
THREADS_MESSAGE = "tinytorch-grader: threads started in In[{number}] are still running"
THREADS_RE = re.compile(r"tinytorch-grader: threads started in In\[(\d+)\] are still running")
# the random markers a graded cell prints when it gets past its visible asserts and to its end
MARKER_PREFIX = "tinytorch-grader "
