"""What the grader and the grading kernel say to each other, in one place.

Kept apart from `kernel.py` so that a grading job, which only sends cells, does not import
ipykernel and numpy (most of a second per submission).
"""
import re

# The instructor's cells (setup, demonstrations, graded tests) never travel as text: the job writes
# them to a file the kernel reads, compiles and deletes when it starts, before any submission code;
# the notebook cell sent for one is this mark, its index in that file and the file's token. The kernel resets the
# room before each, records the names an instructor cell binds, and hardens a graded cell's asserts.
CELL_MARK = "# tinytorch-grader: cell "
CELLS_FILE_ENV = "TINYTORCH_GRADER_CELLS"
# a graded cell refused because threads of the submission are running; the grader neutralises
# cell In[number] and runs the notebook again
THREADS_MESSAGE = "tinytorch-grader: threads started in In[{number}] are still running"
THREADS_RE = re.compile(r"tinytorch-grader: threads started in In\[(\d+)\] are still running")
# the random markers a graded cell prints when it gets past its visible asserts and to its end
MARKER_PREFIX = "tinytorch-grader "
