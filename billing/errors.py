"""Domain errors. Services raise these; the web layer maps them to HTTP statuses and the
CLI to messages, so neither has to know the other."""

from collections.abc import Mapping, Sequence


class DomainError(Exception):
    code = "error"
    status = 400

    def __init__(self, message: str, details: Mapping[str, Sequence[str]] | None = None):
        super().__init__(message)
        self.message = message
        self.details = dict(details or {})


class NotFound(DomainError):
    code = "not_found"
    status = 404

    def __init__(self, kind: str, identifier: str):
        super().__init__(f"{kind} {identifier} not found")


class Conflict(DomainError):
    code = "conflict"
    status = 409


class Invalid(DomainError):
    """Input that is well-formed but breaks a rule; details map field paths to messages."""

    code = "validation_error"
    status = 422


class Forbidden(DomainError):
    code = "forbidden"
    status = 403
