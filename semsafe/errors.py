"""One exception type for problems the user can fix.

The CLI and the dashboard print a SemsafeError's message as-is (no traceback), so every
message says what is wrong and what to do about it.
"""


class SemsafeError(Exception):
    """A problem with the user's input or environment, with a message that says how to fix it."""


class ModelNotFoundError(SemsafeError):
    """A model spec that names nothing loadable here."""


class PackMissingError(SemsafeError):
    """A data/model pack (a registry package used only as a file carrier) is not installed."""
