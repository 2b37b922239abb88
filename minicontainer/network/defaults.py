"""The default bridge's settings (the engine-wide knobs of notebook 05's network), read once from
the environment. Apart from the package's __init__ so that its parts (links, store) can read them
without importing the package that imports them.
"""

import os

#: Default subnet: avoids Docker's 172.17.0.0/16 and the usual VM NAT ranges
#: (10.0.2.0/24 VirtualBox/QEMU user, 192.168.121.0/24 vagrant-libvirt, 192.168.122.0/24 libvirt)
#: and podman's 10.88.0.0/16.
DEFAULT_SUBNET = os.environ.get("MINICONTAINER_SUBNET", "10.209.0.0/24")
DEFAULT_BRIDGE = os.environ.get("MINICONTAINER_BRIDGE", "mc0")
#: MTU of the bridge and the veth pairs. Docker uses 1500; loopback uses 65536. With 1500, container →
#: container TCP reached ~0.6× host loopback on this machine (iperf3, bench/net_throughput.py), with
#: 65535 ~0.9×: fewer, larger segments through veth and bridge. Traffic leaving the host through NAT
#: still works: the host answers oversized forwarded segments with ICMP "fragmentation needed" (it is
#: itself the next hop, so nothing filters it) and the container's path MTU drops to the real link's.
#: Set MINICONTAINER_MTU=1500 to behave exactly like docker's default bridge.
DEFAULT_MTU = int(os.environ.get("MINICONTAINER_MTU", "65535"))
