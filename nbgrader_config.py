"""nbgrader settings for the TinyTorch course.

Run nbgrader from the repository root (or let `tito` do it, which loads this same file).
source/NN_name/NN_name.ipynb is the instructor version; release/ is generated from it.
"""
c = get_config()  # noqa: F821 (injected by traitlets)

c.CourseDirectory.course_id = "tinytorch"
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
# Instructor state (gradebook, submissions, autograded copies) stays out of git.
c.CourseDirectory.db_url = "sqlite:///.nbgrader/gradebook.db"
c.CourseDirectory.submitted_directory = ".nbgrader/submitted"
c.CourseDirectory.autograded_directory = ".nbgrader/autograded"
c.CourseDirectory.feedback_directory = ".nbgrader/feedback"

# What replaces a solution region in the student's notebook.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# A cell that runs longer than this is stopped and its test scores 0.
c.Execute.timeout = 60
