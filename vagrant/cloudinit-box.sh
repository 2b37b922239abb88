#!/bin/bash
# Turns the local Debian 12 box (../shared/tools/vm/build-local-box.sh) into the disk of a "fresh
# cloud VM": cloud-init installed (from Debian's archive) and told to look for a NoCloud seed only.
# A wrapper, not an edit of the shared builder: the Vagrant box itself stays as it is.
# Usage: cloudinit-box.sh BOXFILE OUT.qcow2   (root: a loop device and a chroot)
set -euo pipefail
BOX=${1:?usage: cloudinit-box.sh BOXFILE OUT.qcow2}; OUT=${2:?usage: cloudinit-box.sh BOXFILE OUT.qcow2}
[ "$(id -u)" = 0 ] || { echo "cloudinit-box: needs root (loop device, chroot)" >&2; exit 1; }
T=$(mktemp -d /var/tmp/mc-cloudinit-box.XXXXXX)
LOOP=""
cleanup() {
  [ -n "$LOOP" ] && { partx -d "$LOOP" 2>/dev/null || true; losetup -d "$LOOP" 2>/dev/null || true; }
  rm -rf "$T"
}
trap cleanup EXIT
tar -xf "$BOX" -C "$T" box.img
qemu-img convert -O raw "$T/box.img" "$T/disk.raw"; rm -f "$T/box.img"
LOOP=$(losetup -P -f --show "$T/disk.raw")
[ -b "${LOOP}p1" ] || partx -a "$LOOP" || true    # no udev on the host: make the partition node
for _ in 1 2 3 4 5; do [ -b "${LOOP}p1" ] && break; sleep 1; partx -u "$LOOP" || true; done
mkdir -p "$T/mnt"
# Every mount in a mount namespace of its own: gone when it ends, even if a step fails.
unshare -m --propagation private bash -euo pipefail -c '
  M=$1; mount "$2" "$M"; mount -t proc proc "$M/proc"; mount --rbind /dev "$M/dev"; mount -t sysfs sys "$M/sys"
  cp "$M/etc/resolv.conf" "$M/etc/resolv.conf.box" 2>/dev/null || true
  cp /etc/resolv.conf "$M/etc/resolv.conf"
  chroot "$M" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  chroot "$M" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends cloud-init >/dev/null
  chroot "$M" apt-get clean; rm -rf "$M"/var/lib/apt/lists/*_Packages*
  # As on a cloud image, the default locale exists: cloud-init sets LANG=en_US.UTF-8, and Debian'"'"'s
  # locale-gen ignores the locale it is given, so without this its locale module fails (found in a
  # chroot run of every cloud-init stage: "update-locale: Error: invalid locale settings").
  sed -i "s/^# *\(en_US.UTF-8 UTF-8\)/\1/" "$M/etc/locale.gen"; chroot "$M" locale-gen >/dev/null
  # Only the NoCloud seed (no waiting for metadata services a local VM has not got); the box brings
  # up eth0 itself (ifupdown), so cloud-init must not write a second configuration for it.
  printf "datasource_list: [NoCloud, None]\nnetwork: {config: disabled}\n" > "$M/etc/cloud/cloud.cfg.d/90-minicontainer-box.cfg"
  rm -rf "$M/var/lib/cloud"/*; : > "$M/etc/machine-id"
  if [ -f "$M/etc/resolv.conf.box" ]; then mv "$M/etc/resolv.conf.box" "$M/etc/resolv.conf"; fi
  chroot "$M" cloud-init --version
' _ "$T/mnt" "${LOOP}p1"
partx -d "$LOOP" 2>/dev/null || true; losetup -d "$LOOP"; LOOP=""
qemu-img convert -c -O qcow2 "$T/disk.raw" "$OUT.tmp" && mv "$OUT.tmp" "$OUT"
ls -lh "$OUT" | awk '{print "cloudinit-box:", $5, $NF}'
