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


# --- the table-driven `run` parser (commands.parse_run) must read a line exactly as argparse -------

_AGREE = [
    ["busybox"],
    ["busybox", "true"],
    ["--rm", "--network", "none", "busybox", "true"],
    ["-it", "--rm", "busybox", "sh"],
    ["-dit", "--name", "web", "-p", "8080:80", "-p", "127.0.0.1:53:53/udp", "nginx"],
    ["-de", "A=1", "-eB=2", "--env=C=-3", "busybox", "env"],
    ["--memory=64m", "--cpus", "0.5", "--pids-limit", "10", "busybox", "sh", "-c", "echo --rm -d"],
    ["-v", "/tmp:/mnt:ro", "--volume=/a:/b", "--read-only", "--init", "-w", "/work", "-u", "1000:1000", "img"],
    ["--pull", "never", "--cgroupns=host", "--userns", "remap", "-P", "busybox"],
    ["--cap-add", "NET_ADMIN", "--cap-drop=ALL", "--security-opt", "seccomp=unconfined", "--device",
     "/dev/fuse", "--privileged", "--dns", "1.1.1.1", "--dns-search", "example", "--hostname", "h", "b"],
    ["-p8080:80", "-ti", "busybox", "-d", "--rm"],
    ["-", "x"],
]

_REFUSED = [                     # left to argparse: help, mistakes, abbreviations, `--`
    [], ["--rm"], ["-h", "busybox"], ["--help"], ["--mem", "64m", "b"], ["--nope", "b"], ["-x", "b"],
    ["--memory"], ["--memory", "--rm", "b"], ["-e", "-x", "b"], ["--pull", "sometimes", "b"],
    ["--rm=yes", "b"], ["-e=A=1", "b"], ["--", "busybox"], ["-m", "1", "b"], ["busybox", "--", "x"],
]


@pytest.mark.parametrize("verb", ["run", "create"])
@pytest.mark.parametrize("words", _AGREE, ids=lambda w: " ".join(w) or "(none)")
def test_run_parser_agrees_with_argparse(verb, words):
    from minicontainer.commands import parse_run
    fast = parse_run(words)
    assert fast is not None, "a plain line must not need argparse"
    slow = vars(cli.build_parser(verb).parse_args([verb, *words]))
    assert {k: v for k, v in slow.items() if k not in ("verb", "func")} == fast


@pytest.mark.parametrize("words", _REFUSED, ids=lambda w: " ".join(w) or "(none)")
def test_run_parser_leaves_the_rest_to_argparse(words, capsys):
    from minicontainer.commands import parse_run
    assert parse_run(words) is None
    try:
        slow = vars(cli.build_parser("run").parse_args(["run", *words]))
    except SystemExit:
        return                                    # argparse's own error or help, as before
    assert slow.get("verb") == "run"              # (an abbreviation argparse accepts)


def test_run_parser_random_lines_agree():
    """Lines made at random from the table: whenever the fast parser reads one, argparse reads the
    same values; whenever it refuses, argparse refuses too or reads it its own way."""
    import random
    from minicontainer.commands import RUN_OPTIONS, parse_run, takes_value
    rnd = random.Random(1234)
    values = ["x", "64m", "-y", "A=1", "none", "missing", "host", "=z", ""]
    for _ in range(3000):
        words = []
        for _ in range(rnd.randint(0, 5)):
            flags, options = rnd.choice(RUN_OPTIONS)
            f = rnd.choice(flags)
            v = rnd.choice(list(options["choices"]) + values if "choices" in options else values)
            if not takes_value(options):
                words.append(f if rnd.random() < 0.9 else f + "=" + v)
            elif len(f) == 2 and rnd.random() < 0.3:
                words.append(f + v)
            elif f.startswith("--") and rnd.random() < 0.3:
                words.append(f + "=" + v)
            else:
                words += [f, v]
        if rnd.random() < 0.2 and len(words) > 1 and words[0].startswith("-") and not words[0].startswith("--"):
            words[0] = words[0] + rnd.choice("ditP")        # a cluster
        words += rnd.choice([[], ["busybox"], ["busybox", "sh", "-c", "--rm"], ["b", "--", "-x"]])
        fast = parse_run(words)
        try:
            slow = vars(cli.build_parser("run").parse_args(["run", *words]))
        except SystemExit:
            assert fast is None, words
            continue
        if fast is not None:
            assert {k: v for k, v in slow.items() if k not in ("verb", "func")} == fast, words
