"""Versioned schema. Each step runs once, in order, inside its own transaction.

Append new steps; never edit a released one. Plain SQL that PostgreSQL also accepts.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: functions and their versions ($LATEST is the version named '$LATEST').
    """
    CREATE TABLE functions (
        region      TEXT NOT NULL,
        name        TEXT NOT NULL,
        tags        TEXT NOT NULL,
        PRIMARY KEY (region, name)
    );
    CREATE TABLE function_versions (
        region      TEXT NOT NULL,
        name        TEXT NOT NULL,
        version     TEXT NOT NULL,
        state       TEXT NOT NULL,
        code_sha256 TEXT NOT NULL,
        code_size   BIGINT NOT NULL,
        document    TEXT NOT NULL,
        PRIMARY KEY (region, name, version),
        FOREIGN KEY (region, name) REFERENCES functions (region, name) ON DELETE CASCADE
    );
    CREATE INDEX function_versions_code ON function_versions (code_sha256);
    CREATE INDEX function_versions_state ON function_versions (state);
    """,
    # 2: published version numbers are never reused, even after a version is deleted.
    """
    ALTER TABLE functions ADD COLUMN last_version INTEGER NOT NULL DEFAULT 0;
    """,
    # 3: aliases, and per-function settings keyed by kind and qualifier ('' for the function):
    # reserved concurrency, provisioned concurrency configs, event invoke configs.
    """
    CREATE TABLE aliases (
        region      TEXT NOT NULL,
        name        TEXT NOT NULL,
        alias       TEXT NOT NULL,
        document    TEXT NOT NULL,
        PRIMARY KEY (region, name, alias),
        FOREIGN KEY (region, name) REFERENCES functions (region, name) ON DELETE CASCADE
    );
    CREATE TABLE function_settings (
        region      TEXT NOT NULL,
        name        TEXT NOT NULL,
        kind        TEXT NOT NULL,
        qualifier   TEXT NOT NULL,
        document    TEXT NOT NULL,
        PRIMARY KEY (region, name, kind, qualifier),
        FOREIGN KEY (region, name) REFERENCES functions (region, name) ON DELETE CASCADE
    );
    CREATE INDEX function_settings_kind ON function_settings (kind);
    """,
    # 4: the durable async event queue, its outcome counters, and the built-in queues that
    # destinations and dead-letter configs deliver to.
    """
    CREATE TABLE async_events (
        id          TEXT PRIMARY KEY,
        region      TEXT NOT NULL,
        name        TEXT NOT NULL,
        qualifier   TEXT,
        payload     BLOB NOT NULL,
        accepted_at DOUBLE PRECISION NOT NULL,
        due_at      DOUBLE PRECISION NOT NULL,
        progress    TEXT NOT NULL
    );
    CREATE TABLE async_outcomes (
        region      TEXT NOT NULL,
        name        TEXT NOT NULL,
        outcome     TEXT NOT NULL,
        count       BIGINT NOT NULL,
        PRIMARY KEY (region, name, outcome)
    );
    CREATE TABLE queues (
        region      TEXT NOT NULL,
        name        TEXT NOT NULL,
        created_at  DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (region, name)
    );
    CREATE TABLE queue_messages (
        id          INTEGER PRIMARY KEY,
        region      TEXT NOT NULL,
        queue       TEXT NOT NULL,
        message_id  TEXT NOT NULL,
        body        TEXT NOT NULL,
        attributes  TEXT NOT NULL,
        sent_at     DOUBLE PRECISION NOT NULL,
        FOREIGN KEY (region, queue) REFERENCES queues (region, name) ON DELETE CASCADE
    );
    CREATE INDEX queue_messages_queue ON queue_messages (region, queue, id);
    """,
    # 5: layer versions. A deleted version stays as a tombstone (`deleted` = 1): its number is
    # never reused, and functions that already use it keep its code (AWS DeleteLayerVersion).
    # `policy` is the version's resource policy document (statements and RevisionId).
    """
    CREATE TABLE layer_versions (
        region      TEXT NOT NULL,
        name        TEXT NOT NULL,
        version     INTEGER NOT NULL,
        arn         TEXT NOT NULL,
        code_sha256 TEXT NOT NULL,
        code_size   BIGINT NOT NULL,
        deleted     INTEGER NOT NULL DEFAULT 0,
        document    TEXT NOT NULL,
        policy      TEXT,
        PRIMARY KEY (region, name, version)
    );
    CREATE INDEX layer_versions_code ON layer_versions (code_sha256);
    """,
    # 6: built-in queue messages are also deleted by id, once a reader has them (DeleteMessages)
    """
    CREATE INDEX queue_messages_id ON queue_messages (region, queue, message_id);
    """,
)
