"""The ``minicontainer network`` verbs (create, ls, inspect, rm, connect, disconnect): their
handlers. Their options are rows of the CLI's one table (minicontainer/commands.py); cli.py's
``_network_*`` call these, which only parse and call nets.py, and errors are MiniContainerErrors (one line, exit code 125) like every other verb's."""

from __future__ import annotations

import json


def _vni(text: str):
    try:
        return int(text)
    except ValueError:
        return text                       # store.new_record names it: "invalid VNI 'x'"


def _create(a) -> int:
    from ..errors import ConfigError
    from . import nets
    peers = list(a.peer)
    if a.peers_file:
        try:
            with open(a.peers_file) as f:
                peers += [ln.split("#")[0].strip() for ln in f if ln.split("#")[0].strip()]
        except OSError as exc:
            raise ConfigError(f"--peers-file {a.peers_file}: {exc.strerror}") from None
    if a.driver == "overlay" and not peers and not a.local:
        raise ConfigError("an overlay network needs --peer IP (or --local IP for a one-host overlay)")
    rec = nets.create(a.name, driver=a.driver, subnet=a.subnet, gateway=a.gateway,
                      vni=_vni(a.vni) if a.vni is not None else None, peers=peers, local=a.local)
    print(rec["id"])
    return 0


def _ls(a) -> int:
    from . import nets
    recs = nets.ls()
    if a.quiet:
        for r in recs:
            print(r["name"])
        return 0
    print(f"{'NETWORK ID':<14}{'NAME':<20}{'DRIVER':<9}{'SUBNET':<18}{'GATEWAY':<16}VNI")
    for r in recs:
        print(f"{r['id'][:12]:<14}{r['name']:<20}{r['driver']:<9}{r['subnet']:<18}{r['gateway']:<16}"
              f"{r.get('vni', '')}")
    return 0


def _inspect(a) -> int:
    from . import nets
    print(json.dumps([nets.inspect(n) for n in a.name], indent=2))
    return 0


def _rm(a) -> int:
    from ..errors import NetworkError
    from . import nets
    for name in a.name:
        left = nets.remove(name)
        if left:
            raise NetworkError(f"network rm {name}: left behind: {', '.join(left)}")
        print(name)
    return 0


def _connect(a) -> int:
    from . import nets
    print(nets.connect(a.network, a.container))
    return 0


def _disconnect(a) -> int:
    from . import nets
    nets.disconnect(a.network, a.container)
    return 0
