"""``python -m allye_data_connector demo``: the README's main job."""

import sys

from .demo import main


def _entry() -> int:
    argv = sys.argv[1:]
    if not argv or argv[0] != "demo":
        print("usage: python -m allye_data_connector demo [--secret-dir DIR]", file=sys.stderr)
        return 2
    return main(argv[1:])


if __name__ == "__main__":
    sys.exit(_entry())
