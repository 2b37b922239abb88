"""AppArmor: a path-based profile per container, the LSM layer of notebook 07 (Docker's
``docker-default``; the OCI runtime spec's ``process.apparmorProfile``).

Three places, as Docker and runc split them:

1. the engine chooses (:func:`choose`): ``minicontainer-default`` when the kernel has AppArmor,
   ``unconfined`` for ``--privileged`` or ``--security-opt apparmor=unconfined``, ``NAME`` for
   ``apparmor=NAME``; nothing at all on a kernel without AppArmor (Docker's ``AppArmorProfile: ""``);
2. before the container exists (:func:`ensure`, from ``security.prepare``): our default profile is
   rendered from ``profiles/minicontainer-default`` and loaded with ``apparmor_parser -Kr`` if the
   kernel does not list it yet — once per boot, not once per container; another name must already be
   loaded (one line, exit 125, saying how to load it);
3. in the container's process, with the rest of ``security.apply``. The OCI runtime writes
   ``exec NAME`` to ``/proc/self/attr/apparmor/exec`` (:func:`change_onexec`, runc's way): the
   kernel switches the profile as it loads the container's program. The engine's containers switch
   just before their execve instead (:func:`change_profile`): an exec that changes the profile makes
   AppArmor clear the parent-death signal (its ``bprm_committing_creds`` hook), and a container must
   die with its monitor. Only an execve runs confined that would have anyway; it is then an exec
   *inside* the profile, so the profile must allow it (ours has ``file,``). With ``--init`` tini is
   confined the same way and the command it execs inherits the profile.

Rejected: ``aa-exec`` as the container's first program (one more host binary inside the container's
PID namespace, and the profile would be chosen by a path the container controls); libapparmor
through ctypes (its ``aa_change_onexec`` is this one write).
"""

from __future__ import annotations

import os

from ._error import SecurityError

DEFAULT = "minicontainer-default"
UNCONFINED = "unconfined"

#: what runc checks (libcontainer/apparmor): the module's switch and its file system
ENABLED_PARAM = "/sys/module/apparmor/parameters/enabled"
SECURITYFS = "/sys/kernel/security/apparmor"
PARSER = "apparmor_parser"
#: the parser looks ABIs up here; our profile pins 3.0 when the system has it (moby does the same:
#: under ABI 4 a bare ``network,`` no longer covers Unix sockets)
ETC = "/etc/apparmor.d"
TEMPLATE = os.path.join(os.path.dirname(__file__), "profiles", DEFAULT)

_enabled: bool | None = None
_ready: set[str] = set()          # profiles known to be loaded, in this process


def enabled() -> bool:
    """Does this kernel enforce AppArmor? runc's test: the module's ``enabled`` parameter reads Y and
    its securityfs directory exists (a kernel built with AppArmor but booted with another LSM has
    the first, not the second). Read once per process."""
    global _enabled
    if _enabled is None:
        try:
            with open(ENABLED_PARAM, "rb") as f:
                on = f.read(1) == b"Y"
        except OSError:
            on = False
        _enabled = on and os.path.isdir(SECURITYFS)
    return _enabled


def _not_enabled(what: str) -> SecurityError:
    return SecurityError(f"{what}: AppArmor is not enabled in this kernel",
                         hint=f"{ENABLED_PARAM} must read Y; leave the option out, or use apparmor=unconfined")


def check_name(name: str, what: str = "AppArmor profile") -> str:
    """A profile name as the kernel's attr files take it: one line, printable, no spaces."""
    if not isinstance(name, str) or not name or len(name) > 255 or any(c.isspace() or not c.isprintable()
                                                                         for c in name):
        raise SecurityError(f"{what} {name!r}: not a profile name",
                            hint="one word, as /sys/kernel/security/apparmor/profiles lists it")
    return name


def choose(option: str | None, privileged: bool = False) -> str:
    """The profile for ``--security-opt apparmor=OPTION`` (None: not given) and ``--privileged``:
    a name, ``unconfined``, or "" for none (a kernel without AppArmor). Docker's rules: an explicit
    option wins, then --privileged means unconfined, then the default. SecurityError when a named
    profile is asked for and the kernel has no AppArmor."""
    if option is not None:
        check_name(option, "--security-opt apparmor")
    if not enabled():
        if option not in (None, UNCONFINED):
            raise _not_enabled(f"--security-opt apparmor={option}")
        return ""
    if option is not None:
        return option
    return UNCONFINED if privileged else DEFAULT


def _runtime_label() -> str:
    """The profile this process runs under, "unconfined" if none (its own signals to the container
    must be allowed by the container's profile: moby's DaemonProfile)."""
    for path in ("/proc/self/attr/apparmor/current", "/proc/self/attr/current"):
        try:
            with open(path) as f:
                label = f.read().strip()
        except OSError:
            continue
        return label.rsplit(" (", 1)[0] or UNCONFINED
    return UNCONFINED


def render(name: str = DEFAULT, *, etc: str = ETC, runtime_label: str | None = None) -> str:
    """The profile's text from the template: its name, the ABI line when ``etc`` has ABI 3.0, and a
    signal rule for the runtime's own profile when the runtime itself is confined."""
    from string import Template
    check_name(name)
    label = _runtime_label() if runtime_label is None else runtime_label
    with open(TEMPLATE) as f:
        text = f.read()
    abi = ("abi <abi/3.0>," if os.path.exists(os.path.join(etc, "abi", "3.0"))
           else "# (no abi/3.0 on this system: the parser's default ABI)")
    peer = "" if label in ("", UNCONFINED) else f"\n  signal (receive) peer={check_name(label)},"
    return Template(text).substitute(name=name, runtime_peer=peer, preamble=abi)


def loaded(name: str) -> bool:
    """Is ``name`` among the kernel's profiles? (``NAME (enforce)`` per line; names may hold spaces.)"""
    try:
        with open(os.path.join(SECURITYFS, "profiles"), "rb") as f:
            listing = f.read().decode(errors="replace")
    except OSError:
        return False
    return any(line.rsplit(" (", 1)[0] == name for line in listing.splitlines())


def _profile_file():
    from .. import paths
    return paths.state_root() / "apparmor" / DEFAULT


def load_default() -> str:
    """Render our profile, keep it in the state root (0600: root's alone, as everything the runtime
    writes) and load it with ``apparmor_parser -Kr`` (replace; -K: no cache written to /etc or
    /var/cache). Returns the file's path. SecurityError, one line, if the parser is missing or
    refuses."""
    import shutil
    import subprocess
    from .. import private
    text = render()
    path = _profile_file()
    private.make_dir(path.parent)
    private.write(path, text)
    # sbin too: a `sudo` or a service may run us with a PATH without it
    parser = shutil.which(PARSER, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))
    if parser is None:
        raise SecurityError(f"load AppArmor profile {DEFAULT}: {PARSER} not found",
                            hint="install it (Debian/Ubuntu: apt-get install apparmor), or run with "
                                 "--security-opt apparmor=unconfined")
    p = subprocess.run([parser, "-Kr", str(path)], capture_output=True, text=True)
    if p.returncode != 0:
        why = " ".join((p.stderr or p.stdout).split())[:300] or f"exit {p.returncode}"
        raise SecurityError(f"load AppArmor profile {DEFAULT} from {path}: {PARSER} -Kr: {why}",
                            hint="see `dmesg | grep apparmor`; or run with --security-opt apparmor=unconfined")
    return str(path)


def _current_copy_matches(text: str) -> bool:
    try:
        with open(_profile_file()) as f:
            return f.read() == text
    except OSError:
        return False


def ensure(name: str) -> str:
    """Make sure the container can get ``name`` (before anything is forked): our default is loaded
    now if the kernel does not list it — or lists a copy older than this version's text (the state
    root is a tmpfs: it and the kernel's policy both start empty at boot); any other name must be
    loaded already. "" and ``unconfined`` need nothing (``unconfined`` on a kernel without AppArmor
    is no profile at all: "" is returned). Returns the name to apply."""
    if name in ("", UNCONFINED):
        return name if enabled() else ""
    check_name(name)
    if name in _ready:
        return name
    if not enabled():
        raise _not_enabled(f"AppArmor profile {name}")
    if name == DEFAULT:
        if not (loaded(name) and _current_copy_matches(render())):
            load_default()
    elif not loaded(name):
        raise SecurityError(f"AppArmor profile {name} is not loaded in the kernel",
                            hint=f"load it first (apparmor_parser -r /etc/apparmor.d/{name}); "
                                 f"loaded ones are listed in {SECURITYFS}/profiles")
    _ready.add(name)
    return name


# --- in the container's process (imports nothing: after pivot_root the package is out of reach) ---

PROC_SUPER_MAGIC = 0x9FA0


def _attr(name: str) -> str:
    """The task's own attr file: the AppArmor-specific one (Linux 5.8+) or the shared older one."""
    new = f"/proc/thread-self/attr/apparmor/{name}"
    return new if os.path.exists(new) else f"/proc/thread-self/attr/{name}"


def _write_attr(name: str, value: str) -> None:
    path = _attr(name)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError as exc:
        raise SecurityError(f"AppArmor: open {path}", err=exc.errno,
                            hint="is /proc mounted in the container?") from None
    try:
        # a file that only looks like the attr file (something mounted over /proc: runc's
        # CVE-2019-16884) would take the write and leave the process unconfined
        from .. import syscalls
        if syscalls.fstatfs_type(fd) != PROC_SUPER_MAGIC:
            raise SecurityError(f"AppArmor: {path} is not on procfs",
                                hint="something is mounted over the container's /proc")
        os.write(fd, value.encode())
    except OSError as exc:
        raise SecurityError(f"AppArmor: write {value!r} to {path}", err=exc.errno,
                            hint="is the profile loaded? (/sys/kernel/security/apparmor/profiles)") from None
    finally:
        os.close(fd)


def change_onexec(name: str) -> None:
    """libapparmor's ``aa_change_onexec``: ``name`` from this process's next execve on."""
    _write_attr("exec", "exec " + name)


def change_profile(name: str) -> None:
    """libapparmor's ``aa_change_profile``: ``name`` now, for this thread (the engine's containers,
    the last step before their execve; see ``security.apply``)."""
    _write_attr("current", "changeprofile " + name)


def current() -> str:
    """This process's label as the kernel reports it (``minicontainer-default (enforce)``)."""
    with open(_attr("current")) as f:
        return f.read().strip()
