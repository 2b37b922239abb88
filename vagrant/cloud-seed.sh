#!/bin/bash
# `make cloud-seed`: vagrant/cloud-init.yaml with its settings filled in, and a NoCloud seed image
# (an ISO 9660 volume labelled "cidata") for a VM with no cloud metadata service: a local qemu or
# libvirt VM, Proxmox, a lab's own hypervisor. `make cloud-init` writes the user-data only.
#   OUTDIR/user-data   the user-data for multipass or a cloud (check its size limit: AWS 16 KB)
#   OUTDIR/meta-data   instance-id and hostname
#   OUTDIR/seed.iso    both, plus (MC_SEED_KIT) the project and the classroom kit for an offline VM
#
# Usage: cloud-seed.sh OUTDIR [user-data-only]. Environment (all optional):
#   MC_SOURCE     where the VM gets the project (default seed; see cloud-init.yaml)
#   MC_KIT        the classroom kit: a base URL or "seed" (default: none)
#   MC_SSH_KEY    a public key file for the VM's default user (clouds and multipass add their own)
#   MC_SEED_KIT   a classroom kit directory: its minicontainer.tar.gz, debs/ and wheelhouse/ go on
#                 the seed image (then MC_SOURCE=seed MC_KIT=seed are the defaults)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:?usage: cloud-seed.sh OUTDIR [user-data-only]}
die() { echo "cloud-seed: FAILED: $*" >&2; exit 1; }
KITDIR=${MC_SEED_KIT:-}
SOURCE=${MC_SOURCE:-seed}
KIT=${MC_KIT:-$([ -n "$KITDIR" ] && echo seed || true)}
case $SOURCE in seed|http://*|https://*|*.git|git@*|git://*) ;; *) die "MC_SOURCE=$SOURCE: a URL or 'seed'";; esac
case $KIT in ""|seed|http://*|https://*) ;; *) die "MC_KIT=$KIT: a URL, 'seed' or empty";; esac
# The values are written single-quoted into a file the VM's setup script sources as root.
for v in "$SOURCE" "$KIT"; do
  [[ $v =~ [[:space:]\'\"\\] ]] && die "'$v': no spaces, quotes or backslashes in MC_SOURCE/MC_KIT"
done
sed_escape() { printf '%s' "$1" | sed 's/[|&]/\\&/g'; }
mkdir -p "$OUT"

# user-data: the settings replaced in place (the lines cloud-init.yaml marks), a key appended
sed -e "s|^      MC_SOURCE=.*|      MC_SOURCE='$(sed_escape "$SOURCE")'|" -e "s|^      MC_KIT=.*|      MC_KIT='$(sed_escape "$KIT")'|" \
    "$ROOT/vagrant/cloud-init.yaml" > "$OUT/user-data"
if [ -n "${MC_SSH_KEY:-}" ]; then
  [ -f "$MC_SSH_KEY" ] || die "MC_SSH_KEY=$MC_SSH_KEY is not a file"
  grep -q '^ssh-' "$MC_SSH_KEY" || die "MC_SSH_KEY=$MC_SSH_KEY is not a public key (ssh-…)"
  { echo "ssh_authorized_keys:"; echo "  - $(head -1 "$MC_SSH_KEY")"; } >> "$OUT/user-data"
fi
grep -qxF "      MC_SOURCE='$SOURCE'" "$OUT/user-data" || die "could not set MC_SOURCE in $OUT/user-data"
printf 'instance-id: minicontainer-lab-%s\nlocal-hostname: minicontainer-lab\n' \
  "$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')" > "$OUT/meta-data"
echo "cloud-seed: $OUT/user-data ($(wc -c < "$OUT/user-data") bytes; MC_SOURCE=$SOURCE MC_KIT=${KIT:-none})"
[ "${2:-}" = user-data-only ] && exit 0

# seed.iso: Rock Ridge keeps the wheels' long file names; no Joliet (it would truncate them)
command -v genisoimage >/dev/null || die "genisoimage is missing: sudo apt-get install genisoimage (or use user-data with multipass/a cloud)"
payload=()
if [ -n "$KITDIR" ]; then
  for f in minicontainer.tar.gz debs wheelhouse; do
    [ -e "$KITDIR/$f" ] || die "MC_SEED_KIT=$KITDIR has no $f: run make classroom-kit"
    payload+=("$f=$KITDIR/$f")
  done
fi
genisoimage -quiet -output "$OUT/seed.iso" -volid cidata -rational-rock -graft-points \
  "user-data=$OUT/user-data" "meta-data=$OUT/meta-data" "${payload[@]}" || die "genisoimage"
echo "cloud-seed: $OUT/seed.iso ($(du -h "$OUT/seed.iso" | cut -f1)${KITDIR:+, with the kit from $KITDIR})"
