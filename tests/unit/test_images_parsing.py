"""minicontainer.images without root: names, overlay options, the Containerfile parser, digests."""

import pytest

from minicontainer.errors import ConfigError
from minicontainer.images import normalize_ref, overlay_options, tree_digest
from minicontainer.images.builder import _command, _env_pairs, parse_containerfile


def test_normalize_ref():
    assert normalize_ref("busybox") == "busybox:latest"
    assert normalize_ref("my/app:1.0") == "my/app:1.0"
    for bad in ("", "Busybox", "a b", "x:", ":tag"):
        with pytest.raises(ConfigError):
            normalize_ref(bad)


def test_overlay_options_order_and_refusals():
    assert overlay_options(["/l/top", "/l/base"], "/c/upper", "/c/work") == \
        "lowerdir=/l/top:/l/base,upperdir=/c/upper,workdir=/c/work"
    assert overlay_options(["/a", "/b"]) == "lowerdir=/a:/b"
    with pytest.raises(ConfigError, match="separators"):
        overlay_options(["/a:b"], "/u", "/w")
    with pytest.raises(ConfigError, match="workdir"):
        overlay_options(["/a"], "/u")
    with pytest.raises(ConfigError):
        overlay_options([])


def test_parse_containerfile():
    text = "# comment\nFROM busybox\nRUN echo a \\\n  && echo b\nenv A=1 B=\"two words\"\nCMD [\"sh\"]\n"
    ins = parse_containerfile(text)
    assert [i.keyword for i in ins] == ["FROM", "RUN", "ENV", "CMD"]
    assert " ".join(ins[1].args.split()) == "echo a && echo b" and ins[1].line == 3
    assert _env_pairs(ins[2].args) == [("A", "1"), ("B", "two words")]
    assert _env_pairs("KEY some value") == [("KEY", "some value")]
    assert _command('["sh", "-c", "x"]') == ["sh", "-c", "x"]
    assert _command("echo hi") == ["/bin/sh", "-c", "echo hi"]


@pytest.mark.parametrize("text,match", [
    ("RUN echo\n", "first instruction must be FROM"),
    ("FROM busybox\nADD x /\n", "line 2: unsupported instruction 'ADD'"),
    ("FROM busybox\nRUN\n", "RUN needs an argument"),
    ("", "FROM"),
])
def test_parse_containerfile_errors(text, match):
    with pytest.raises(ConfigError, match=match):
        parse_containerfile(text)


def test_bad_json_form():
    with pytest.raises(ConfigError, match="bad JSON form"):
        _command('["sh", 1]')


def test_tree_digest_is_content_addressed(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        (d / "etc").mkdir(parents=True)
        (d / "etc/hostname").write_text("x\n")
    assert tree_digest(a) == tree_digest(b)          # same content, other paths and times
    (b / "etc/hostname").write_text("y\n")
    assert tree_digest(a) != tree_digest(b)


def test_text_progress_bar():
    import io

    from minicontainer.images.importer import TextProgress
    out = io.StringIO()
    bar = TextProgress(out, width=10)
    bar("1/2 abc", 50, 100)
    bar("1/2 abc", 50, 100)                          # same percentage: not redrawn
    bar("done", 100, 100)
    assert out.getvalue() == ("\rimport 1/2 abc            [#####-----]  50%"
                              "\rimport done               [##########] 100%\n")


def test_config_only_instructions_set_what_run_reads():
    from minicontainer.images.containerfile import apply_config
    cfg = {"Env": ["PATH=/bin", "APP=web"], "Cmd": ["sh"]}
    for kw, args in (("USER", "${APP}:1000"), ("LABEL", 'team="the course" v=1'), ("LABEL", "v=2"),
                     ("EXPOSE", "80 53/udp 8080/tcp"), ("STOPSIGNAL", "SIGQUIT")):
        apply_config(kw, args, cfg)
    assert cfg["User"] == "web:1000"
    assert cfg["Labels"] == {"team": "the course", "v": "2"}
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}, "8080/tcp": {}}
    assert cfg["StopSignal"] == "SIGQUIT"
    for kw, args, words in (("EXPOSE", "http", "EXPOSE 'http'"), ("EXPOSE", "70000", "70000"),
                            ("EXPOSE", "80/sctp", "80/sctp"), ("STOPSIGNAL", "SIGNOPE", "SIGNOPE"),
                            ("USER", "a:b:c", "user"), ("LABEL", "=x", "LABEL")):
        with pytest.raises(ConfigError, match=words):
            apply_config(kw, args, dict(cfg))
    parse_containerfile("FROM busybox\nUSER nobody\nLABEL a=b\nEXPOSE 80\nSTOPSIGNAL 3\n")


def test_arg_lines():
    from minicontainer.images.containerfile import parse_arg
    assert [i.keyword for i in parse_containerfile("ARG BASE=busybox\nFROM ${BASE}\nARG V\n")] == ["ARG", "FROM", "ARG"]
    assert parse_arg("V") == ("V", None) and parse_arg("V=1=2") == ("V", "1=2") and parse_arg("V=") == ("V", "")
    with pytest.raises(ConfigError, match="FROM"):
        parse_containerfile("ARG V=1\nRUN true\n")
    for bad in ("1V", "A-B=1", "=x"):
        with pytest.raises(ConfigError, match="ARG"):
            parse_arg(bad)
