#!/bin/bash
# Provisions the minicontainer classroom VM (run by `vagrant up` / `vagrant provision` as root).
# Idempotent: every step checks before it acts, and each step that changes something prints one
# "changed: …" line; a second run prints none (vagrant/vm-test.sh checks exactly that).
#
# Environment (set by the Vagrantfile):
#   MC_SRC         the project inside the guest (default /opt/minicontainer)
#   MC_WHEELHOUSE  a directory of wheels: install Python packages from it with --no-index (guests
#                  with no package index); empty = use the index (PyPI)
#   MC_HOST_PORT   the host port 8888 is forwarded to, for the printed URL (default 8888)
#   MC_NO_SERVICE  1 = do not install the JupyterLab service (second machine of a multi-host lab)
#   MC_APT_REPO    the classroom kit's Debian packages (`make classroom-kit`: a flat repository, a
#                  directory or an http:// URL): apt reads only this source, never the guest's own
#                  package indexes (rooms with no internet); empty = the guest's apt sources
#   MC_LAB_IP      the address JupyterLab listens on in the guest: 0.0.0.0 (default) for Vagrant's
#                  port forward; 127.0.0.1 on a cloud VM (vagrant/cloud-init.yaml), reached through
#                  an SSH tunnel only
#   MC_SSH_HINT    printed instead of Vagrant's line: how to open the tunnel (cloud-init sets it)
set -euo pipefail
MC_SRC=${MC_SRC:-/opt/minicontainer}
MC_WHEELHOUSE=${MC_WHEELHOUSE:-}
MC_HOST_PORT=${MC_HOST_PORT:-8888}
MC_APT_REPO=${MC_APT_REPO:-}
MC_LAB_IP=${MC_LAB_IP:-0.0.0.0}
VENV=$MC_SRC/.venv            # same place as the Makefile's, so `sudo make test` in the VM reuses it
ETC=/etc/minicontainer
UNIT=/etc/systemd/system/minicontainer-lab.service
export DEBIAN_FRONTEND=noninteractive

changed() { echo "changed: $*"; }
say() { echo "provision: $*"; }

# 1. system packages the course and its tests use (vagrant/guest-packages.txt: the Makefile's
# APT_PACKAGES minus the browser and the host-only test tools; the classroom kit reads it too)
PKGS=$(grep -v '^#' "$MC_SRC/vagrant/guest-packages.txt")
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing="$missing $p"
done
if [ -n "$missing" ] && [ -n "$MC_APT_REPO" ]; then
  # The kit's packages only: a source list of its own and index files of its own, so apt neither
  # asks a mirror the room cannot reach nor forgets the guest's normal indexes. The kit is unsigned
  # (trusted=yes): it is the instructor's own copy, on a stick or a web server in the room.
  case $MC_APT_REPO in
    http://*|https://*) repo=$MC_APT_REPO ;;
    *) [ -f "$MC_APT_REPO/Packages" ] || { echo "provision: MC_APT_REPO=$MC_APT_REPO has no Packages index (make classroom-kit writes it)" >&2; exit 1; }
       repo=file:$(cd "$MC_APT_REPO" && pwd) ;;
  esac
  kitapt=/var/lib/minicontainer/kit-apt
  install -d -m 755 "$kitapt/lists/partial" "$kitapt/parts"
  echo "deb [trusted=yes] $repo ./" > "$kitapt/sources.list"
  aptkit=(-o Dir::Etc::SourceList="$kitapt/sources.list" -o Dir::Etc::SourceParts="$kitapt/parts"
          -o Dir::State::Lists="$kitapt/lists" -o Acquire::Languages=none)
  say "installing Debian packages from the kit $MC_APT_REPO (no other source)"
  apt-get "${aptkit[@]}" update -qq
  apt-get "${aptkit[@]}" install -y -qq --no-install-recommends $missing >/dev/null
  changed "installed Debian packages:$missing"
elif [ -n "$missing" ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
  changed "installed Debian packages:$missing"
fi

# 2. cgroup v2: the VM is where learners meet the unified hierarchy (CI hosts are v1)
fstype=$(stat -fc %T /sys/fs/cgroup)
if [ "$fstype" = cgroup2fs ]; then
  say "cgroup mode: v2 (unified hierarchy at /sys/fs/cgroup; controllers: $(cat /sys/fs/cgroup/cgroup.controllers))"
elif [ -d /sys/fs/cgroup/unified ]; then
  say "cgroup mode: hybrid (v1 controllers + empty v2 at /sys/fs/cgroup/unified)"
  say "WARNING: the course expects v2 here; boot with systemd.unified_cgroup_hierarchy=1"
else
  say "cgroup mode: v1 (legacy)"
  say "WARNING: the course expects v2 here; boot with systemd.unified_cgroup_hierarchy=1"
fi

# 3. the virtual environment with the package and its course + test extras
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  changed "created virtual environment $VENV"
fi
pip_src=(--disable-pip-version-check --no-input)
if [ -n "$MC_WHEELHOUSE" ]; then
  # a directory, or the kit's wheelhouse on a web server in the room (pip reads its listing)
  case $MC_WHEELHOUSE in
    http://*|https://*) ;;
    *) [ -d "$MC_WHEELHOUSE" ] || { echo "provision: MC_WHEELHOUSE=$MC_WHEELHOUSE is not a directory" >&2; exit 1; } ;;
  esac
  pip_src+=(--no-index --find-links "$MC_WHEELHOUSE")
  say "installing Python packages from the wheel directory $MC_WHEELHOUSE (no index)"
fi
# What the install depends on: the project's metadata and where the packages come from.
want=$( { sha256sum "$MC_SRC/pyproject.toml"; echo "$MC_WHEELHOUSE"; "$VENV/bin/python" -V; } | sha256sum | cut -c1-16)
if [ "$(cat "$VENV/.provisioned" 2>/dev/null)" != "$want" ]; then
  # compat editable mode, as in the Makefile: a plain path in a .pth file
  "$VENV/bin/python" -m pip install -q "${pip_src[@]}" -e "$MC_SRC[course,test]" \
      --config-settings editable_mode=compat
  "$VENV/bin/python" -m minicontainer.client install "$VENV/bin/minicontainer"   # as the Makefile does
  echo "$want" > "$VENV/.provisioned"
  touch "$VENV/.stamp"        # the Makefile's stamp: `make test` in the VM does not reinstall
  changed "installed minicontainer[course,test] into $VENV"
fi

# 3b. --userns=remap's subordinate ids (what `make setup` does: an entry only when there is none)
added=$("$VENV/bin/python" -m minicontainer.subids ensure)
[ -z "$added" ] || changed "$added"

[ "${MC_NO_SERVICE:-0}" = 1 ] && { say "done (no JupyterLab service on this machine)"; exit 0; }

# 4. the JupyterLab service: root, on the notebooks, token auth, restarted on failure
install -d -m 755 "$ETC" "$ETC/jupyter"
if [ ! -s "$ETC/lab.env" ]; then
  ( umask 077; echo "MC_LAB_TOKEN=$("$VENV/bin/python" -c 'import secrets; print(secrets.token_hex(16))')" > "$ETC/lab.env" )
  changed "generated the JupyterLab token in $ETC/lab.env"
fi
unit=$(sed -e "s|@VENV@|$VENV|g" -e "s|@IP@|$MC_LAB_IP|g" -e "s|@NOTEBOOKS@|$MC_SRC/notebooks|g" -e "s|@ENVFILE@|$ETC/lab.env|g" \
       "$MC_SRC/vagrant/jupyterlab.service")
restart=0
if [ "$(cat "$UNIT" 2>/dev/null)" != "$unit" ]; then
  printf '%s\n' "$unit" > "$UNIT"
  systemctl daemon-reload
  restart=1
  changed "wrote $UNIT"
fi
if ! systemctl is-enabled -q minicontainer-lab.service; then
  systemctl enable -q minicontainer-lab.service
  changed "enabled minicontainer-lab.service"
fi
if [ $restart = 1 ] || ! systemctl is-active -q minicontainer-lab.service; then
  systemctl restart minicontainer-lab.service
  changed "started minicontainer-lab.service"
fi

# 5. wait until the server answers, then print the URL to open on the host
. "$ETC/lab.env"
for _ in $(seq 1 180); do
  if "$VENV/bin/python" - "$MC_LAB_TOKEN" <<'PY' 2>/dev/null; then break; fi
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:8888/api/status?token={sys.argv[1]}", timeout=2).read()
PY
  sleep 2
done
systemctl is-active -q minicontainer-lab.service || { journalctl -u minicontainer-lab.service -n 30 --no-pager; exit 1; }
echo
if [ -n "${MC_SSH_HINT:-}" ]; then
  echo "  The minicontainer lab is ready. On your own computer, open the tunnel (leave it running):"
  echo "    $MC_SSH_HINT"
  echo "  then open:"
else
  echo "  The minicontainer lab is ready. Open on this computer:"
fi
echo "    http://127.0.0.1:$MC_HOST_PORT/lab/tree/00_a_container_is_just_a_process.ipynb?token=$MC_LAB_TOKEN"
if [ -n "${MC_SSH_HINT:-}" ]; then
  echo "  Tests inside the VM:  cd $MC_SRC && sudo make test"
else
  echo "  Tests inside the VM:  vagrant ssh -c 'cd $MC_SRC && sudo make test'"
fi
echo
