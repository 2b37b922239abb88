"""Notebook 08's build exercises fail for the plausible wrong answers (see test_build_wrong.py).

A file of its own so that the notebooks written in parallel do not all edit one list. Each wrong
answer is run by the checker for real (minicontainer-oci create/start, real containers' records)
and must come back "failed", with a message that says what the kernel showed.
"""

import json
import os

import pytest

from minicontainer.course import evaluate

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="exercise checks touch the kernel: need root")


def _config_without_limits(argv):
    """08.1 with every flag but --memory/--pids-limit: the container runs, its cgroup has no limit."""
    return {"ociVersion": "1.0.2", "root": {"path": "rootfs", "readonly": True}, "hostname": "web",
            "process": {"args": list(argv), "cwd": "/tmp", "env": ["PATH=/bin", "GREETING=hello"]},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
            "linux": {"namespaces": [{"type": t} for t in ("pid", "mount", "uts", "ipc", "network")]}}


def _config_shared_net(argv):
    """08.1 without a network namespace (--network host's config): every other field right."""
    cfg = _config_without_limits(argv)
    cfg["linux"]["namespaces"] = [{"type": t} for t in ("pid", "mount", "uts", "ipc")]
    cfg["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 20}}
    return cfg


def _status_from_pid_only(root, cid):
    """08.2 trusting the pid: alive in /proc means running — wrong after pid reuse and for a zombie."""
    with open(os.path.join(root, cid, "state.json")) as f:
        pid = json.load(f)["pid"]
    if not os.path.exists(f"/proc/{pid}"):
        return "stopped"
    return "created" if os.path.exists(os.path.join(root, cid, "exec.fifo")) else "running"


WRONG = [
    ("08.1", _config_without_limits, "memory"),
    ("08.1", _config_shared_net, "net"),
    ("08.2", _status_from_pid_only, "expected 'stopped'"),
]


@pytest.mark.parametrize("ex_id, wrong, says", WRONG, ids=[f"{e}-{f.__name__.strip('_')}" for e, f, _ in WRONG])
def test_wrong_mechanism_fails(ex_id, wrong, says):
    result = evaluate(ex_id, wrong)
    assert result.status == "failed", result
    assert says in result.message, result.message
