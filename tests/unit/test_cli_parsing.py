"""The CLI's parsing and validation (no root, nothing created)."""

import pytest

from minicontainer import cli
from minicontainer.errors import ConfigError
from minicontainer.runtime.config import ContainerConfig


@pytest.fixture(autouse=True)
def _in_process(monkeypatch):
    """These tests read the parser's output in this process: never forward to a running server."""
    monkeypatch.setenv("MINICONTAINER_NO_SERVER", "1")


def test_every_verb_has_help(capsys):
    for v in sorted(cli._VERBS):
        with pytest.raises(SystemExit) as e:
            cli.main([v, "--help"])
        assert e.value.code == 0
        assert f"usage: minicontainer {v}" in capsys.readouterr().out


def test_full_parser_lists_every_verb(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert all(v in out for v in cli._VERBS)


def test_run_flags_reach_the_config():
    a = cli.build_parser("run").parse_args(
        ["run", "--rm", "-e", "A=1", "-w", "/tmp", "-u", "1000:1000", "--memory", "64m", "--cpus", "0.5",
         "--network", "none", "-v", "/tmp:/mnt:ro", "--read-only", "--init", "busybox", "sh", "-c", "echo -e hi"])
    cfg = cli._config(a)
    assert cfg.command == ["sh", "-c", "echo -e hi"] and cfg.env == ["A=1"] and cfg.user == "1000:1000"
    assert cfg.limits().memory == 64 * 1024 * 1024 and cfg.rm and cfg.read_only and cfg.init


@pytest.mark.parametrize("kw", [dict(env=["NOEQUALS"]), dict(user="bob:x:y"), dict(memory="lots"),
                                dict(cpus="-1"), dict(name="bad/name"), dict(workdir="rel"),
                                dict(volumes=["relative"])])
def test_bad_config_is_a_config_error(kw):
    with pytest.raises(ConfigError):
        ContainerConfig("busybox", ["true"], network="none", **kw).validate()


def test_signal_names():
    from minicontainer.runtime.process import parse_signal
    assert parse_signal("TERM") == 15 and parse_signal("SIGKILL") == 9 and parse_signal("9") == 9
    for bad in ("NOPE", "0", "999"):
        with pytest.raises(ConfigError):
            parse_signal(bad)
