"""The errors of the pvc client: each becomes one ``Error: ...`` line and an exit code."""

from __future__ import annotations

EXIT_ERROR = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A failure to report in one line (exit code 1): bad file, refused prompt, timeout."""

    exit_code = EXIT_ERROR


class UsageError(CliError):
    """A bad command line (exit code 2, as argparse uses)."""

    exit_code = EXIT_USAGE


class ConfigError(CliError):
    """The client configuration (connections file) is missing, invalid or ambiguous."""


class ApiError(CliError):
    """The API refused a request, or could not be reached (``status`` None).

    Built from the API's error body ``{"message": ..., "field": ...}``.
    """

    def __init__(self, status: int | None, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field

    def __str__(self) -> str:
        if self.field:
            return f"{self.message} (field: {self.field})"
        return self.message
