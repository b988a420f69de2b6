"""A function, its `$LATEST` version and their configuration, as immutable values."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

LATEST = "$LATEST"


class State(enum.StrEnum):
    """Lifecycle of a function version (AWS `State`)."""

    PENDING = "Pending"
    ACTIVE = "Active"
    FAILED = "Failed"
    INACTIVE = "Inactive"


class UpdateStatus(enum.StrEnum):
    """Outcome of the last update of a version (AWS `LastUpdateStatus`)."""

    IN_PROGRESS = "InProgress"
    SUCCESSFUL = "Successful"
    FAILED = "Failed"


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    log_format: str = "Text"
    log_group: str | None = None  # None: the default /aws/lambda/<name>
    application_log_level: str | None = None
    system_log_level: str | None = None


@dataclass(frozen=True, slots=True)
class FunctionConfig:
    """What a user configures; everything the execution engine needs besides the code."""

    runtime: str
    handler: str
    role: str
    description: str = ""
    timeout: int = 3
    memory_size: int = 128
    environment: Mapping[str, str] = field(default_factory=dict)
    ephemeral_storage: int = 512
    architectures: tuple[str, ...] = ("x86_64",)
    layers: tuple[str, ...] = ()
    tracing_mode: str = "PassThrough"
    dead_letter_target: str | None = None
    kms_key_arn: str | None = None
    logging: LoggingConfig = field(default_factory=LoggingConfig)


@dataclass(frozen=True, slots=True)
class CodeRef:
    """A deployment package: the SHA-256 of the zip (hex) and its size in bytes."""

    sha256_hex: str
    size: int
    unzipped_size: int


@dataclass(frozen=True, slots=True)
class Status:
    """The state fields AWS reports for a version."""

    state: State
    state_reason: str | None = None
    state_reason_code: str | None = None
    last_update: UpdateStatus | None = None
    last_update_reason: str | None = None
    last_update_reason_code: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class FunctionVersion:
    """One version of a function (only `$LATEST` is mutable).

    Compared and hashed by identity: a value stands for one stored state (its RevisionId), and
    layers above memoize per value.
    """

    version: str
    config: FunctionConfig
    code: CodeRef
    status: Status
    last_modified: datetime
    revision_id: str
    # A published version: the Description `$LATEST` had when it was made (PublishVersion may
    # give the version another one); None for `$LATEST` and for versions stored before.
    source_description: str | None = None


@dataclass(frozen=True, slots=True)
class Function:
    """A function in one region of the account."""

    region: str
    name: str
    latest: FunctionVersion
    tags: Mapping[str, str] = field(default_factory=dict)
