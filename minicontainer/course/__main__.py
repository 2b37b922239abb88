"""``python -m minicontainer.course progress …`` (an instructor's report) and ``solve …`` (CI)."""

import sys


def main(argv: list[str]) -> int:
    if argv and argv[0] == "progress":
        from .progress import main as progress
        return progress(argv[1:])
    if argv and argv[0] == "solve":
        from .notebooks import main as solve
        return solve(argv)
    print("usage: python -m minicontainer.course progress NOTEBOOK_OR_DIR … [--json]\n"
          "       python -m minicontainer.course solve SRC_DIR DEST_DIR [NN …]", file=sys.stderr)
    return 2


sys.exit(main(sys.argv[1:]))
