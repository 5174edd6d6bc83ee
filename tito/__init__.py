"""tito: the TinyTorch command line for maintainers, students and instructors."""
