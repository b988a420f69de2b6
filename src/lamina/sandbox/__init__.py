"""Mechanism only: cgroups, the spawner and zygote client, sandbox specs.

Never sees a function name, ARN or HTTP type; imports only errors.
"""
