"""The one exception the CLI turns into a single line and exit code 2."""


class InputError(Exception):
    """Bad input from the user: a path, a file, a value. The message names the file and the problem."""

    def __init__(self, message: str, path: object | None = None):
        self.path = path
        super().__init__(f"{path}: {message}" if path is not None else message)
