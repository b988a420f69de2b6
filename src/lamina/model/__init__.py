"""Frozen domain values: functions, versions, their configuration and code. Imports nothing else
from lamina but `errors`."""
