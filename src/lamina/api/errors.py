"""The ONE table from domain errors to AWS error codes, statuses and body shapes.

botocore takes the code from the `x-amzn-ErrorType` header and the message from `message` or
`Message` in the body; the key's case follows the model's shape for each code
(../shared/reference/control-api.md §2).

The JSON protocol (awsJson1_1: CloudWatch Logs) names the code in the body's `__type`, answers
client errors with status 400, and calls some errors differently: `json_code` says how, where
it differs (botocore's logs model: InvalidParameterException, ServiceUnavailableException).
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from lamina import errors


@dataclass(frozen=True, slots=True)
class AwsError:
    code: str
    status: int
    message_key: str = "message"
    json_code: str | None = None  # the code under the JSON protocol, when it differs


_TABLE: dict[type[errors.LaminaError], AwsError] = {
    errors.FunctionNotFound: AwsError("ResourceNotFoundException", 404, "Message"),
    errors.CodeNotFound: AwsError("ResourceNotFoundException", 404, "Message"),
    errors.ProvisionedConcurrencyConfigNotFound: AwsError(
        "ProvisionedConcurrencyConfigNotFoundException", 404
    ),
    errors.AliasNotFound: AwsError("ResourceNotFoundException", 404, "Message"),
    errors.NotFound: AwsError("ResourceNotFoundException", 404, "Message"),
    errors.FunctionExists: AwsError("ResourceConflictException", 409),
    errors.AliasExists: AwsError("ResourceConflictException", 409),
    errors.Conflict: AwsError("ResourceConflictException", 409),
    errors.RevisionMismatch: AwsError("PreconditionFailedException", 412),
    errors.TooManyRequests: AwsError("TooManyRequestsException", 429),
    errors.InvalidCodePackage: AwsError("InvalidParameterValueException", 400),
    errors.InvalidParameter: AwsError(
        "InvalidParameterValueException", 400, json_code="InvalidParameterException"
    ),
    # Generic model-constraint failures (recorded from AWS; not a modelled shape). CloudWatch
    # Logs reports them as InvalidParameterException with the same "1 validation error" text.
    errors.ValidationFailed: AwsError(
        "ValidationException", 400, json_code="InvalidParameterException"
    ),
    errors.MalformedRequest: AwsError(
        "InvalidRequestContentException", 400, json_code="SerializationException"
    ),
    # Recorded from AWS for oversized CreateFunction requests, zips and invocation payloads
    # (AWS answers these with RequestEntityTooLargeException, not the modelled
    # RequestTooLargeException: public SDK logs of both invocation types show it).
    errors.EntityTooLarge: AwsError("RequestEntityTooLargeException", 413),
    errors.UnsupportedOperation: AwsError("NotImplementedException", 501),
    errors.UnknownOperation: AwsError("UnknownOperationException", 404),
    errors.InvalidRequest: AwsError(
        "InvalidParameterValueException", 400, json_code="InvalidParameterException"
    ),
    # Authentication failures use the generic AWS codes (limits.md §6.5).
    errors.MissingAuthentication: AwsError("MissingAuthenticationTokenException", 403),
    errors.UnknownAccessKey: AwsError("UnrecognizedClientException", 403),
    errors.SignatureExpired: AwsError("InvalidSignatureException", 403),
    errors.SignatureMismatch: AwsError("InvalidSignatureException", 403),
    errors.IncompleteSignature: AwsError("IncompleteSignatureException", 400),
    # Recorded by LocalStack's AWS-validated layer checks for another account's layer version.
    errors.AccessDenied: AwsError("AccessDeniedException", 403, "Message"),
    errors.CodeIntegrityError: AwsError("ServiceException", 500, "Message"),
    errors.InternalError: AwsError(
        "ServiceException", 500, "Message", json_code="ServiceUnavailableException"
    ),
}

SERVICE_ERROR = AwsError(
    "ServiceException", 500, "Message", json_code="ServiceUnavailableException"
)


def aws_error_for(error: BaseException) -> AwsError:
    """Walk the exception's MRO to the nearest mapped class (starlette's lookup idea)."""
    for cls in type(error).__mro__:
        mapped = _TABLE.get(cls)
        if mapped is not None:
            return mapped
    return SERVICE_ERROR


def error_body(aws: AwsError, message: str, fields: dict[str, object] | None = None) -> bytes:
    kind = "User" if aws.status < 500 else "Service"
    return orjson.dumps({"Type": kind, aws.message_key: message, **(fields or {})})


def json_error(error: errors.LaminaError) -> tuple[int, str, bytes]:
    """(status, code, body) of an error under the JSON protocol."""
    aws = aws_error_for(error)
    code = aws.json_code or aws.code
    status = 400 if aws.status < 500 else aws.status
    return status, code, orjson.dumps({"__type": code, "message": error.message})
