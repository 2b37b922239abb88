# minicontainer — two commands:
#   make lab    set everything up and start JupyterLab on the course (http://127.0.0.1:8888)
#   make test   set everything up and run every test: unit, integration, notebooks (nbval)
# Both are idempotent: a second run installs nothing and starts at once.

SHELL := /bin/bash
PYTHON ?= /usr/bin/python3
VENV ?= .venv
VPY := $(VENV)/bin/python
LAB_PORT ?= 8888
LAB_IP ?= 127.0.0.1
SOLVED := build/solved

# Debian/Ubuntu packages the course and its tests use (checked one by one, installed only if missing).
# apparmor: its apparmor_parser loads the containers' profile where the kernel has AppArmor, and
# compiles it in the unit tests where it has not (installing it starts nothing: no service, no policy).
APT_PACKAGES := busybox-static iproute2 iptables nftables python3-venv procps util-linux kmod \
                libseccomp2 umoci skopeo chromium \
                docker-registry apache2-utils openssl mmdebstrap debian-archive-keyring \
                podman conmon containerd runc gcc libc6-dev apparmor
BENCH_PACKAGES := runc crun hyperfine iperf3
PYTEST_ARGS ?=

.PHONY: lab test setup system-packages venv unit integration notebooks bench clean-venv help root vm-test

help:
	@echo "make lab    start the course in JupyterLab (needs root: sudo make lab)"
	@echo "make test   run every test (needs root: sudo make test)"

root:
	@if [ "$$(id -u)" != 0 ]; then echo "make $(MAKECMDGOALS) needs root: run 'sudo make $(MAKECMDGOALS)'" >&2; exit 1; fi

system-packages: root
	@missing=""; for p in $(APT_PACKAGES) $(EXTRA_PACKAGES); do \
	  dpkg-query -W -f='$${db:Status-Abbrev}' $$p 2>/dev/null | grep -q '^ii' || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# The venv is rebuilt only when pyproject.toml changes (the stamp records it).
$(VENV)/.stamp: pyproject.toml
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --disable-pip-version-check --upgrade pip
	# compat editable mode: a plain path in a .pth file, no import hook on every interpreter start
	$(VPY) -m pip install -q --disable-pip-version-check -e '.[course,test]' --config-settings editable_mode=compat
	@touch $@

# Byte-compile the package: with PYTHONDONTWRITEBYTECODE set (as on some CI hosts) Python would
# otherwise recompile every module on every `minicontainer run` (~20 ms of its start). Only changed
# files are recompiled, so this is instant on a second run.
venv: $(VENV)/.stamp
	@$(VPY) -m compileall -q minicontainer >/dev/null
	@# the command: pip's script replaced by a launcher that starts Python without `site` (client.py);
	@# again whenever pip wrote its own (a later `pip install -e .`)
	@head -n1 $(VENV)/bin/minicontainer | grep -q -- ' -S$$' || $(VPY) -m minicontainer.client install $(VENV)/bin/minicontainer
	@head -n1 $(VENV)/bin/minicontainer-oci | grep -q -- ' -S$$' || $(VPY) -m minicontainer.client install $(VENV)/bin/minicontainer-oci

# --userns=remap's range: a `minicontainer` line in /etc/subuid and /etc/subgid when there is none
# (appended, never another user's line changed; minicontainer/subids.py)
setup: root system-packages venv
	@$(VPY) -m minicontainer.subids ensure

lab: setup
	@TOKEN=$$($(VPY) -c 'import secrets; print(secrets.token_hex(16))'); \
	echo ""; echo "  Open the course at:  http://$(LAB_IP):$(LAB_PORT)/lab/tree/00_a_container_is_just_a_process.ipynb?token=$$TOKEN"; echo ""; \
	exec $(VENV)/bin/jupyter lab --allow-root --no-browser --ip=$(LAB_IP) --port=$(LAB_PORT) \
	  --ServerApp.root_dir="$(CURDIR)/notebooks" --IdentityProvider.token=$$TOKEN

$(SOLVED): notebooks/*.ipynb notebooks/solutions/*.py
	$(VPY) -m minicontainer.course.notebooks solve notebooks $(SOLVED)

# Two passes. The first runs everything on this host as it is. The second runs the kernel tests
# (integration, exercise checks, notebooks; not tests/unit, which mounts nothing) again in a mount
# namespace whose / is recursively shared, as systemd makes it on every Debian/Ubuntu host and the
# course's VM: there a mount that a container or a notebook lets propagate back to its host reaches
# the namespace the leak checks look at (tests/shared_root.sh). On a private / (this CI host) such
# a leak is invisible. Both passes run even if the first fails; make fails if either did (a
# PYTEST_ARGS that selects no kernel test is fine for the second: pytest's 5, nothing collected).
test: setup
	@$(VPY) -m minicontainer.course.notebooks solve notebooks $(SOLVED)
	@rc=0; \
	echo "== pass 1 of 2: every test, / as this host has it"; \
	$(VPY) -m pytest tests $(SOLVED) $(NBVAL_ARGS) $(PYTEST_ARGS) || rc=1; \
	echo "== pass 2 of 2: kernel tests and notebooks under a shared / (systemd hosts; tests/shared_root.sh)"; \
	bash tests/shared_root.sh $(VPY) -m pytest tests/integration tests/notebooks $(SOLVED) $(NBVAL_ARGS) \
	  $(PYTEST_ARGS) || { c=$$?; [ $$c = 5 ] || rc=1; }; \
	exit $$rc

NBVAL_ARGS := --nbval-lax --nbval-current-env --nbval-sanitize-with tests/notebooks/sanitize.cfg \
              -p no:cacheprovider -rs

unit: venv
	$(VPY) -m pytest tests/unit -q $(PYTEST_ARGS)

integration: setup
	$(VPY) -m pytest tests/integration -rs $(PYTEST_ARGS)

notebooks: setup
	@$(VPY) -m minicontainer.course.notebooks solve notebooks $(SOLVED)
	$(VPY) -m pytest tests/notebooks $(SOLVED) --nbval-lax --nbval-current-env \
	  --nbval-sanitize-with tests/notebooks/sanitize.cfg -rs $(PYTEST_ARGS)

bench: setup
	$(MAKE) system-packages EXTRA_PACKAGES="$(BENCH_PACKAGES)"
	$(VPY) bench/run_all.py

# The classroom VM, verified for real (boots it, provisions twice, runs the integration tests and
# every notebook inside, destroys it; 29 min without KVM when it ran notebooks 01 02 only, more now).
# Not part of `make test`: it installs its own host tools (vagrant, libvirt …).
vm-test: root venv
	bash vagrant/vm-test.sh

# Classrooms (docs/instructors.md). classroom-kit: one directory for a USB stick or a web server in
# the room — the project, a Debian 12 box, the guest's wheels and Debian packages — so `vagrant up`
# and cloud VMs need no internet (building the box needs root; KIT_BOX=FILE copies one instead).
# cloud-init: vagrant/cloud-init.yaml with MC_SOURCE/MC_KIT/MC_SSH_KEY filled in, for multipass or a
# cloud; cloud-seed: the same as a NoCloud seed image (MC_SEED_KIT=KITDIR puts the kit on it).
# `sudo make vm-test MC_VM_CLOUDINIT=1` boots a VM from such a seed with no network and checks it all.
KIT_DIR ?= build/classroom-kit
.PHONY: classroom-kit cloud-init cloud-seed
classroom-kit: venv
	bash vagrant/classroom-kit.sh $(KIT_DIR)

cloud-init:
	bash vagrant/cloud-seed.sh build/cloud-seed user-data-only

cloud-seed:
	bash vagrant/cloud-seed.sh build/cloud-seed

clean-venv:
	rm -rf $(VENV) build

# The course as a static website: every notebook solved, executed (root: it changes the kernel, and
# cleans up after itself) and rendered to HTML with its outputs and figures, an index and
# previous/next links. Open build/site/index.html. SITE_NOTEBOOKS="00 03" builds only those.
.PHONY: site
site: setup
	$(VPY) -m minicontainer.course.site build/site $(SITE_NOTEBOOKS)
