"""The ``minicontainer network`` verbs (create, ls, inspect, rm, connect, disconnect): argparse
definitions and handlers. cli.py calls :func:`add_parsers`; the handlers only parse and call
nets.py, and errors are MiniContainerErrors (one line, exit code 125) like every other verb's."""

from __future__ import annotations

import json


def add_parsers(sub) -> None:
    n = sub.add_parser("network", help="manage user-defined networks", description="manage user-defined networks")
    n.set_defaults(func=lambda a: n.print_help() or 0)
    ns = n.add_subparsers(dest="network_verb", metavar="COMMAND")
    c = ns.add_parser("create", help="create a bridge or overlay network")
    c.add_argument("-d", "--driver", default="bridge", help="bridge (default) or overlay")
    c.add_argument("--subnet", metavar="CIDR")
    c.add_argument("--gateway", metavar="IP", help="bridge only (default: the subnet's first address)")
    c.add_argument("--peer", action="append", default=[], metavar="IP",
                   help="overlay: another host's underlay address (repeatable)")
    c.add_argument("--peers-file", metavar="FILE", help="overlay: peers, one address a line")
    c.add_argument("--local", metavar="IP", help="overlay: this host's underlay address (default: "
                                                 "the source address of the route to the first peer)")
    c.add_argument("--vni", type=_vni, metavar="N", help="overlay: VXLAN network id (default: lowest free from 4096)")
    c.add_argument("name")
    c.set_defaults(func=_create)
    v = ns.add_parser("ls", help="list networks")
    v.add_argument("-q", "--quiet", action="store_true")
    v.set_defaults(func=_ls)
    v = ns.add_parser("inspect", help="a network's record, address plan and containers as JSON")
    v.add_argument("name", nargs="+")
    v.set_defaults(func=_inspect)
    v = ns.add_parser("rm", help="remove networks (refused while containers are attached)")
    v.add_argument("name", nargs="+")
    v.set_defaults(func=_rm)
    for verb, f, h in (("connect", _connect, "plug a running container into a network (one more ethN)"),
                       ("disconnect", _disconnect, "unplug a container from a network")):
        v = ns.add_parser(verb, help=h)
        v.add_argument("network")
        v.add_argument("container")
        v.set_defaults(func=f)


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
                      vni=a.vni, peers=peers, local=a.local)
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
