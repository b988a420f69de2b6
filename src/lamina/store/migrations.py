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
)
