#!/bin/bash
# The classroom kit checked in a minute, without a VM: vagrant/provision.sh (packages and the
# virtual environment; not the JupyterLab service, which needs a booted systemd) runs in a chroot of
# a fresh Debian 12 minbase inside a network namespace of its own — no route anywhere, so every
# package must come from the kit — twice: from the kit's directory (as `vagrant up` with the kit)
# and from a web server on the namespace's loopback (as cloud VMs reading a kit served in the room).
# The VM checks are `sudo make vm-test MC_VM_CLOUDINIT=1` (boots one) and vm-test.sh.
#
# Usage: kit-offline-test.sh KITDIR [ROOTFS]   (root). ROOTFS: a Debian 12 minbase tree to copy
# (default: made with debootstrap in KITDIR/../rootfs-pristine, ~2 min, from Debian's mirror).
# Every mount lives in a mount namespace of its own; the copies are removed at the end.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
KIT=$(cd "${1:?usage: kit-offline-test.sh KITDIR [ROOTFS]}" && pwd)
BASE=${2:-$(dirname "$KIT")/rootfs-pristine}
[ "$(id -u)" = 0 ] || { echo "kit-offline-test: needs root (chroot, namespaces)" >&2; exit 1; }
for f in minicontainer.tar.gz debs/Packages wheelhouse; do
  [ -e "$KIT/$f" ] || { echo "kit-offline-test: $KIT has no $f (make classroom-kit)" >&2; exit 1; }
done
if [ ! -x "$BASE/usr/bin/python3" ]; then
  unshare -m --propagation private debootstrap --variant=minbase --include=python3,ca-certificates \
    bookworm "$BASE" > "$BASE.log" 2>&1 || { echo "kit-offline-test: debootstrap failed ($BASE.log)" >&2; exit 1; }
fi
WORK=$(mktemp -d /var/tmp/mc-kit-offline.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
rc=0
for mode in directory http; do
  R=$WORK/$mode; cp -a "$BASE" "$R"
  mkdir -p "$R/opt/minicontainer" "$R/kit"
  tar -xzf "$KIT/minicontainer.tar.gz" -C "$R/opt/minicontainer" --strip-components=1 --no-same-owner
  if [ $mode = directory ]; then
    env_=(MC_APT_REPO=/kit/debs MC_WHEELHOUSE=/kit/wheelhouse)
  else
    env_=(MC_APT_REPO=http://127.0.0.1:8000/debs MC_WHEELHOUSE=http://127.0.0.1:8000/wheelhouse/)
  fi
  echo "== provision.sh in a fresh Debian 12 with no network, the kit as a $mode"
  # unshare -n: only a loopback (down until we raise it); -m: the mounts die with the namespace
  unshare -n -m --propagation private bash -euo pipefail -c '
    R=$1 KIT=$2 mode=$3; shift 3
    ip link set lo up
    mount --bind "$KIT" "$R/kit"; mount -o remount,bind,ro "$R/kit"
    mount -t proc proc "$R/proc"; mount --rbind /dev "$R/dev"; mount -t sysfs sys "$R/sys"
    echo "routes in here: $(ip -4 route | wc -l); deb.debian.org: $(getent hosts deb.debian.org >/dev/null && echo resolves || echo unknown)"
    if [ $mode = http ]; then
      python3 -m http.server -b 127.0.0.1 -d "$KIT" 8000 >/dev/null 2>&1 & srv=$!
      trap "kill $srv" EXIT
      for _ in $(seq 1 50); do python3 -c "import urllib.request; urllib.request.urlopen(\"http://127.0.0.1:8000/\")" 2>/dev/null && break; sleep 0.1; done
    fi
    chroot "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root MC_NO_SERVICE=1 "$@" \
      bash /opt/minicontainer/vagrant/provision.sh
    echo "-- a second run must change nothing"
    out=$(chroot "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root MC_NO_SERVICE=1 "$@" \
      bash /opt/minicontainer/vagrant/provision.sh); echo "$out"
    ! echo "$out" | grep -q "changed:"
    chroot "$R" /opt/minicontainer/.venv/bin/python -c "import minicontainer, jupyterlab, pytest, nbval, pyroute2; print(\"imports: ok (jupyterlab\", jupyterlab.__version__ + \")\")"
    chroot "$R" sh -c "busybox --help | head -1; skopeo --version; umoci --version; nft --version"
    chroot "$R" /opt/minicontainer/.venv/bin/minicontainer --help | head -3
  ' _ "$R" "$KIT" "$mode" "${env_[@]}" && echo "== $mode: PASSED" || { echo "== $mode: FAILED"; rc=1; }
  rm -rf "$R"
done
exit $rc
