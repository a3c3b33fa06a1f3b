"""``python -m emolib``: the command line (see ``emolib.cli``).

What C libraries print to stderr (TensorFlow's and CUDA's start-up lines) goes to
``outputs/logs/emolib.log`` instead of the terminal.
"""

import sys

from emolib.cli import main
from emolib.paths import outputs_dir
from emolib.runner import native_output_to

with native_output_to(outputs_dir("logs", create=False) / "emolib.log"):
    status = main(console_warnings=True)
sys.exit(status)
