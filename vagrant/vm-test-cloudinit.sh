#!/bin/bash
# `sudo make vm-test MC_VM_CLOUDINIT=1`: the cloud-init path and the classroom kit, verified for
# real. A fresh "cloud VM" (the local Debian 12 box with cloud-init added, vagrant/cloudinit-box.sh)
# boots under qemu with a NoCloud seed (vagrant/cloud-seed.sh) carrying vagrant/cloud-init.yaml, the
# project and the classroom kit (make classroom-kit: debs/, wheelhouse/) — and no network at all:
# qemu's user network with restrict=on lets nothing out of the guest, so every package must come
# from the kit. Then, as a learner would: wait for cloud-init, open the SSH tunnel it printed, check
# JupyterLab answers through it (and listens on the guest's 127.0.0.1 only), run the setup a second
# time (it must change nothing), run the integration tests and the notebooks inside, stop the VM.
#
# Why qemu directly and not Vagrant: a cloud VM has no Vagrant; Vagrant's shell provisioner and
# rsync would do the work cloud-init must do alone. It also needs no libvirt daemons, no bridge and
# no firewall rules on the host (qemu's user network lives in the qemu process).
#
# Environment: MC_VM_WORK (cache: box, kit, seed, logs; default /var/tmp/minicontainer-vm-cloudinit),
# MC_VM_NOTEBOOKS (numbers; default every notebook), MC_VM_PYTEST (pytest arguments instead of the
# integration tests + notebooks, e.g. "tests/integration/test_run.py" for a smoke test),
# MC_VM_KIT_VIA=http (the project and the kit from a web server on the host, as a room serves them,
# instead of on the seed image), MC_VM_KEEP=1 (leave the VM running: its pid and ssh command are printed), MC_CI_BOX (a .box file
# to start from instead of building one), MC_VM_ACCEL (tcg, or kvm), MC_BOX_BUILDER, MC_CPUS, MC_MEMORY.
set -euo pipefail
T0=$(date +%s)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=${MC_VM_WORK:-/var/tmp/minicontainer-vm-cloudinit}
NBS=${MC_VM_NOTEBOOKS:-}
BUILDER=${MC_BOX_BUILDER:-$ROOT/../shared/tools/vm/build-local-box.sh}
# vagrant: not to run it (a cloud VM has none) but the shared box builder copies Vagrant's insecure
# public key from the package (a fresh host without it failed at "box build" in 0 s)
HOST_PKGS="qemu-system-x86 qemu-utils debootstrap fdisk extlinux syslinux-common genisoimage dpkg-dev openssh-client vagrant"
mkdir -p "$W"; LOG=$W/vm-test.log; : > "$LOG"
step() { printf '\n==> [%4ss] %s\n' $(( $(date +%s) - T0 )) "$*" | tee -a "$LOG"; }
fail() { echo "vm-test (cloud-init): FAILED: $*" | tee -a "$LOG" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root (debootstrap, a loop device): run 'sudo make vm-test MC_VM_CLOUDINIT=1'"

step "host tools"
missing=""
for p in $HOST_PKGS; do dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "installing:$missing"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

QEMU_PID=""; TUNNEL_PID=""; HTTP_PID=""; SSH=(false)
cleanup() {
  local rc=$?
  [ -n "$TUNNEL_PID" ] && kill "$TUNNEL_PID" 2>/dev/null && echo "stopped the ssh tunnel (pid $TUNNEL_PID)"
  if [ -n "$QEMU_PID" ]; then
    if [ "${MC_VM_KEEP:-0}" = 1 ]; then
      echo "VM kept: qemu pid $QEMU_PID; ssh: ${SSH[*]}"
    else
      step "stop the VM"
      # a clean shutdown first (the guest's journal), then the process we started
      "${SSH[@]}" 'sudo systemctl poweroff' >/dev/null 2>&1 || true
      for _ in $(seq 1 60); do kill -0 "$QEMU_PID" 2>/dev/null || break; sleep 1; done
      kill "$QEMU_PID" 2>/dev/null && echo "stopped qemu (pid $QEMU_PID)"
      for _ in $(seq 1 30); do kill -0 "$QEMU_PID" 2>/dev/null || break; sleep 0.2; done
      rm -f "$W/run.qcow2" "$W/qemu.pid"
    fi
  fi
  [ -n "$HTTP_PID" ] && kill "$HTTP_PID" 2>/dev/null && echo "stopped the kit's web server (pid $HTTP_PID)"
  local d=$(( $(date +%s) - T0 ))
  echo; echo "vm-test (cloud-init): $([ $rc = 0 ] && echo PASSED || echo FAILED) in $((d / 60))m$((d % 60))s (log: $LOG)" | tee -a "$LOG"
  exit $rc
}
trap cleanup EXIT
trap 'exit 143' TERM; trap 'exit 130' INT    # stopped by hand: never report PASSED (it did)

step "the cloud VM's disk: the local Debian 12 box + cloud-init"
BASE=$W/debian12-cloudinit.qcow2
if [ ! -s "$BASE" ]; then
  boxfile=${MC_CI_BOX:-$W/box/debian12-local.box}
  if [ ! -s "$boxfile" ]; then
    [ -f "$BUILDER" ] || fail "no box builder at $BUILDER (set MC_BOX_BUILDER or MC_CI_BOX)"
    bash "$BUILDER" "$W/box" >>"$LOG" 2>&1 || fail "box build (see $LOG)"
    rm -rf "$W/box/rootfs" "$W/box/boxpkg" "$W/box/mnt"
  fi
  bash "$ROOT/vagrant/cloudinit-box.sh" "$boxfile" "$BASE" 2>&1 | tee -a "$LOG" | tail -2
  [ "${PIPESTATUS[0]}" = 0 ] || fail "adding cloud-init to the box (see $LOG)"
fi
ls -lh "$BASE" | awk '{print $5, $NF}'

step "the classroom kit (the guest gets no network: everything comes from here)"
KIT_BOX=none bash "$ROOT/vagrant/classroom-kit.sh" "$W/kit" 2>&1 | tee -a "$LOG" | grep -E '^==>|wheels|packages|files' || true
[ "${PIPESTATUS[0]}" = 0 ] || fail "make classroom-kit (see $LOG)"

mkdir -p "$W/ssh"; chmod 700 "$W/ssh"
[ -f "$W/ssh/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C minicontainer-vm-test -f "$W/ssh/id_ed25519"
GUESTFWD=""
if [ "${MC_VM_KIT_VIA:-seed}" = http ]; then
  # The room's web server: the kit served on the host's loopback, which the guest reaches as
  # 10.0.2.100:8000 through qemu's guestfwd (one relay process per connection) and nothing else.
  step "the NoCloud seed: cloud-init.yaml only; the project and the kit from a web server"
  HTTP_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  python3 -m http.server -b 127.0.0.1 -d "$W/kit" "$HTTP_PORT" > "$W/http.log" 2>&1 & HTTP_PID=$!
  cat > "$W/relay.py" <<'PY'
import os, socket, sys, threading
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
def up():
    while b := os.read(0, 65536):
        s.sendall(b)
    s.shutdown(socket.SHUT_WR)
threading.Thread(target=up, daemon=True).start()
while b := s.recv(65536):
    os.write(1, b)
PY
  GUESTFWD=",guestfwd=tcp:10.0.2.100:8000-cmd:python3 $W/relay.py $HTTP_PORT"
  MC_SOURCE=http://10.0.2.100:8000/minicontainer.tar.gz MC_KIT=http://10.0.2.100:8000 \
    MC_SSH_KEY=$W/ssh/id_ed25519.pub bash "$ROOT/vagrant/cloud-seed.sh" "$W/seed" | tee -a "$LOG"
else
  step "the NoCloud seed: cloud-init.yaml + the project + the kit"
  MC_SEED_KIT=$W/kit MC_SSH_KEY=$W/ssh/id_ed25519.pub bash "$ROOT/vagrant/cloud-seed.sh" "$W/seed" | tee -a "$LOG"
fi
[ "${PIPESTATUS[0]}" = 0 ] || fail "cloud-seed"

step "boot (qemu, user network with restrict=on: no way out of the guest)"
SSH_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
rm -f "$W/run.qcow2"; qemu-img create -q -f qcow2 -b "$BASE" -F qcow2 "$W/run.qcow2"
# software emulation unless asked (MC_VM_ACCEL=kvm): a /dev/kvm that exists may still fail (nested
# virtualisation here: "failed to set MSR 0x10a"), as vm-test.sh's MC_LIBVIRT_DRIVER=qemu assumes
accel=${MC_VM_ACCEL:-tcg}
qemu-system-x86_64 -name minicontainer-cloudinit-test -machine q35,accel=$accel -cpu max \
  -smp "${MC_CPUS:-2}" -m "${MC_MEMORY:-4096}" \
  -drive file="$W/run.qcow2",if=virtio,format=qcow2 \
  -drive file="$W/seed/seed.iso",media=cdrom,readonly=on \
  -netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$SSH_PORT-:22$GUESTFWD" -device virtio-net-pci,netdev=n0 \
  -display none -serial file:"$W/console.log" -daemonize -pidfile "$W/qemu.pid" || fail "qemu did not start"
QEMU_PID=$(cat "$W/qemu.pid"); echo "qemu pid $QEMU_PID (accel $accel), guest ssh on 127.0.0.1:$SSH_PORT"
# Debian's cloud-init creates the default user "debian" with our key and passwordless sudo
SSH_OPTS=(-i "$W/ssh/id_ed25519" -p "$SSH_PORT" -o BatchMode=yes -o StrictHostKeyChecking=no
          -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=10)
SSH=(ssh "${SSH_OPTS[@]}" debian@127.0.0.1)
ok=0
for _ in $(seq 1 120); do
  kill -0 "$QEMU_PID" 2>/dev/null || fail "qemu exited (console: $W/console.log)"
  if "${SSH[@]}" true 2>/dev/null; then ok=1; break; fi
  sleep 5
done
[ $ok = 1 ] || fail "no ssh as the cloud-init user after 10 min (console: $W/console.log)"
echo "ssh as debian (the user and key came from the seed's user-data)"

step "cloud-init: the lab provisions itself (apt from the kit's debs, pip from its wheelhouse)"
"${SSH[@]}" 'sudo cloud-init status --wait >/dev/null; sudo cloud-init status --long' 2>&1 | tee -a "$LOG" || true
"${SSH[@]}" 'sudo cat /var/log/cloud-init-output.log' > "$W/cloud-init-output.log" 2>&1 || true
grep -E 'provision:|changed:|minicontainer-cloud|ssh -N|http://127|FAILED' "$W/cloud-init-output.log" | tee -a "$LOG"
"${SSH[@]}" 'sudo cloud-init status' 2>/dev/null | grep -q 'status: done' || fail "cloud-init did not finish cleanly ($W/cloud-init-output.log)"
grep -q 'installed Debian packages' "$W/cloud-init-output.log" || fail "provisioning installed no Debian package: the kit was not used"
grep -q 'from the kit' "$W/cloud-init-output.log" || fail "apt did not read the kit"

step "the guest had no way out (so everything came from the kit)"
"${SSH[@]}" 'ip -4 route; python3 -c "import urllib.request; urllib.request.urlopen(\"http://deb.debian.org/debian/\", timeout=15)" 2>&1 | tail -1' | tee -a "$LOG" || true
if "${SSH[@]}" 'python3 -c "import urllib.request; urllib.request.urlopen(\"http://151.101.2.132/\", timeout=15)"' 2>/dev/null; then
  fail "the guest reached the internet: this run does not prove the kit is enough"
fi
echo "guest -> internet: unreachable (by name and by address)"

step "JupyterLab: bound to the guest's 127.0.0.1, reached through the SSH tunnel"
"${SSH[@]}" 'sudo ss -Hltn sport = :8888' | tee -a "$LOG"
"${SSH[@]}" 'sudo ss -Hltn sport = :8888' | awk '{print $4}' | grep -qvE '^(127\.0\.0\.1|\[::1\]):8888$' &&
  fail "JupyterLab listens on more than the guest's loopback"
hint=$(grep -o 'ssh -N -L 8888:127.0.0.1:8888 [^ ]*' "$W/cloud-init-output.log" | tail -1)
[ -n "$hint" ] || fail "cloud-init printed no tunnel command"
url=$("${SSH[@]}" 'sudo cat /etc/minicontainer/lab-url' | grep -o 'http://127.0.0.1:8888/[^ ]*token=[0-9a-f]*')
[ -n "$url" ] || fail "no URL in /etc/minicontainer/lab-url"
token=${url##*token=}
LPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo "printed: $hint   (here: port $LPORT, through qemu's forward)"
ssh "${SSH_OPTS[@]}" -N -L "$LPORT:127.0.0.1:8888" debian@127.0.0.1 & TUNNEL_PID=$!
ok=0
for _ in $(seq 1 30); do
  if python3 -c "import sys,json,urllib.request; print(json.load(urllib.request.urlopen(sys.argv[1], timeout=5))['type'])" \
       "http://127.0.0.1:$LPORT/api/contents/00_a_container_is_just_a_process.ipynb?token=$token&content=0" 2>/dev/null; then ok=1; break; fi
  sleep 2
done
[ $ok = 1 ] || fail "JupyterLab does not answer through the tunnel"
code=$(python3 -c "import sys,urllib.request,urllib.error
try: urllib.request.urlopen(sys.argv[1], timeout=5); print(200)
except urllib.error.HTTPError as e: print(e.code)" "http://127.0.0.1:$LPORT/api/contents/00_a_container_is_just_a_process.ipynb?token=wrong&content=0")
[ "$code" = 403 ] || fail "a wrong token got HTTP $code, not 403"
echo "served notebook 00 through the tunnel; a wrong token gets 403"
kill "$TUNNEL_PID"; TUNNEL_PID=""

step "the setup a second time: must change nothing"
"${SSH[@]}" 'sudo /usr/local/sbin/minicontainer-cloud-setup' > "$W/setup2.log" 2>&1 || fail "second setup ($W/setup2.log)"
if grep "changed:" "$W/setup2.log"; then fail "the second run changed something (above)"; fi
echo "second setup: 0 changes"

step "guest cgroup mode"
"${SSH[@]}" 'stat -fc %T /sys/fs/cgroup; uname -r' | tee -a "$LOG"
backend=$("${SSH[@]}" "sudo /opt/minicontainer/.venv/bin/python -c 'from minicontainer.cgroups import default_backend; print(type(default_backend()).__name__)'")
echo "minicontainer.cgroups.default_backend() in the guest: $backend"
[ "$backend" = V2Backend ] || fail "default backend in the guest is $backend, not V2Backend"

if [ -n "${MC_VM_PYTEST:-}" ]; then
  step "tests inside the VM: $MC_VM_PYTEST"
  cmd="cd /opt/minicontainer && sudo .venv/bin/python -m pytest $MC_VM_PYTEST -p no:cacheprovider -rs -q"
else
  step "integration tests and notebooks ${NBS:-(all)} inside the VM"
  # test_lab (make lab) and test_browser (chromium) are host checks, as in vm-test.sh
  cmd="cd /opt/minicontainer && sudo rm -rf build/solved && \
    sudo .venv/bin/python -m minicontainer.course.notebooks solve notebooks build/solved $NBS && \
    sudo .venv/bin/python -m pytest tests/integration build/solved --deselect tests/integration/test_lab.py \
      --deselect tests/integration/test_browser.py --nbval-lax --nbval-current-env \
      --nbval-sanitize-with tests/notebooks/sanitize.cfg -p no:cacheprovider -rs -q"
fi
"${SSH[@]}" "$cmd" 2>&1 | tr -d '\r' | tee "$W/guest-tests.log" | tee -a "$LOG" | grep -vE '^\.*$' | tail -40
[ "${PIPESTATUS[0]}" = 0 ] || fail "tests inside the VM"
step "all checks passed"
