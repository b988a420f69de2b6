"""Asynchronous invocation settings per function, version or alias (FunctionEventInvokeConfig):
retries, maximum event age, and the OnSuccess / OnFailure destinations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lamina.clock import Clock
from lamina.control.functions import FunctionService
from lamina.control.queues import QueueService
from lamina.errors import FunctionNotFound, InvalidParameter, NotFound
from lamina.ids import FunctionRef, parse_function_ref
from lamina.model.function import LATEST
from lamina.store.function_settings import Document, FunctionSettings, SettingKind

DEFAULT_RETRIES = 2  # limits.md §4
DEFAULT_MAX_AGE = 21_600  # 6 hours


class EventInvokeConfigNotFound(NotFound):
    def __init__(self, arn: str) -> None:
        # control-api.md §2: the recorded AWS wording
        super().__init__(f"The function {arn} doesn't have an EventInvokeConfig")


class FunctionDoesNotExist(NotFound):
    """Put, Update and List of event invoke configs name a missing function, version or alias
    this way (LocalStack's AWS snapshot test_lambda_eventinvokeconfig_exceptions:
    put_functionname_name_notfound, put_alias_doesnotexist, list_function_doesnotexist)."""

    def __init__(self) -> None:
        super().__init__("The function doesn't exist.")


# The services AWS delivers destination records to (control-api.md §4.15)
_AWS_DESTINATIONS = (
    "arn:aws:lambda:",
    "arn:aws:sqs:",
    "arn:aws:sns:",
    "arn:aws:events:",
    "arn:aws:s3:",
)


@dataclass(frozen=True, slots=True)
class AsyncPolicy:
    """What the dispatcher applies to one event."""

    max_retries: int = DEFAULT_RETRIES
    max_age_s: int = DEFAULT_MAX_AGE
    on_success: str | None = None
    on_failure: str | None = None


DEFAULT_POLICY = AsyncPolicy()
_FIELDS = ("MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig")


class EventConfigService:
    def __init__(
        self,
        settings: FunctionSettings,
        functions: FunctionService,
        queues: QueueService,
        clock: Clock,
    ) -> None:
        self._settings = settings
        self._functions = functions
        self._queues = queues
        self._clock = clock

    async def put(self, ref: FunctionRef, params: dict[str, Any], merge: bool) -> Document:
        """PutFunctionEventInvokeConfig replaces every field; Update changes only those given."""
        if not any(params.get(name) is not None for name in _FIELDS):
            raise InvalidParameter(
                "You must specify at least one of error handling or destination setting."
            )
        qualifier = await self._qualifier(ref)
        given = {name: params[name] for name in _FIELDS if params.get(name) is not None}
        if "DestinationConfig" in given:
            given["DestinationConfig"] = await self._destinations(ref, given["DestinationConfig"])
        now = self._clock.time()

        def change(current: Document | None) -> Document:
            if merge and current is None:  # Update changes a config; it does not create one
                raise EventInvokeConfigNotFound(self._arn(ref, qualifier))
            base = dict(current or {}) if merge else {}
            if merge and "DestinationConfig" in given and current is not None:
                merged = {**current.get("DestinationConfig", {}), **given["DestinationConfig"]}
                given["DestinationConfig"] = merged
            return {**base, **given, "LastModified": now}

        document = await self._update(ref, qualifier, change)
        assert document is not None
        return self._wire(ref, qualifier, document)

    async def get(self, ref: FunctionRef) -> Document:
        # Get and Delete do not look for the function: a missing one has no config either
        # (LocalStack's AWS snapshot: get_function_doesnotexist, delete_function_doesnotexist).
        qualifier = ref.qualifier or LATEST
        found = await self._settings.get(
            ref.region, ref.name, SettingKind.EVENT_INVOKE_CONFIG, qualifier
        )
        if found is None:
            raise EventInvokeConfigNotFound(self._arn(ref, qualifier))
        return self._wire(ref, qualifier, found)

    async def delete(self, ref: FunctionRef) -> None:
        qualifier = ref.qualifier or LATEST
        existed: list[bool] = []

        def change(current: Document | None) -> None:
            existed.append(current is not None)
            return None

        try:
            await self._update(ref, qualifier, change)
        except FunctionDoesNotExist:
            existed.append(False)
        if not existed[0]:
            raise EventInvokeConfigNotFound(self._arn(ref, qualifier))

    async def listing(self, ref: FunctionRef) -> list[Document]:
        await self._qualifier(ref)  # the function must exist
        found = await self._settings.of_function(
            ref.region, ref.name, SettingKind.EVENT_INVOKE_CONFIG
        )
        return [self._wire(ref, qualifier, document) for qualifier, document in found.items()]

    async def policy(self, region: str, name: str, qualifier: str | None) -> AsyncPolicy:
        """The settings an event invoked through `qualifier` runs under (cached reads)."""
        found = await self._settings.get(
            region, name, SettingKind.EVENT_INVOKE_CONFIG, qualifier or LATEST
        )
        if found is None:
            return DEFAULT_POLICY
        destinations = found.get("DestinationConfig", {})
        return AsyncPolicy(
            found.get("MaximumRetryAttempts", DEFAULT_RETRIES),
            found.get("MaximumEventAgeInSeconds", DEFAULT_MAX_AGE),
            destinations.get("OnSuccess", {}).get("Destination"),
            destinations.get("OnFailure", {}).get("Destination"),
        )

    # --- helpers -----------------------------------------------------------------------------

    async def _qualifier(self, ref: FunctionRef) -> str:
        try:
            await self._functions.resolve(ref)  # the function, version or alias must exist
        except FunctionNotFound:
            raise FunctionDoesNotExist() from None
        return ref.qualifier or LATEST

    async def _update(self, ref: FunctionRef, qualifier: str, change: Any) -> Document | None:
        try:
            return await self._settings.update(
                ref.region, ref.name, SettingKind.EVENT_INVOKE_CONFIG, qualifier, change
            )
        except FunctionNotFound:
            raise FunctionDoesNotExist() from None

    async def _destinations(self, ref: FunctionRef, config: dict[str, Any]) -> dict[str, Any]:
        checked: dict[str, Any] = {}
        for when in ("OnSuccess", "OnFailure"):
            destination = (config.get(when) or {}).get("Destination")
            if destination and not destination.startswith(_AWS_DESTINATIONS):
                raise InvalidParameter(_invalid_destinations(config))
            if destination:
                self.check_target(ref, destination)
                if destination.startswith("arn:aws:lambda:"):
                    await self._check_function_exists(ref, destination)
                checked[when] = {"Destination": destination}
        return checked

    async def _check_function_exists(self, ref: FunctionRef, arn: str) -> None:
        target = parse_function_ref(arn, ref.region, self._functions.account_id)
        try:
            await self._functions.resolve(target)
        except FunctionNotFound:
            # AWS's wording for a destination it cannot deliver to (as its SDK errors show)
            raise InvalidParameter(f"The destination ARN {arn} is invalid.") from None

    def check_dead_letter_target(self, ref: FunctionRef, arn: str) -> None:
        """DeadLetterConfig.TargetArn: AWS takes an SQS queue or an SNS topic; Lamina delivers to
        its built-in queues (control-api.md §4.15)."""
        if not arn.startswith("arn:aws:sqs:"):
            raise InvalidParameter(
                f"Lamina delivers dead letters to built-in queues (arn:aws:sqs:...) only, not to "
                f"{arn}."
            )
        self.check_target(ref, arn)

    def check_target(self, ref: FunctionRef, arn: str) -> None:
        """A destination or dead-letter target Lamina can deliver to: one of its own functions
        (not the function itself) or an existing built-in queue."""
        if arn.startswith("arn:aws:sqs:"):
            queue = self._queues.parse_arn(arn)
            if queue is None or queue.region != ref.region or not self._queues.exists(queue):
                raise InvalidParameter(
                    f"The destination {arn} is not a built-in queue of this account and region; "
                    "create it first (lamina queue create NAME)."
                )
            return
        if arn.startswith("arn:aws:lambda:"):
            target = parse_function_ref(arn, ref.region, self._functions.account_id)
            if target.name == ref.name:
                # control-api.md §4.15 (AWS wording)
                raise InvalidParameter(
                    "You can't specify the function as a destination for itself."
                )
            return
        raise InvalidParameter(
            f"Lamina delivers to Lambda functions and built-in queues (arn:aws:sqs:...) only, "
            f"not to {arn}."
        )

    def _arn(self, ref: FunctionRef, qualifier: str) -> str:
        return self._functions.arn(FunctionRef(ref.region, ref.account, ref.name, qualifier))

    def _wire(self, ref: FunctionRef, qualifier: str, document: Document) -> Document:
        destinations = document.get("DestinationConfig", {})
        out: Document = {
            "LastModified": document["LastModified"],
            "FunctionArn": self._arn(ref, qualifier),
            "DestinationConfig": {
                "OnSuccess": destinations.get("OnSuccess", {}),
                "OnFailure": destinations.get("OnFailure", {}),
            },
        }
        for name in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds"):
            if name in document:
                out[name] = document[name]
        return out


def _invalid_destinations(config: dict[str, Any]) -> str:
    """AWS's wording for a destination of a service it does not deliver to, which prints the
    request's DestinationConfig as Java does (LocalStack's AWS snapshot
    put_destination_invalid_service_arn)."""

    def shown(when: str) -> str:
        destination = (config.get(when) or {}).get("Destination")
        return "null" if destination is None else f"{when}(destination={destination})"

    return (
        f"The provided destination config DestinationConfig(onSuccess={shown('OnSuccess')}, "
        f"onFailure={shown('OnFailure')}) is invalid."
    )
