"""The engine's side of notebook 07: a container confined like Docker's, from its ``run`` flags.

The mechanisms are :mod:`minicontainer.security`'s; this module only decides *when* each runs:

1. at ``create`` (:func:`fields`, :func:`prepared`): ``--cap-add``, ``--cap-drop``,
   ``--privileged``, ``--security-opt``, ``--device`` become the OCI fields (capabilities,
   seccomp, device rules and nodes) and are prepared — names to numbers, the seccomp profile to
   its BPF program (cached per profile on disk and in this process) — so a bad value is one line
   and exit 125 before anything exists;
2. right after the container's cgroup is made, before any process joins it (parked.py):
   the device rules (v1 ``devices.deny``/``devices.allow``, v2 a BPF program on the group);
3. in the container's process, after pivot_root, mounts, hostname, working directory and
   terminal, as the last step before exec (standard_init.py; for ``exec`` the OCI runtime's exec
   before it forks into the container's PID namespace, oci/init.py): :func:`in_container` turns the user (``-u``, else the image's
   ``User``, resolved in the container's own /etc) into numbers, and ``security.apply`` does
   rlimits, no_new_privs, seccomp, the bounding set, the ids, capset and the AppArmor profile (at
   exec) in runc's order. (``create`` has loaded our AppArmor profile into the kernel if it was
   missing: ``security.prepare``.)

Rejected alternative: switching the user first and confining after — a non-root process can no
longer drop its bounding set or load a filter without no_new_privs; ``apply`` owns the order.
"""

from __future__ import annotations

from ..errors import ConfigError

#: prepared settings per flags, for this process (a server, or `run` = create + start)
_memo: dict = {}


def _key(cfg) -> tuple:
    return (tuple(cfg.cap_add), tuple(cfg.cap_drop), bool(cfg.privileged), tuple(cfg.security_opt),
            tuple(cfg.devices), cfg.rlimits())


def fields(cfg) -> dict:
    """The OCI-shaped security fields for ``cfg``'s flags (options.from_docker_flags); ConfigError,
    one line, on a bad value."""
    from ..security import SecurityError
    from ..security.options import from_docker_flags
    try:
        return from_docker_flags(cap_add=cfg.cap_add, cap_drop=cfg.cap_drop, privileged=cfg.privileged,
                                 security_opt=cfg.security_opt, devices=cfg.devices)
    except SecurityError as exc:
        raise ConfigError(exc.message, hint=exc.hint) from None


def is_default(cfg) -> bool:
    """No security flag given: Docker's defaults (the server's spare was made with them)."""
    return not (cfg.cap_add or cfg.cap_drop or cfg.privileged or cfg.security_opt or cfg.devices)


def prepared(cfg) -> tuple:
    """(``security.Prepared`` as a dict for the container's process, the OCI fields) for ``cfg``;
    memoized per flags in this process. ConfigError on bad input."""
    k = _key(cfg)
    hit = _memo.get(k)
    if hit is not None:
        return hit
    from ..security import ProcessSecurity, SecurityError, prepare, to_dict
    f = fields(cfg)
    try:
        p = prepare(ProcessSecurity(capabilities=f["process"]["capabilities"],
                                    no_new_privileges=f["process"]["noNewPrivileges"],
                                    seccomp=f["linux"].get("seccomp"),
                                    apparmor_profile=f["process"]["apparmorProfile"],
                                    rlimits=cfg.rlimits()))
    except SecurityError as exc:
        raise ConfigError(exc.message, hint=exc.hint) from None
    d = to_dict(p)
    d["summary"] = {**p.summary, "privileged": f["privileged"],
                    "masked_paths": f["linux"]["maskedPaths"] is None,
                    "devices": f["linux"]["resources"]["devices"]}
    _memo[k] = (d, f)
    return _memo[k]


def summary(cfg) -> dict:
    """What ``inspect`` shows: the effective settings (capability masks, seccomp profile key,
    no_new_privs, device rules, the AppArmor profile)."""
    return prepared(cfg)[0]["summary"]


def device_rules(cfg) -> list | None:
    """The cgroup device rules, None for the default ones."""
    return None if is_default(cfg) else prepared(cfg)[1]["linux"]["resources"]["devices"]


def extra_nodes(cfg) -> list:
    """``--device`` nodes, and with ``--privileged`` every host device, as (host path, container
    path): bind-mounted into the container's /dev before pivot_root (as the default nodes are:
    rootfs._mount_dev)."""
    from ..security.devices import default_nodes, parse_device
    nodes = [list(parse_device(spec)[:2]) for spec in cfg.devices]
    if cfg.privileged:
        # every host device, as Docker's --privileged: the nodes the spec lists (security.options
        # walked /dev once, at create; ocispec.py hands the same list to an OCI runtime)
        skip = {ctr for _host, ctr in nodes} | {n["path"] for n in default_nodes()}
        nodes += [[n["path"], n["path"]] for n in prepared(cfg)[1]["linux"]["devices"] if n["path"] not in skip]
    return nodes


def unmasked(cfg) -> bool:
    """--privileged or --security-opt systempaths=unconfined: no masked or read-only paths."""
    return bool(cfg.privileged) or (cfg.security_opt and prepared(cfg)[1]["linux"]["maskedPaths"] == [])


def load_for_container() -> None:
    """Import what :func:`in_container` and ``security.apply`` need while the host's root is ours
    (a spare's G is forked before the runtime has imported any of it)."""
    import base64  # noqa: F401 - security.from_dict
    import resource  # noqa: F401 - security.apply's setrlimit (--ulimit): a spare's G never imported it
    from .. import rootfs, syscalls  # noqa: F401
    from ..images import userdb  # noqa: F401
    from ..security import apparmor, capabilities, seccomp  # noqa: F401


def in_container(sec: dict, user: str | None, env: dict, root: str = "/"):
    """``sec`` (from :func:`prepared`) with ``user`` resolved to uid, gid and groups in the
    container's /etc — under ``root``: "/" in the container's own process after pivot_root,
    ``/proc/PID/root`` from the host for ``exec`` (userdb's reader follows no symlink either way);
    HOME set when ``env`` has none (root's home for no user, as runc sets it). A non-root user gets
    an empty effective set (Docker's rule). Returns the Prepared."""
    from ..security import from_dict
    p = from_dict(sec)
    if not user:
        from ..images.userdb import home_of
        env.setdefault("HOME", home_of(0, root))
    else:
        from ..errors import from_oserror
        from ..images.userdb import resolve_user
        try:
            uid, gid, groups, home = resolve_user(user, root)
        except OSError as exc:
            raise from_oserror(exc, f"switch to user {user}") from exc
        p.uid, p.gid, p.groups = uid, gid, tuple(groups)
        env.setdefault("HOME", home)
        if uid != 0 and p.caps is not None:
            p.caps = {**p.caps, "effective": 0, "ambient": 0}
    return p
