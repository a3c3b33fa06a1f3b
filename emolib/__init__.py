"""emolib: helpers for the facial-emotion-recognition notebooks (FER-2013 and friends).

Import the submodules you need (``from emolib import datasets``); nothing heavy
(TensorFlow, OpenCV) is imported until a function needs it.
"""

__version__ = "0.1.0"

#: The one class order used everywhere (defined with the other input/output constants in
#: ``emolib.preprocessing``).
from emolib.preprocessing import CLASS_NAMES  # noqa: E402

__all__ = ["CLASS_NAMES"]
