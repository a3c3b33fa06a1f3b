"""``python -m emolib``: the command line (see ``emolib.cli``)."""

import sys

from emolib.cli import main

sys.exit(main())
