"""Errors meant for the user: the CLI prints their message as one line and exits non-zero."""


class UserError(Exception):
    """Bad input from the user (data, options, files). The message is one line, shown as-is."""
