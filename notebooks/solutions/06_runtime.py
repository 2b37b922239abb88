# Solutions for notebook 06. Try the exercises first!

# %% Exercise 06.1
# Exercise 06.1 — docker_exit_code(status): a waitpid status as docker's exit code
import os

def docker_exit_code(status: int) -> int:
    """Exited with N → N; killed by signal N → 128 + N."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)

# %% Exercise 06.2
# Exercise 06.2 — hostname_seen(name): the hostname a container started with --hostname sees
from minicontainer import runtime

def hostname_seen(name: str) -> str:
    """runtime.run returns Result(exit_code, stdout, stderr); rm=True is the default."""
    return runtime.run("busybox", ["hostname"], hostname=name).stdout.strip()


# %% Exercise 06.3
import os


def init(argv: list[str]) -> int:
    """PID 1 of a container: start argv, reap every child that ends (orphans re-parented to us
    included), and return argv's exit code (128 + N if a signal N killed it) once it ends."""
    child = os.fork()
    if child == 0:
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    while True:
        pid, status = os.waitpid(-1, 0)      # any child: ours, or an orphan handed to PID 1
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            return code if code >= 0 else 128 - code
