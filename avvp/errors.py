"""Errors caused by the user's input. The CLI prints them as one line, without a traceback."""


class InputError(ValueError):
    """Bad input (file, option, config): the message names the file and the problem."""
