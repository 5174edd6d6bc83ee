"""The course model: modules and where they live (project), the one-way build (build) and the
student's workspace (student). The command line (tito/) and the autograder import it."""
