#!/bin/bash
# `make classroom-kit`: one directory an instructor copies to a USB stick or serves from a web server
# in the room, so that neither `vagrant up` nor a cloud-init VM needs the internet:
#   minicontainer/          the project (this checkout's tracked and untracked-but-not-ignored files)
#   minicontainer.tar.gz    the same, for cloud-init's MC_SOURCE
#   box/debian12-local.box  a Debian 12 box for the libvirt provider (built offline, or KIT_BOX=FILE)
#   wheelhouse/             every wheel the guest's Python (Debian 12: 3.11, x86_64) installs
#   debs/                   vagrant/guest-packages.txt with every dependency, as a flat apt
#                           repository (Packages, Release): provision.sh's MC_APT_REPO
#   cloud-init.yaml         vagrant/cloud-init.yaml set to take everything from the kit
#   README.md, KIT-VERSION  the instructor's page; the marker the Vagrantfile finds the kit by
# Why Debian 12 only: the box, the packages and the wheels must match one release and one Python;
# the default bento/ubuntu-24.04 box has Python 3.12 and other package versions.
#
# Usage: classroom-kit.sh OUTDIR. Environment: KIT_BOX (a .box file to copy instead of building one;
# building needs root and debootstrap, ~2 min; "none": no box, for seeds and web servers only), KIT_WORK (cache: apt indexes, the built box; default
# /var/tmp/minicontainer-kit/work), KIT_SOLUTIONS=0 (leave notebooks/solutions/ out), KIT_PYTHON (the Python 3.11 that builds the wheels; default the
# project's .venv), MC_BOX_BUILDER (as in vm-test.sh). Every step is skipped when its output is current.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:?usage: classroom-kit.sh OUTDIR}
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
WORK=${KIT_WORK:-/var/tmp/minicontainer-kit/work}
PY=${KIT_PYTHON:-$ROOT/.venv/bin/python}
BUILDER=${MC_BOX_BUILDER:-$ROOT/../shared/tools/vm/build-local-box.sh}
T0=$(date +%s)
step() { printf '==> [%4ss] %s\n' $(( $(date +%s) - T0 )) "$*"; }
die() { echo "classroom-kit: FAILED: $*" >&2; exit 1; }
case $OUT in "$ROOT"|"$ROOT"/minicontainer*|"$ROOT"/notebooks*|"$ROOT"/vagrant*) die "OUTDIR $OUT is inside the sources; use build/classroom-kit";; esac
mkdir -p "$WORK"

step "the project: minicontainer/ and minicontainer.tar.gz"
# Files git knows or would add (not .venv, build/, caches); the kit itself may sit in build/.
files=$(cd "$ROOT" && git ls-files -co --exclude-standard | grep -v '^build/' | sort)
# KIT_SOLUTIONS=0: the learners' copy without the exercise solutions (docs/instructors.md)
[ "${KIT_SOLUTIONS:-1}" = 0 ] && files=$(printf '%s\n' "$files" | grep -v '^notebooks/solutions/')
rm -rf "$OUT/minicontainer.new"; mkdir -p "$OUT/minicontainer.new"
(cd "$ROOT" && printf '%s\n' "$files" | tar -cf - --no-recursion -T - ) | tar -xf - -C "$OUT/minicontainer.new"
rm -rf "$OUT/minicontainer"; mv "$OUT/minicontainer.new" "$OUT/minicontainer"
tar -C "$OUT" --owner=0 --group=0 --sort=name -czf "$OUT/minicontainer.tar.gz" minicontainer
echo "$(printf '%s\n' "$files" | wc -l) files, $(du -sh "$OUT/minicontainer.tar.gz" | cut -f1) compressed"

step "the box: box/debian12-local.box"
mkdir -p "$OUT/box"
if [ "${KIT_BOX:-}" = none ]; then
  echo "no box (KIT_BOX=none: a kit for cloud-init seeds and web servers only)"
elif [ -n "${KIT_BOX:-}" ]; then
  [ -f "$KIT_BOX" ] || die "KIT_BOX=$KIT_BOX is not a file"
  cmp -s "$KIT_BOX" "$OUT/box/debian12-local.box" 2>/dev/null || cp "$KIT_BOX" "$OUT/box/debian12-local.box"
elif [ ! -s "$OUT/box/debian12-local.box" ]; then
  [ "$(id -u)" = 0 ] || die "building the box needs root (debootstrap, a loop device): sudo, or KIT_BOX=FILE"
  [ -f "$BUILDER" ] || die "no box builder at $BUILDER (set MC_BOX_BUILDER, or KIT_BOX=FILE)"
  if [ ! -s "$WORK/box/debian12-local.box" ]; then
    bash "$BUILDER" "$WORK/box" > "$WORK/box-build.log" 2>&1 || die "box build (log: $WORK/box-build.log)"
    rm -rf "$WORK/box/rootfs" "$WORK/box/boxpkg" "$WORK/box/mnt"    # 1 GB we no longer need
  fi
  cp "$WORK/box/debian12-local.box" "$OUT/box/debian12-local.box"
fi
[ "${KIT_BOX:-}" = none ] || ls -lh "$OUT/box/debian12-local.box" | awk '{print $5, $NF}'

step "the wheelhouse: wheelhouse/ (Python 3.11, x86_64)"
"$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || die "$PY is not Python 3.11 (Debian 12's): set KIT_PYTHON"
want=$(cat "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)
if [ "$(cat "$OUT/wheelhouse/.stamp" 2>/dev/null)" != "$want" ]; then
  rm -rf "$OUT/wheelhouse"; mkdir -p "$OUT/wheelhouse"
  # setuptools and wheel: the guest builds the project itself (editable) with no index
  "$PY" -m pip wheel -q --disable-pip-version-check -w "$OUT/wheelhouse" "$ROOT[course,test]" \
      'setuptools>=64' wheel > "$WORK/pip-wheel.log" 2>&1 || die "pip wheel (log: $WORK/pip-wheel.log)"
  rm -f "$OUT/wheelhouse"/minicontainer-*.whl
  echo "$want" > "$OUT/wheelhouse/.stamp"
fi
echo "$(ls "$OUT/wheelhouse"/*.whl | wc -l) wheels, $(du -sh "$OUT/wheelhouse" | cut -f1)"

step "the Debian packages: debs/ (bookworm, amd64, with every dependency)"
# apt with a configuration of its own: Debian's bookworm only (not whatever else this host's
# sources list), its own index and cache, an empty dpkg status (nothing counts as installed, so
# the closure is complete for any Debian 12 image, however small).
A=$WORK/apt; mkdir -p "$A/lists/partial" "$A/cache/archives/partial" "$A/parts" "$A/prefs"; : > "$A/status"
cat > "$A/sources.list" <<EOF
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
APT=(-o Dir::Etc::SourceList="$A/sources.list" -o Dir::Etc::SourceParts="$A/parts"
     -o Dir::Etc::PreferencesParts="$A/prefs" -o Dir::State::Lists="$A/lists"
     -o Dir::State::status="$A/status" -o Dir::Cache="$A/cache" -o APT::Architecture=amd64
     -o APT::Architectures::=amd64 -o Acquire::Languages=none -o Debug::NoLocking=1)
pkgs=$(grep -v '^#' "$ROOT/vagrant/guest-packages.txt" | tr -s ' \n' ' ')
want=$( { echo "$pkgs"; date +%Y-%m-%d; sha256sum < "$0"; } | sha256sum | cut -c1-16)   # daily: security updates
if [ "$(cat "$OUT/debs/.stamp" 2>/dev/null)" != "$want" ]; then
  apt-get "${APT[@]}" update -qq || die "apt-get update (Debian's mirror reachable?)"
  # What apt itself would install on a system with nothing installed but the Essential set (every
  # Debian has that): its resolver picks one of each set of alternatives, as it will in the guest.
  # (apt-cache depends --recurse takes every alternative too: 349 packages with fonts and Qt.)
  closure=$(apt-get "${APT[@]}" -s install --no-install-recommends $pkgs | awk '/^Inst /{print $2}')
  [ -n "$closure" ] || die "apt resolved no package for: $pkgs"
  rm -rf "$OUT/debs.new"; mkdir -p "$OUT/debs.new"
  (cd "$OUT/debs.new" && apt-get "${APT[@]}" download $closure > "$WORK/apt-download.log" 2>&1) ||
    die "apt-get download (log: $WORK/apt-download.log)"
  (cd "$OUT/debs.new" && dpkg-scanpackages --multiversion . /dev/null > Packages 2>/dev/null && gzip -9nk Packages)
  # a Release file: apt accepts the unsigned flat repository ([trusted=yes]) without warnings
  (cd "$OUT/debs.new" && {
     echo "Origin: minicontainer classroom kit"; echo "Label: minicontainer"; echo "Suite: bookworm"
     echo "Architectures: amd64 all"; echo "Date: $(date -Ru)"; echo "SHA256:"
     for f in Packages Packages.gz; do echo " $(sha256sum "$f" | cut -d' ' -f1) $(stat -c %s "$f") $f"; done
   } > Release)
  echo "$want" > "$OUT/debs.new/.stamp"
  rm -rf "$OUT/debs"; mv "$OUT/debs.new" "$OUT/debs"
fi
echo "$(ls "$OUT/debs"/*.deb | wc -l) packages, $(du -sh "$OUT/debs" | cut -f1)"

step "cloud-init.yaml, README.md, KIT-VERSION"
sed -e 's|^      MC_SOURCE=.*|      MC_SOURCE=seed|' -e 's|^      MC_KIT=.*|      MC_KIT=seed|' \
    "$ROOT/vagrant/cloud-init.yaml" > "$OUT/cloud-init.yaml"
cp "$ROOT/vagrant/classroom-kit.README.md" "$OUT/README.md"
{ echo "minicontainer classroom kit"
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "source: $(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo unknown)"
  [ "${KIT_BOX:-}" = none ] || echo "box: debian12-local.box $(sha256sum "$OUT/box/debian12-local.box" | cut -c1-16)"
} > "$OUT/KIT-VERSION"
chmod -R a+rX "$OUT"
step "done: $OUT ($(du -sh "$OUT" | cut -f1)); see $OUT/README.md"
