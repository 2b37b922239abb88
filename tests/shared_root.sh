#!/bin/bash
# Run a command as it would run on a systemd host: in a mount namespace of its own whose / is
# recursively *shared* (systemd does `mount --make-rshared /` at boot; every Debian/Ubuntu install,
# the course's VM). This CI host's / is private, so a mount that a container or a notebook lets
# propagate back to its host would go unseen here; inside this namespace it propagates to us, and
# the leak checks (tests/leakcheck.py), which read /proc/self/mountinfo of this namespace, see it.
#
# unshare's default --propagation private first cuts this namespace off from the real host's peer
# groups (on a host whose / is shared, making it rshared straight away would make every mount a
# test leaks here a mount on the real host too); `mount --make-rshared /` then gives each mount a
# peer group of its own, which the namespaces our tests create inherit, exactly like the host's.
# When the command ends, the namespace and whatever was mounted in it go with it.
#
# Usage: bash tests/shared_root.sh COMMAND [ARGS…]   (used by `make test`'s second pass)
set -euo pipefail
# MINICONTAINER_SHARED_ROOT_FROM: the namespace we left (the tests check they run in another one)
MINICONTAINER_SHARED_ROOT_FROM=$(readlink /proc/self/ns/mnt) exec unshare --mount --propagation private -- \
  /bin/bash -c 'mount --make-rshared / && export MINICONTAINER_SHARED_ROOT=1 && exec "$@"' shared-root "$@"
