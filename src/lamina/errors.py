"""The one domain exception hierarchy.

Errors speak Lambda's domain, never HTTP: `api/errors.py` is the only place that maps them to AWS
error codes and status codes. Each carries the human message AWS would show.
"""

from __future__ import annotations


class LaminaError(Exception):
    """Root of every error Lamina raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def fields(self) -> dict[str, object]:
        """Members of the AWS error body besides Type and message (e.g. Reason)."""
        return {}

    def headers(self) -> dict[str, str]:
        """Response headers the AWS error carries (e.g. Retry-After)."""
        return {}


# --- not found -----------------------------------------------------------------------------------


class NotFound(LaminaError):
    """A resource named in the request does not exist."""


class FunctionNotFound(NotFound):
    """No function (or no such version of it) under that name."""

    def __init__(self, arn: str, message: str | None = None) -> None:
        super().__init__(message or f"Function not found: {arn}")
        self.arn = arn


class CodeNotFound(NotFound):
    """A code download link names code that no longer exists or has expired."""


class ProvisionedConcurrencyConfigNotFound(NotFound):
    """The version or alias has no provisioned concurrency config."""

    def __init__(self) -> None:
        super().__init__("No Provisioned Concurrency Config found for this function")


class AliasNotFound(NotFound):
    """No alias of that name on the function. AWS words it two ways: "Cannot find alias arn"
    (GetAlias, provisioned concurrency) and "Alias not found" (UpdateAlias)."""

    def __init__(self, arn: str, lead: str = "Cannot find alias arn") -> None:
        super().__init__(f"{lead}: {arn}")
        self.arn = arn


# --- conflicts -----------------------------------------------------------------------------------


class Conflict(LaminaError):
    """The request conflicts with the resource's current state."""


class FunctionExists(Conflict):
    """CreateFunction named a function that already exists."""

    def __init__(self, name: str) -> None:
        super().__init__(f"Function already exist: {name}")


class AliasExists(Conflict):
    """CreateAlias named an alias that already exists."""

    def __init__(self, arn: str) -> None:
        super().__init__(f"Alias already exists: {arn}")


class RevisionMismatch(LaminaError):
    """The RevisionId precondition does not match the resource's current revision."""

    def __init__(self, api: str = "GetFunction/GetAlias") -> None:
        super().__init__(
            "The Revision Id provided does not match the latest Revision Id. "
            f"Call the {api} API to retrieve the latest Revision Id"
        )


# --- throttling ----------------------------------------------------------------------------------


class TooManyRequests(LaminaError):
    """A concurrency or rate limit refused the request; `reason` is AWS's ThrottleReason."""

    def __init__(self, reason: str, message: str = "Rate Exceeded.", retry_after: int = 1) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after = retry_after

    def fields(self) -> dict[str, object]:
        return {"Reason": self.reason}

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


# --- bad requests --------------------------------------------------------------------------------


class InvalidRequest(LaminaError):
    """The request is well formed but asks for something invalid."""


class InvalidParameter(InvalidRequest):
    """A parameter value is not acceptable (AWS: InvalidParameterValueException)."""


class InvalidCodePackage(InvalidParameter):
    """The uploaded deployment package is not a safe, well-formed zip within the limits."""


class ValidationFailed(InvalidRequest):
    """Input violates the service model's constraints (AWS: ValidationException)."""

    def __init__(self, problems: list[str]) -> None:
        count = len(problems)
        noun = "error" if count == 1 else "errors"
        super().__init__(f"{count} validation {noun} detected: " + "; ".join(problems))
        self.problems = problems


class MalformedRequest(InvalidRequest):
    """The request body cannot be parsed (AWS: SerializationException)."""


class EntityTooLarge(InvalidRequest):
    """A request, an invocation payload or a zipped upload exceeds the size AWS accepts."""


class UnsupportedOperation(InvalidRequest):
    """The operation exists in the Lambda API but Lamina does not implement it yet."""

    def __init__(self, operation: str) -> None:
        super().__init__(f"Lamina does not implement the {operation} operation yet.")
        self.operation = operation


class UnknownOperation(InvalidRequest):
    """No Lambda operation matches the request's method and path."""


# --- authentication ------------------------------------------------------------------------------


class AuthenticationError(LaminaError):
    """The request could not be authenticated."""


class MissingAuthentication(AuthenticationError):
    """The request carries no SigV4 authorization."""


class UnknownAccessKey(AuthenticationError):
    """The access key id is not one of the configured keys."""


class SignatureMismatch(AuthenticationError):
    """The signature does not match the one computed from the request."""


class SignatureExpired(SignatureMismatch):
    """The request's timestamp is too far from the server's clock."""


class IncompleteSignature(AuthenticationError):
    """The authorization header is malformed or lacks a required part."""


class AccessDenied(AuthenticationError):
    """The caller may not use the resource (e.g. another account's layer version)."""


# --- our own failures ----------------------------------------------------------------------------


class InternalError(LaminaError):
    """A failure of Lamina itself, never of the caller."""


class CodeIntegrityError(InternalError):
    """A stored code blob is missing, unreadable or fails authentication: it is never used."""


class SandboxError(InternalError):
    """The sandbox machinery failed (not the function)."""


class SandboxStartError(SandboxError):
    """An execution environment could not be created."""


class LaunchNotNeeded(LaminaError):
    """A launch was given up before it made anything: its invocation was served already."""


class StartupRefused(LaminaError):
    """The server refuses to start with the given settings (for example, insecure exposure)."""
