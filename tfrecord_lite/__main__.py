"""``python -m tfrecord_lite``: see ``tfrecord_lite.cli``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
