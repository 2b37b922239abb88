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
