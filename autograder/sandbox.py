"""The box a submission's kernel runs in: bubblewrap where it exists, resource limits always.

The kernel command is `[bwrap ... --] python -m autograder.sandbox LIMITS -- -f CONNECTION_FILE`.
This module's `main` sets the resource limits (inside the box, where RLIMIT_NPROC counts the
box's own processes), asks to be killed with its parent, and then runs the grading kernel in the
same process (one interpreter start per kernel, not two).

Under bubblewrap the kernel sees only what it needs, read-only: the system's and the virtual
environment's Python, the grading package (reference modules before the one graded, stubs from
it on), the grading kernel's code and the course data. Its scratch directory is the only place
it can write. It has no network (a new, empty network namespace) and its own PID namespace,
so every process it starts dies with it. Without bubblewrap only the limits apply, and
`sandbox_warning()` says so.
"""
from __future__ import annotations

import ctypes
import functools
import os
import resource
import shutil
import signal
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class Limits:
    """What one submission may use. Times in seconds, sizes in bytes."""
    cell_timeout: float = 60.0  # wall clock for one cell
    notebook_timeout: float = 600.0  # wall clock for the whole notebook, re-runs included
    cpu_seconds: int = 600  # CPU time of the kernel process
    memory_bytes: int = 2 * 1024**3  # address space of the kernel process
    file_bytes: int = 64 * 1024**2  # largest file it may write
    processes: int = 64  # processes and threads it may add
    output_bytes: int = 2 * 1024**2  # outputs kept from the whole notebook
    open_files: int = 512

    def to_dict(self) -> dict:
        return asdict(self)


@functools.cache
def bwrap_path() -> str | None:
    """bubblewrap, if it is installed and can make namespaces here (TINYTORCH_SANDBOX=limits: never)."""
    path = shutil.which("bwrap") if os.environ.get("TINYTORCH_SANDBOX") != "limits" else None
    if path is None:
        return None
    import subprocess
    probe = subprocess.run([path, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"],
                           capture_output=True)
    return path if probe.returncode == 0 else None


def sandbox_warning() -> str | None:
    if bwrap_path():
        return None
    return ("warning: bubblewrap (`bwrap`) is not available, so submissions run with resource limits only: "
            "they can read what this user can read and reach the network. Install the Debian package "
            "`bubblewrap` (`make setup` does it when run as root).")


def _python_roots() -> list[Path]:
    """The directories the kernel's Python needs: the interpreter's installation and the venv."""
    roots = {Path(sys.base_prefix).resolve(), Path(sys.prefix)}
    roots.add(Path(os.path.realpath(sys.executable)).parent.parent)
    return sorted(roots)


def job_uid() -> int | None:
    """The user a job's kernel runs as when the grader is root: one of its own, never root.

    Unique per job (from the job's PID), so RLIMIT_NPROC counts exactly that job's processes
    and no two submissions can signal or read each other's processes."""
    return 1_000_000 + os.getpid() if os.geteuid() == 0 else None


def kernel_argv(limits: Limits, scratch: Path, package_dir: Path, data_dir: Path | None,
                use_bwrap: bool, uid: int | None = None) -> list[str]:
    """The kernel command for a kernelspec; jupyter_client fills in {connection_file}."""
    grader_lib = Path(__file__).resolve().parent.parent  # holds the autograder package
    kernel = ["-f", "{connection_file}"]  # the grading kernel's arguments
    wrapper = [sys.executable, "-m", "autograder.sandbox",
               *(f"--{k}={v}" for k, v in limits.to_dict().items())]
    if not use_bwrap:
        return wrapper + ["--"] + kernel
    box = [bwrap_path() or "bwrap", "--die-with-parent", "--new-session", "--hostname", "grader",
           "--proc", "/proc", "--dev", "/dev"]
    if uid is not None:  # root: namespaces without a user namespace; the wrapper then drops to uid
        box += ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        wrapper.append(f"--uid={uid}")
    else:  # an ordinary user: bubblewrap maps them to nobody in a user namespace of its own
        box += ["--unshare-all", "--uid", "65534", "--gid", "65534"]
    binds = [("--ro-bind", d, d) for d in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc")
             if os.path.exists(d)]
    binds += [("--ro-bind", str(root), str(root)) for root in _python_roots()]
    binds += [("--ro-bind", str(grader_lib / "autograder"), "/grader/lib/autograder"),
              ("--ro-bind", str(package_dir), "/grader/package"), ("--bind", str(scratch), str(scratch))]
    if data_dir is not None and data_dir.is_dir():
        binds.append(("--ro-bind", str(data_dir), "/grader/data"))
        box += ["--setenv", "TINYTORCH_DATA", "/grader/data"]
    made: set[str] = set()
    for kind, src, dest in binds:
        # bubblewrap would make the directories on the way 0700, closed to the kernel's own user
        for parent in reversed(Path(dest).parents[:-1]):
            if str(parent) not in made:
                made.add(str(parent))
                box += ["--perms", "0755", "--dir", str(parent)]
        box += [kind, src, dest]
    box += ["--chdir", str(scratch)]
    # ipykernel would take its parent in another PID namespace for dead; --die-with-parent does that job
    box += ["--setenv", "PYTHONPATH", "/grader/package:/grader/lib", "--setenv", "HOME", str(scratch),
            "--setenv", "TMPDIR", str(scratch), "--unsetenv", "JPY_PARENT_PID"]
    box += ["--remount-ro", "/"]  # the box's own root (and its /tmp) is read-only: only scratch is writable
    return box + ["--"] + wrapper + ["--"] + kernel


def kernel_env(scratch: Path, package_dir: Path, data_dir: Path | None) -> dict[str, str]:
    """The environment the kernel starts with (bubblewrap overrides the paths inside the box)."""
    grader_lib = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TERM")}
    env.update({
        "PYTHONPATH": f"{package_dir}{os.pathsep}{grader_lib}",
        "HOME": str(scratch), "IPYTHONDIR": str(scratch / ".ipython"), "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(scratch / ".matplotlib"), "JUPYTER_RUNTIME_DIR": str(scratch),
        "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0",
        # one core per submission: fair to the others, and numpy's answers do not depend on the machine
        "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    })
    if data_dir is not None:
        env["TINYTORCH_DATA"] = str(data_dir)
    return env


# --- process hygiene ------------------------------------------------------------------------------

def _prctl(option: int, value: int) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def become_subreaper() -> None:
    """Orphaned descendants (daemons) are re-parented to this process, so it can kill them."""
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def die_with_parent() -> None:
    """SIGKILL this process when the thread that started it exits."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            tree.setdefault(ppid, []).append(int(entry))
    return tree


def kill_descendants(pid: int | None = None) -> int:
    """SIGKILL every descendant of pid (default: this process); returns how many were signalled."""
    root = os.getpid() if pid is None else pid
    killed = 0
    for _ in range(5):  # a dying process's children are re-parented to us; go round again
        tree, found, todo = _children(), [], [root]
        while todo:
            for child in tree.get(todo.pop(), []):
                found.append(child)
                todo.append(child)
        if not found:
            break
        for child in found:
            try:
                os.kill(child, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        for child in found:
            try:
                os.waitpid(child, os.WNOHANG)
            except ChildProcessError:
                pass
    return killed


# --- the exec wrapper -----------------------------------------------------------------------------

def _set_limits(limits: Limits, uid: int | None) -> None:
    def cap(which, value):
        value = int(value)
        soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))

    cap(resource.RLIMIT_CPU, limits.cpu_seconds)
    cap(resource.RLIMIT_AS, limits.memory_bytes)
    cap(resource.RLIMIT_FSIZE, limits.file_bytes)
    cap(resource.RLIMIT_NOFILE, limits.open_files)
    cap(resource.RLIMIT_CORE, 0)
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    # RLIMIT_NPROC counts every process (and thread) of the user, so the allowance is added to
    # what that user runs now; root is exempt from it, which is why a root grader drops to uid
    me = os.getuid()
    running = sum(1 for e in os.listdir("/proc") if e.isdigit() and _owned_by(e, me))
    cap(resource.RLIMIT_NPROC, running + limits.processes)


def _owned_by(pid: str, uid: int) -> bool:
    try:
        return os.stat(f"/proc/{pid}").st_uid == uid
    except OSError:
        return False


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--")
    fields = {f: type(getattr(Limits, f)) for f in Limits.__dataclass_fields__}
    values, uid = {}, None
    for opt in argv[:split]:
        key, _, value = opt.removeprefix("--").partition("=")
        if key == "uid":
            uid = int(value)
        else:
            values[key] = fields[key](value)
    _set_limits(Limits(**values), uid)
    die_with_parent()  # the kernel dies with the grading job that started it
    sys.argv = [sys.argv[0], *argv[split + 1:]]
    sys.modules["debugpy"] = None  # the grading kernel needs no debugger (its import: 60 ms per kernel)
    from .kernel import main as kernel_main
    kernel_main()


if __name__ == "__main__":
    main()
