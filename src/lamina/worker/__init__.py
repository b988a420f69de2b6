"""Execution environments: launch one from a zygote, drive invocations over its private
channel, capture its log, map sandbox failures (timeout, OOM, crash) to Lambda's results.
Imports sandbox, model and observability; never api, control or store."""
