"""The base of every error gateau reports to a user as one line (the CLI prints it and exits with status 2)."""


class GateauError(Exception):
    """An error with a message meant for the user: what is wrong and what to do."""


class UsageError(GateauError, ValueError):
    """A setting, flag or option value that is not valid (a ValueError too, so ``except ValueError`` callers keep
    working)."""


class NotFoundError(GateauError, KeyError):
    """A named thing (a sample id, ...) that is not there; a KeyError too (so it prints quoted, as KeyErrors do)."""
