"""User-facing errors: one clear line, no traceback, when the CLI or runner catches them."""


class EmolibError(Exception):
    """A mistake the user can fix (wrong path, bad file, missing data); the message says how."""


class DataNotFoundError(EmolibError):
    """No dataset could be found in any of the places emolib looks."""
