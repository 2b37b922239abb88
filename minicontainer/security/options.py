"""Docker's security flags → the OCI config's fields. Introduced in notebook 07.

One pure function, so the engine's CLI only parses and the OCI runtime only reads config.json:

    from_docker_flags(cap_add=["NET_ADMIN"], security_opt=["no-new-privileges"], devices=["/dev/fuse"])
    → {"process": {"capabilities": {...}, "noNewPrivileges": True,
                   "apparmorProfile": "minicontainer-default" | "unconfined" | NAME | ""},
       "linux": {"seccomp": {...}, "devices": [...], "resources": {"devices": [...]},
                 "maskedPaths": None | [], "readonlyPaths": None | []},
       "privileged": False}

``"maskedPaths": None`` means "the runtime's defaults"; ``[]`` means none (``--privileged`` or
``--security-opt systempaths=unconfined``). ``"apparmorProfile": ""``: no profile, the kernel has no
AppArmor (the only input besides the flags: ``apparmor.enabled()``, read once per process).
"""

from __future__ import annotations

from . import apparmor
from . import capabilities as caps_mod
from . import devices as dev_mod
from . import seccomp as sc
from ._error import SecurityError

_TRUE = {"": True, "true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _split(opt: str) -> tuple[str, str | None]:
    """``key=value``; Docker still accepts the old ``key:value`` form."""
    if "=" in opt:
        k, v = opt.split("=", 1)
    elif ":" in opt:
        k, v = opt.split(":", 1)
    else:
        k, v = opt, None
    return k.strip().lower(), v


def from_docker_flags(*, cap_add=(), cap_drop=(), privileged: bool = False, security_opt=(),
                      devices=(), uid: int = 0) -> dict:
    """``--cap-add``, ``--cap-drop``, ``--privileged``, ``--security-opt`` (``no-new-privileges[=bool]``,
    ``seccomp=unconfined|builtin|FILE.json``, ``systempaths=unconfined``, ``apparmor=unconfined|PROFILE``,
    ``label=disable``) and ``--device HOST[:CTR][:rwm]`` → OCI-shaped fields (see the module doc).
    ``uid``: the container's user (a non-root user gets an empty effective set). SecurityError, one
    line, on anything unknown."""
    caps = caps_mod.from_flags(cap_add, cap_drop, privileged=privileged, uid=uid)
    nnp = False
    seccomp_opt: str | None = None
    apparmor_opt: str | None = None
    unmask = privileged
    for opt in security_opt or ():
        if not isinstance(opt, str):
            raise SecurityError(f"--security-opt {opt!r}: not a string", hint="e.g. --security-opt no-new-privileges")
        k, v = _split(opt)
        if k == "no-new-privileges":
            if (v or "").lower() not in _TRUE:
                raise SecurityError(f"--security-opt {opt}: not a boolean", hint="no-new-privileges[=true|false]")
            nnp = _TRUE[(v or "").lower()]
        elif k == "seccomp":
            if not v:
                raise SecurityError(f"--security-opt {opt}: no profile", hint="seccomp=unconfined or seccomp=/path/profile.json")
            seccomp_opt = v
        elif k == "systempaths" and v == "unconfined":
            unmask = True
        elif k == "apparmor":
            if not v:
                raise SecurityError(f"--security-opt {opt}: no profile", hint="apparmor=unconfined or apparmor=PROFILE")
            apparmor_opt = v
        elif k == "label" and v == "disable":
            pass      # no SELinux confinement is applied: asking for none is fine
        else:
            raise SecurityError(f"--security-opt {opt}: not supported",
                                hint="no-new-privileges, seccomp=unconfined|FILE.json, systempaths=unconfined, "
                                     "apparmor=unconfined|PROFILE")
    if privileged:
        seccomp = None          # Docker: --privileged wins over any seccomp profile
    else:
        seccomp = sc.from_option(seccomp_opt or "builtin", caps)
    nodes = dev_mod.default_nodes()
    rules = [{"allow": True, "type": "a", "access": "rwm"}] if privileged else dev_mod.default_rules()
    for path in dev_mod.host_devices() if privileged else ():
        try:
            nodes.append(dev_mod.host_node(path)[0])
        except SecurityError:
            pass                                 # gone since the walk
    for spec in devices or ():
        node, rule = dev_mod.from_host(spec)
        nodes = [n for n in nodes if n["path"] != node["path"]] + [node]
        rules.append(rule)
    linux = {"devices": nodes, "resources": {"devices": rules},
             "maskedPaths": [] if unmask else None, "readonlyPaths": [] if unmask else None}
    if seccomp is not None:
        linux["seccomp"] = seccomp
    return {"process": {"capabilities": caps, "noNewPrivileges": nnp,
                        "apparmorProfile": apparmor.choose(apparmor_opt, privileged)},
            "linux": linux, "privileged": bool(privileged)}
