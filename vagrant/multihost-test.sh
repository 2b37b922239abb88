#!/bin/bash
# The multi-host step of `make vm-test` (issue 20), run when MC_MULTI=1: boots the second machine
# "node2" next to "lab" (both provisioned with the private network 192.168.56.0/24: lab .11, node2
# .12), creates the same overlay network on both (each names the other as its --peer), starts a
# container on node2 and pings it by name from a container on lab across the private network, then
# removes both and checks that no link or nft table of ours is left on either machine.
# Called from vagrant/vm-test.sh with the project root as the working directory.
set -euo pipefail
MC="sudo /opt/minicontainer/.venv/bin/python -m minicontainer.cli"
SUB=10.231.80.0/24
vagrant up node2 --provider libvirt
vagrant ssh lab -c "$MC network create --driver overlay --subnet $SUB --vni 4400 --peer 192.168.56.12 mh"
vagrant ssh node2 -c "$MC network create --driver overlay --subnet $SUB --vni 4400 --peer 192.168.56.11 mh"
vagrant ssh node2 -c "$MC run -d --name mhweb --network mh busybox sleep 300"
out=$(vagrant ssh lab -c "$MC run --rm --network mh busybox ping -c2 -W3 mhweb" 2>&1 | tr -d '\r') || true
echo "$out"
vagrant ssh node2 -c "$MC rm -f mhweb; $MC network rm mh" || true
vagrant ssh lab -c "$MC network rm mh" || true
for m in lab node2; do
  left=$(vagrant ssh $m -c "ip -o link | grep -E 'mcbr-|mcx-|mcu' ; sudo nft list tables | grep minicontainer_net_" 2>/dev/null | tr -d '\r' || true)
  [ -z "$left" ] || { echo "multihost: left on $m: $left" >&2; exit 1; }
done
echo "$out" | grep -q '2 packets received' || { echo "multihost: no ping across the overlay" >&2; exit 1; }
echo "multihost: ping by name across the overlay between lab and node2"
