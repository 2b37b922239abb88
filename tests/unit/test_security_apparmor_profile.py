"""AppArmor without a kernel that has it (security/apparmor.py): detection, the profile each flag
chooses, loading once, the profile's text (rendered, compiled by Debian's apparmor_parser without
loading it, and its deny rules matched against the paths they are meant to refuse). No root effects:
the kernel's files are stand-ins under tmp_path; the parser is a fake except for the compile check."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess

import pytest

from minicontainer.security import ProcessSecurity, SecurityError, apparmor, from_dict, prepare, to_dict
from minicontainer.security.options import from_docker_flags


@pytest.fixture
def kernel(tmp_path, monkeypatch):
    """A stand-in for /sys/module/apparmor and /sys/kernel/security/apparmor; ``kernel(True)``
    makes AppArmor "enabled", ``kernel.profiles`` is the list the kernel would show."""
    param = tmp_path / "enabled"
    fs = tmp_path / "securityfs"
    monkeypatch.setattr(apparmor, "ENABLED_PARAM", str(param))
    monkeypatch.setattr(apparmor, "SECURITYFS", str(fs))
    monkeypatch.setattr(apparmor, "_enabled", None)
    monkeypatch.setattr(apparmor, "_ready", set())
    monkeypatch.setenv("MINICONTAINER_STATE_ROOT", str(tmp_path / "state"))

    class K:
        def __call__(self, on: bool, profiles=()):
            param.write_text("Y\n" if on else "N\n")
            fs.mkdir(exist_ok=True)
            self.profiles = list(profiles)
            apparmor._enabled = None
            return self

        @property
        def profiles(self):
            return (fs / "profiles").read_text().splitlines()

        @profiles.setter
        def profiles(self, names):
            (fs / "profiles").write_text("".join(f"{n} (enforce)\n" for n in names))
    return K()


@pytest.fixture
def parser(tmp_path, monkeypatch, kernel):
    """A fake apparmor_parser that "loads" a profile: it records its arguments and adds the name to
    the stand-in profile list, as the kernel would."""
    log = tmp_path / "parser.log"
    fake = tmp_path / "apparmor_parser"
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\n"
                    f"echo '{apparmor.DEFAULT} (enforce)' >> {apparmor.SECURITYFS}/profiles\n")
    fake.chmod(0o755)
    monkeypatch.setattr(apparmor, "PARSER", str(fake))
    return log


def test_enabled_needs_the_parameter_and_securityfs(kernel, tmp_path):
    assert apparmor.enabled() is False                            # neither file
    kernel(False)
    assert apparmor.enabled() is False
    kernel(True)
    assert apparmor.enabled() is True
    os.unlink(tmp_path / "enabled")                                # read once per process: cached
    assert apparmor.enabled() is True
    apparmor._enabled = None
    assert apparmor.enabled() is False
    (tmp_path / "enabled").write_text("Y")
    shutil.rmtree(tmp_path / "securityfs")                        # built in, another LSM booted
    apparmor._enabled = None
    assert apparmor.enabled() is False


@pytest.mark.parametrize("on, opt, privileged, want", [
    (True, None, False, "minicontainer-default"),
    (True, None, True, "unconfined"),                   # Docker: --privileged means unconfined
    (True, "unconfined", False, "unconfined"),
    (True, "my-prof", False, "my-prof"),
    (True, "my-prof", True, "my-prof"),                 # an explicit option wins over --privileged
    (False, None, False, ""),                            # no AppArmor: no profile (Docker's "")
    (False, None, True, ""),
    (False, "unconfined", False, ""),
])
def test_the_profile_each_flag_chooses(kernel, on, opt, privileged, want):
    kernel(on)
    assert apparmor.choose(opt, privileged) == want
    flags = ["apparmor=" + opt] if opt else []
    assert from_docker_flags(security_opt=flags, privileged=privileged)["process"]["apparmorProfile"] == want
    assert from_docker_flags(security_opt=[f"apparmor:{opt}"] if opt else [],
                             privileged=privileged)["process"]["apparmorProfile"] == want     # old form


def test_a_named_profile_without_apparmor_is_a_clear_error(kernel):
    kernel(False)
    with pytest.raises(SecurityError) as exc:
        from_docker_flags(security_opt=["apparmor=docker-default"])
    msg = str(exc.value)
    assert "--security-opt apparmor=docker-default" in msg and "AppArmor is not enabled in this kernel" in msg
    assert "\n" not in msg and exc.value.exit_code == 125
    with pytest.raises(SecurityError, match="not enabled"):
        prepare(ProcessSecurity(apparmor_profile="docker-default"))
    # asking for none is fine, and is no profile at all
    assert prepare(ProcessSecurity(apparmor_profile="unconfined")).apparmor_profile == ""


@pytest.mark.parametrize("opt", ["apparmor=", "apparmor=two words", "apparmor=bad\nname"])
def test_bad_profile_names(kernel, opt):
    kernel(True)
    with pytest.raises(SecurityError) as exc:
        from_docker_flags(security_opt=[opt])
    assert "\n" not in str(exc.value)


def test_a_profile_that_is_not_loaded_says_so_and_how_to_load_it(kernel, parser):
    kernel(True, profiles=["other (complain)"])
    with pytest.raises(SecurityError) as exc:
        prepare(ProcessSecurity(apparmor_profile="my-prof"))
    msg = str(exc.value)
    assert "my-prof is not loaded" in msg and "apparmor_parser -r /etc/apparmor.d/my-prof" in msg, msg
    kernel.profiles = ["my-prof"]
    p = prepare(ProcessSecurity(apparmor_profile="my-prof"))
    assert p.apparmor_profile == "my-prof" and p.summary["apparmor"] == "my-prof"
    assert not parser.exists()                                     # never loads a profile not ours
    assert from_dict(to_dict(p)).apparmor_profile == "my-prof"     # to the container's process


def test_the_default_is_loaded_once_from_a_private_file(kernel, parser, tmp_path):
    kernel(True)
    p = prepare(ProcessSecurity(apparmor_profile=apparmor.DEFAULT))
    assert p.apparmor_profile == apparmor.DEFAULT
    path = tmp_path / "state" / "apparmor" / apparmor.DEFAULT
    assert parser.read_text() == f"-Kr {path}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_text() == apparmor.render()
    prepare(ProcessSecurity(apparmor_profile=apparmor.DEFAULT))    # this process: known
    apparmor._ready.clear()                                         # another process, same boot
    prepare(ProcessSecurity(apparmor_profile=apparmor.DEFAULT))
    assert parser.read_text().count("-Kr") == 1
    path.write_text(path.read_text() + "# an older version's text\n")   # an upgrade: loaded again
    apparmor._ready.clear()
    prepare(ProcessSecurity(apparmor_profile=apparmor.DEFAULT))
    assert parser.read_text().count("-Kr") == 2 and path.read_text() == apparmor.render()


def test_a_missing_or_failing_parser_is_one_line(kernel, monkeypatch, tmp_path):
    kernel(True)
    monkeypatch.setattr(apparmor, "PARSER", str(tmp_path / "no-such-parser"))
    with pytest.raises(SecurityError) as exc:
        prepare(ProcessSecurity(apparmor_profile=apparmor.DEFAULT))
    assert "not found" in str(exc.value) and "apt-get install apparmor" in str(exc.value)
    bad = tmp_path / "bad_parser"
    bad.write_text("#!/bin/sh\necho 'AppArmor parser error: line 3: syntax' >&2\nexit 1\n")
    bad.chmod(0o755)
    monkeypatch.setattr(apparmor, "PARSER", str(bad))
    with pytest.raises(SecurityError) as exc:
        apparmor.load_default()
    assert "parser error: line 3" in str(exc.value) and "\n" not in str(exc.value)


# --- the profile's text ------------------------------------------------------------------------

def test_the_template_renders(tmp_path):
    text = apparmor.render(etc=str(tmp_path), runtime_label="unconfined")
    assert "$" not in text and "profile minicontainer-default flags=(attach_disconnected" in text
    assert "abi <" not in text                                    # no abi/3.0 in that etc
    (tmp_path / "abi").mkdir()
    (tmp_path / "abi" / "3.0").write_text("")
    assert "abi <abi/3.0>," in apparmor.render(etc=str(tmp_path), runtime_label="unconfined")
    named = apparmor.render("other", etc=str(tmp_path), runtime_label="runtime-prof")
    assert "profile other " in named and "signal (send, receive) peer=other," in named
    assert "signal (receive) peer=runtime-prof," in named          # a confined runtime may still stop it
    for rule in ("deny mount,", "deny @{PROC}/sysrq-trigger rwklx,", "deny @{PROC}/kcore rwklx,",
                 "deny /sys/firmware/** rwklx,", "ptrace (trace, tracedby, read, readby) peer=minicontainer-default,"):
        assert rule in text, rule


def _aare(glob: str) -> re.Pattern:
    """An AppArmor path glob as a regex: ``**`` any characters, ``*`` and ``?`` any but '/',
    ``[^…]`` a class, ``{a,b}`` alternatives (apparmor.d(5), "Globbing")."""
    out, i = "", 0
    while i < len(glob):
        c = glob[i]
        if glob.startswith("**", i):
            out, i = out + ".*", i + 2
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            j = glob.index("]", i)
            out += "[" + glob[i + 1:j].replace("/", "\\/") + "]"
            i = j
        elif c == "{":
            j = glob.index("}", i)
            out += "(?:" + "|".join(_aare(a).pattern for a in glob[i + 1:j].split(",")) + ")"
            i = j
        else:
            out += re.escape(c)
        i += 1
    return re.compile(out)


def _denied(text: str, mode: str) -> list[re.Pattern]:
    rules = []
    for m in re.finditer(r"^\s*deny (\S+) (\w+),", text, re.M):
        path, perms = m.groups()
        if mode in perms:
            rules.append(re.compile("^" + _aare(path.replace("@{PROC}", "/proc")).pattern + "$"))
    return rules


@pytest.mark.parametrize("path, denied", [
    ("/proc/sys/kernel/core_pattern", True),       # a host program at every crash
    ("/proc/sys/kernel/modprobe", True),
    ("/proc/sys/kernel/sysrq", True),
    ("/proc/sys/kernel/seccomp/actions_logged", True),
    ("/proc/sys/kernel/sched_child_runs_first", True),
    ("/proc/sys/net/ipv4/ip_forward", True),
    ("/proc/sys/vm/drop_caches", True),
    ("/proc/sysrq-trigger", True),
    ("/proc/kcore", True),
    ("/proc/irq/0/smp_affinity", True),
    ("/proc/sysvipc/shm", True),
    ("/proc/scsi/scsi", True),
    ("/proc/fs/nfsd/threads", True),
    ("/sys/kernel/mm/transparent_hugepage/enabled", True),
    ("/sys/class/net/eth0/mtu", True),
    ("/sys/firmware/acpi/tables/DSDT", True),
    ("/sys/fs/bpf/x", True),
    ("/proc/sys/kernel/shmmax", False),            # the IPC namespace's own limits
    ("/proc/sys/kernel/shm_rmid_forced", False),
    ("/proc/sys/kernel/sem", False),
    ("/proc/sys/kernel/msgmnb", False),
    ("/proc/42/oom_score_adj", False),             # a process's own files
    ("/proc/1/attr/apparmor/current", False),
    ("/sys/fs/cgroup/memory.max", False),          # its cgroup (read-only mounted anyway)
])
def test_the_deny_rules_refuse_writes_where_meant(path, denied):
    rules = _denied(apparmor.render(runtime_label="unconfined"), "w")
    assert any(r.match(path) for r in rules) is denied, path


def test_reads_are_refused_only_where_meant():
    rules = _denied(apparmor.render(runtime_label="unconfined"), "r")
    for path in ("/proc/kcore", "/proc/sysrq-trigger", "/sys/firmware/dmi/tables/DMI",
                 "/sys/kernel/security/apparmor/profiles", "/sys/devices/virtual/powercap/intel-rapl/energy_uj"):
        assert any(r.match(path) for r in rules), path
    for path in ("/proc/cpuinfo", "/proc/self/status", "/proc/sys/kernel/hostname", "/sys/fs/cgroup/cpu.max"):
        assert not any(r.match(path) for r in rules), path


PARSER = shutil.which("apparmor_parser") or next(
    (p for p in ("/usr/sbin/apparmor_parser", "/sbin/apparmor_parser") if os.access(p, os.X_OK)), None)


@pytest.mark.skipif(PARSER is None, reason="apparmor_parser is not installed (Debian's apparmor package; "
                                           "the Makefile's APT_PACKAGES has it)")
@pytest.mark.parametrize("label", ["unconfined", "some-runtime"])
def test_apparmor_parser_compiles_the_profile(tmp_path, label):
    """-Q: do not load into the kernel (this one may have no AppArmor), -K -T: no cache; -S writes
    the compiled policy to stdout, which it does only if the text parses."""
    f = tmp_path / "profile"
    f.write_text(apparmor.render(runtime_label=label))
    p = subprocess.run([PARSER, "-Q", "-K", "-T", "-S", str(f)], capture_output=True)
    assert p.returncode == 0 and len(p.stdout) > 1000, p.stderr.decode()
    f.write_text(apparmor.render(runtime_label=label).replace("deny network alg,", "deny network no-such-family,"))
    p = subprocess.run([PARSER, "-Q", "-K", "-T", "-S", str(f)], capture_output=True)
    assert p.returncode != 0                          # the check can fail


def test_run_help_and_the_oci_features_say_it(kernel, capsys, monkeypatch):
    from minicontainer import cli
    from minicontainer.oci.cli import features
    monkeypatch.setenv("MINICONTAINER_NO_SERVER", "1")
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "apparmor=unconfined|PROFILE" in out and "minicontainer-default" in out, out
    kernel(False)
    assert features()["linux"]["apparmor"] == {"enabled": False}
    kernel(True)
    assert features()["linux"]["apparmor"] == {"enabled": True}
