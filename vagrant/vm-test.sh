#!/bin/bash
# `make vm-test`: the classroom VM, verified for real. Boots the VM from the Vagrantfile (libvirt,
# software emulation, a Debian 12 box built offline by build-local-box.sh unless MC_BOX names one),
# provisions it twice (the second run must print no "changed:" line), reports the guest's cgroup
# mode, checks JupyterLab through the forwarded port, runs the integration tests and every notebook
# inside (the guest is a systemd host: its / is shared, the case `make test`'s second pass imitates),
# checks that the cgroup v2 backend was exercised, destroys the VM and prints the duration. Slow
# (29 min without KVM with notebooks 01 02 only; every notebook adds more): a separate command, not
# part of `make test`.
#
# Environment: MC_VM_WORK (cache: box, wheelhouse, logs; default /var/tmp/minicontainer-vm),
# MC_VM_NOTEBOOKS (numbers, e.g. "01 03"; default: every notebook), MC_BOX (skip the local box
# build and use this box), MC_VM_KEEP=1 (do not destroy the VM, for debugging), MC_BOX_BUILDER
# (path of build-local-box.sh), MC_VM_KIT=DIR (the classroom kit's wheels and packages, provisioned
# with the guest's default route cut), MC_VM_CLOUDINIT=1 (the cloud-init path and the classroom kit instead:
# vagrant/vm-test-cloudinit.sh boots a fresh VM with a NoCloud seed and no network).
set -euo pipefail
if [ "${MC_VM_CLOUDINIT:-0}" = 1 ]; then exec bash "$(dirname "$0")/vm-test-cloudinit.sh"; fi
T0=$(date +%s)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=${MC_VM_WORK:-/var/tmp/minicontainer-vm}
NBS=${MC_VM_NOTEBOOKS:-}           # empty: solve (and so run) every numbered notebook
BUILDER=${MC_BOX_BUILDER:-$ROOT/../shared/tools/vm/build-local-box.sh}
HOST_PKGS="vagrant vagrant-libvirt libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils
           debootstrap dnsmasq-base ebtables iptables fdisk extlinux syslinux-common rsync"
mkdir -p "$W"; LOG=$W/vm-test.log; : > "$LOG"
step() { printf '\n==> [%4ss] %s\n' $(( $(date +%s) - T0 )) "$*" | tee -a "$LOG"; }
fail() { echo "vm-test: FAILED: $*" | tee -a "$LOG" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root (libvirt, debootstrap): run 'sudo make vm-test'"

step "host tools"
missing=""
for p in $HOST_PKGS; do dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "installing:$missing"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# Daemons: on a host without systemd start them by hand, and stop exactly the ones we started.
STARTED=()
start_daemon() {  # name command...
  local name=$1; shift
  if pgrep -x "$name" >/dev/null; then return; fi
  "$@"
  local pid; for _ in $(seq 1 50); do pid=$(pgrep -nx "$name" || true); [ -n "$pid" ] && break; sleep 0.1; done
  [ -n "$pid" ] || fail "$name did not start"
  STARTED+=("$pid"); echo "started $name (pid $pid)"
}
export VAGRANT_DOTFILE_PATH=$W/dot      # never touches a learner's own .vagrant/ in the project
export VAGRANT_DEFAULT_PROVIDER=libvirt
VM_UP=0
# libvirt's NAT network adds LIBVIRT_* chains (iptables, both families) and turns on ip_forward; once
# the daemons we started are gone nothing removes them. Remember the state before, restore it after.
FWD_BEFORE=$(cat /proc/sys/net/ipv4/ip_forward)
HAD_XT_TABLES=$(nft list tables 2>/dev/null | grep -cE '^table ip6? (filter|nat|mangle)$' || true)
HAD_LIBVIRT_FW=$( (iptables-save 2>/dev/null; ip6tables-save 2>/dev/null) | grep -c '^:LIBVIRT_' || true)
remove_libvirt_firewall() {
  local cmd t r c
  for cmd in iptables ip6tables; do
    command -v $cmd >/dev/null || continue
    for t in filter nat mangle; do
      $cmd -t $t -S 2>/dev/null | grep -E '^-A [A-Z]+ .*-j LIBVIRT_' | sed 's/^-A/-D/' |
        while read -r r; do eval "$cmd -t $t $r"; done
      for c in $($cmd -t $t -S 2>/dev/null | awk '/^-N LIBVIRT_/{print $2}'); do $cmd -t $t -F "$c"; done
      for c in $($cmd -t $t -S 2>/dev/null | awk '/^-N LIBVIRT_/{print $2}'); do $cmd -t $t -X "$c"; done
    done
  done
  # the iptables-nft tables themselves, if libvirt's iptables calls created them and they are empty now
  if [ "$HAD_XT_TABLES" = 0 ]; then
    for f in ip ip6; do for t in filter nat mangle; do
      nft list table $f $t 2>/dev/null | grep -qE '^\s+(jump|goto|counter|accept|drop|masquerade|ip |ip6 |meta |ct )' ||
        nft delete table $f $t 2>/dev/null || true
    done; done
  fi
  echo "removed libvirt's firewall chains"
}
cleanup() {
  local rc=$?
  if [ $VM_UP = 1 ] && [ "${MC_VM_KEEP:-0}" != 1 ]; then
    step "destroy the VM"; (cd "${PROJ:-$ROOT}" && vagrant destroy -f) 2>&1 | tee -a "$LOG" || true
  fi
  for pid in "${STARTED[@]}"; do
    kill "$pid" 2>/dev/null && echo "stopped daemon pid $pid"
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
  # pid files of the daemons we stopped (dbus refuses to start next time while its file exists)
  for f in /run/dbus/pid /run/libvirtd.pid /run/virtlogd.pid /run/virtlockd.pid; do
    if [ -f "$f" ] && ! kill -0 "$(cat "$f")" 2>/dev/null; then rm -f "$f"; fi
  done
  if [ ${#STARTED[@]} -gt 0 ]; then
    [ "$HAD_LIBVIRT_FW" = 0 ] && remove_libvirt_firewall
    echo "$FWD_BEFORE" > /proc/sys/net/ipv4/ip_forward
  fi
  local d=$(( $(date +%s) - T0 ))
  echo; echo "vm-test: $([ $rc = 0 ] && echo PASSED || echo FAILED) in $((d / 60))m$((d % 60))s (log: $LOG)" | tee -a "$LOG"
  exit $rc
}
trap cleanup EXIT
# a signal must end the run as a failure: without these, bash runs the EXIT trap with the status of
# the last command that finished (often 0), and a run stopped by hand printed "PASSED"
trap 'exit 143' TERM
trap 'exit 130' INT
if ! systemctl is-active -q libvirtd 2>/dev/null; then
  mkdir -p /run/dbus
  # a pid file left by a dbus-daemon that is gone (an earlier run killed it) makes dbus refuse to start
  if [ -f /run/dbus/pid ] && ! kill -0 "$(cat /run/dbus/pid)" 2>/dev/null; then rm -f /run/dbus/pid; fi
  start_daemon dbus-daemon dbus-daemon --system --fork
  start_daemon virtlogd virtlogd -d
  start_daemon virtlockd virtlockd -d
  start_daemon libvirtd libvirtd -d
fi

if [ -z "${MC_BOX:-}" ]; then
  export MC_BOX=local/debian12 MC_LIBVIRT_DRIVER=${MC_LIBVIRT_DRIVER:-qemu}
  if ! vagrant box list 2>/dev/null | grep -q "^local/debian12 "; then
    if [ ! -s "$W/box/debian12-local.box" ]; then
      step "build the offline box (debootstrap, ~2 min)"
      [ -x "$BUILDER" ] || [ -f "$BUILDER" ] || fail "no box builder at $BUILDER (set MC_BOX_BUILDER or MC_BOX)"
      bash "$BUILDER" "$W/box" >>"$LOG" 2>&1 || fail "box build (see $LOG)"
    fi
    step "vagrant box add local/debian12"
    vagrant box add -f --name local/debian12 "$W/box/debian12-local.box" 2>&1 | tail -1
  fi
fi

if [ -n "${MC_VM_KIT:-}" ]; then
  step "the classroom kit $MC_VM_KIT: its wheels and Debian packages only"
  [ -f "$MC_VM_KIT/KIT-VERSION" ] || fail "MC_VM_KIT=$MC_VM_KIT is not a classroom kit (make classroom-kit)"
  export MC_KIT=$(cd "$MC_VM_KIT" && pwd); unset MC_WHEELHOUSE     # the Vagrantfile takes the kit's
  cat "$MC_KIT/KIT-VERSION"
else
step "wheelhouse for the guest (no package index in there)"
export MC_WHEELHOUSE=$W/wheelhouse
want=$(cat "$ROOT/pyproject.toml" /proc/version | sha256sum | cut -c1-16)
if [ "$(cat "$MC_WHEELHOUSE/.stamp" 2>/dev/null)" != "$want" ]; then
  rm -rf "$MC_WHEELHOUSE"; mkdir -p "$MC_WHEELHOUSE"
  # the guest's Python is Debian 12's 3.11, the same as the host's /usr/bin/python3
  "${MC_VM_PYTHON:-$ROOT/.venv/bin/python}" -m pip wheel -q --disable-pip-version-check \
      -w "$MC_WHEELHOUSE" "$ROOT[course,test]" 'setuptools>=64' wheel >>"$LOG" 2>&1 || fail "pip wheel (see $LOG)"
  rm -f "$MC_WHEELHOUSE"/minicontainer-*.whl     # the guest installs the project editable from source
  echo "$want" > "$MC_WHEELHOUSE/.stamp"
fi
echo "$(ls "$MC_WHEELHOUSE"/*.whl | wc -l) wheels in $MC_WHEELHOUSE"
fi

# a free host port for the forward (8888 may be taken on this host)
export MC_HOST_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# The VM runs a snapshot of the checkout taken now: `vagrant provision` uploads the host's
# provision.sh when it runs, so an edit made to the checkout during the run (a merge) reached the
# guest half-way and broke its second provisioning. Vagrant runs in the snapshot from here on.
if [ -z "${MC_KIT:-}" ] && [ -f "$ROOT/../KIT-VERSION" ]; then export MC_KIT=$(cd "$ROOT/.." && pwd); fi
PROJ=$W/src
rsync -a --delete --exclude .venv/ --exclude build/ --exclude .git/ --exclude '*.egg-info/' \
  --exclude __pycache__/ --exclude .vagrant/ "$ROOT/" "$PROJ/" || fail "snapshot of $ROOT"
echo "snapshot of $ROOT ($(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo 'no git')) in $PROJ"
cd "$PROJ"
step "vagrant validate"
vagrant validate || fail "vagrant validate"
(vagrant destroy -f >/dev/null 2>&1 || true)
step "vagrant up (box $MC_BOX, provider libvirt, driver ${MC_LIBVIRT_DRIVER:-kvm}; first provisioning)"
VM_UP=1
if [ -n "${MC_VM_KIT:-}" ]; then
  # The kit must be enough: boot, cut the guest's way out (its DHCP client stopped without giving up
  # the lease, so it cannot put the route back; the default route deleted), check that the package
  # indexes are out of reach, and only then provision.
  if ! vagrant up --provider libvirt --no-provision 2>&1 | tee "$W/provision0.log" | tee -a "$LOG" | { grep -E '==> lab: (Running|Rsyncing|Machine booted)|[Ee]rror' || true; }; then
    fail "vagrant up --no-provision"
  fi
  step "the guest without a default route"
  vagrant ssh -c 'sudo dhclient -x -pf /run/dhclient.eth0.pid eth0 2>/dev/null; sudo ip route del default 2>/dev/null; ip -4 route' 2>&1 | tr -d '\r' | tee -a "$LOG"
  if vagrant ssh -c 'python3 -c "import urllib.request; urllib.request.urlopen(\"http://deb.debian.org/debian/\", timeout=15)"' >/dev/null 2>&1 ||
     vagrant ssh -c 'python3 -c "import urllib.request; urllib.request.urlopen(\"https://pypi.org/simple/\", timeout=15)"' >/dev/null 2>&1; then
    fail "the guest still reaches a package index: this run would not prove the kit is enough"
  fi
  echo "guest -> deb.debian.org, pypi.org: unreachable"
  step "first provisioning, from the kit only"
  if ! vagrant provision 2>&1 | tee "$W/provision1.log" | tee -a "$LOG" | { grep -E 'provision:|changed:|Open|http://|[Ee]rror' || true; }; then
    fail "vagrant provision (offline, from the kit)"
  fi
  grep -q "from the kit" "$W/provision1.log" || fail "provisioning did not read the kit's packages"
else
if ! vagrant up --provider libvirt 2>&1 | tee "$W/provision1.log" | tee -a "$LOG" | { grep -E 'provision:|changed:|Open|http://|==> lab: (Running|Rsyncing|Machine booted)|[Ee]rror' || true; }; then
  fail "vagrant up"
fi
fi
grep -q "changed:" "$W/provision1.log" || fail "the first provisioning reported no change"

step "second provisioning: must change nothing"
if ! vagrant provision 2>&1 | tee "$W/provision2.log" | tee -a "$LOG" | { grep -E 'provision:|changed:|http://' || true; }; then
  fail "vagrant provision"
fi
if grep "changed:" "$W/provision2.log"; then fail "the second provisioning changed something (above)"; fi
echo "second provisioning: 0 changes"

step "guest cgroup mode"
mode=$(vagrant ssh -c 'stat -fc %T /sys/fs/cgroup; cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null; uname -r' 2>/dev/null | tr -d '\r')
echo "$mode" | tee -a "$LOG"
[ "$(echo "$mode" | head -1)" = cgroup2fs ] || fail "the guest does not boot cgroup v2"
echo "guest cgroup mode: v2"
backend=$(vagrant ssh -c "sudo /opt/minicontainer/.venv/bin/python -c 'from minicontainer.cgroups import default_backend; print(type(default_backend()).__name__)'" 2>/dev/null | tr -d '\r')
echo "minicontainer.cgroups.default_backend() in the guest: $backend"
[ "$backend" = V2Backend ] || fail "default backend in the guest is $backend, not V2Backend"

step "JupyterLab through the forwarded port 127.0.0.1:$MC_HOST_PORT"
url=$(grep -o "http://127.0.0.1:$MC_HOST_PORT/lab/tree/[^ ]*token=[0-9a-f]*" "$W/provision2.log" | tail -1 || true)
[ -n "$url" ] || fail "provisioning printed no URL"
token=${url##*token=}
ok=0
for _ in $(seq 1 30); do
  if python3 -c "import sys,json,urllib.request; print(json.load(urllib.request.urlopen(sys.argv[1], timeout=5))['type'])" \
       "http://127.0.0.1:$MC_HOST_PORT/api/contents/00_a_container_is_just_a_process.ipynb?token=$token&content=0" 2>/dev/null; then ok=1; break; fi
  sleep 2
done
[ $ok = 1 ] || fail "JupyterLab does not answer on the forwarded port"
echo "served notebook 00 on the host's forwarded port"

step "integration tests and notebooks ${NBS:-(all)} inside the VM"
# test_lab (make lab) and test_browser (chromium) are host checks: the VM runs JupyterLab as a
# service instead (checked just above) and has no browser.
vagrant ssh -c "cd /opt/minicontainer && sudo rm -rf build/solved && \
  sudo .venv/bin/python -m minicontainer.course.notebooks solve notebooks build/solved $NBS && \
  sudo env PYTHONPATH=vagrant MC_CGROUP_PROBE_OUT=/tmp/cgroup_probe.json .venv/bin/python -m pytest -p cgroup_probe \
    tests/integration build/solved --deselect tests/integration/test_lab.py --deselect tests/integration/test_browser.py \
    --nbval-lax --nbval-current-env --nbval-sanitize-with tests/notebooks/sanitize.cfg -p no:cacheprovider -rs -q" \
  2>&1 | tr -d '\r' | tee "$W/guest-tests.log" | tee -a "$LOG" | grep -vE '^\.*$' | tail -40
[ "${PIPESTATUS[0]}" = 0 ] || fail "tests inside the VM"
probe=$(vagrant ssh -c 'cat /tmp/cgroup_probe.json' 2>/dev/null | tr -d '\r')
python3 - "$probe" <<'PY' || fail "the cgroup v2 backend was not exercised"
import json, sys
calls = json.loads(sys.argv[1])
v2 = calls["v2"]
print(f"cgroup v2 backend calls in the guest: {sum(v2.values())} (create={v2.get('create', 0)}, "
      f"add={v2.get('add', 0)}, apply={v2.get('apply', 0)}); v1: {sum(calls['v1'].values())}")
sys.exit(0 if v2.get("create", 0) and v2.get("add", 0) else 1)
PY
if [ "${MC_MULTI:-}" = 1 ]; then
  step "multi-host: an overlay network between lab and node2"; bash "$ROOT/vagrant/multihost-test.sh" 2>&1 | tee -a "$LOG"
  [ "${PIPESTATUS[0]}" = 0 ] || fail "multi-host overlay"
fi
step "all checks passed"
