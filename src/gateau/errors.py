"""The base of every error gateau reports to a user as one line (the CLI prints it and exits with status 2)."""


class GateauError(Exception):
    """An error with a message meant for the user: what is wrong and what to do."""
