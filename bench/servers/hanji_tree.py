"""Run ``hanji serve`` from another source tree, e.g. an earlier commit, for a before/after profile.

    git archive COMMIT hanji | tar -x -C /tmp/hanji-COMMIT
    python hanji_tree.py /tmp/hanji-COMMIT serve --port 0 ...

The editable install's import hook (which would find /work/main/hanji first) is taken out
of ``sys.meta_path`` and the tree put first on ``sys.path``; nothing else changes.
"""

from __future__ import annotations

import sys


def main() -> int:
    tree = sys.argv[1]
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__ + repr(f)]
    sys.path.insert(0, tree)
    import hanji

    if not hanji.__file__ or not hanji.__file__.startswith(tree):
        print(f"hanji_tree: imported {hanji.__file__}, not the tree {tree}", file=sys.stderr)
        return 2
    print(f"hanji_tree: hanji from {hanji.__file__}", file=sys.stderr, flush=True)
    from hanji.cli import main as hanji_main

    return hanji_main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
