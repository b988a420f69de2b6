"""Runtime name -> how to run it. Interpreters are found by absolute path (the pyenv shim
costs ~110 ms per start), overridable per runtime with LAMINA_PYTHON3_11 and friends."""

from __future__ import annotations

import glob
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass

import lamina_inside

PYTHON_RUNTIMES = ("python3.11", "python3.12", "python3.13")
# Custom runtimes: the function's `bootstrap` talks to the Runtime API, which the environment
# serves from a process forked off this interpreter's zygote (lamina_inside/runtime_api.py).
PROVIDED_RUNTIMES = ("provided.al2023", "provided.al2", "provided")
BRIDGE_RUNTIME = "python3.11"
# Node.js runs behind the same bridge: Node itself with our runtime script (a Runtime API
# client, lamina_inside/node/runtime.mjs), mounted read-only at /var/runtime as AWS lays it out.
NODE_RUNTIMES = ("nodejs20.x",)
RUNTIME_DIR = "/var/runtime"
NODE_RUNTIME_SOURCE = os.path.join(os.path.dirname(os.path.abspath(lamina_inside.__file__)), "node")
NODE_RUNTIME_SCRIPT = "runtime.mjs"


def zygote_runtime(runtime: str) -> str:
    """The Python runtime whose zygote makes environments for `runtime`."""
    return BRIDGE_RUNTIME if uses_bootstrap(runtime) else runtime


def uses_bootstrap(runtime: str) -> bool:
    """Whether the environment serves the Runtime API to a process it starts (see argv)."""
    return runtime in PROVIDED_RUNTIMES or runtime in NODE_RUNTIMES


def bootstrap_argv(
    runtime: str, task_root: str, runtime_dir: str, node: str | None
) -> tuple[str, ...]:
    """What the bridge starts: the function's own `bootstrap`, or Node.js with our runtime."""
    if runtime in NODE_RUNTIMES:
        if node is None:
            raise ValueError(f"no Node.js is installed for {runtime}")
        return (node, f"{runtime_dir}/{NODE_RUNTIME_SCRIPT}")
    return (f"{task_root}/bootstrap",)


def find_node(overrides: Mapping[str, str]) -> str | None:
    """An absolute path to Node.js for nodejs20.x (LAMINA_NODEJS20_X overrides), or None."""
    override = overrides.get("nodejs20.x") or os.environ.get("LAMINA_NODEJS20_X")
    candidates = [override] if override else []
    candidates += [p for p in (shutil.which("node20"), shutil.which("node")) if p]
    for candidate in candidates:
        real = os.path.realpath(candidate)
        if os.access(real, os.X_OK) and os.path.isfile(real):
            return real
    return None


@dataclass(frozen=True, slots=True)
class PythonRuntime:
    name: str
    interpreter: str

    @property
    def execution_env(self) -> str:
        return f"AWS_Lambda_{self.name}"


def find_interpreter(runtime: str, overrides: Mapping[str, str]) -> str | None:
    """An absolute path to the interpreter for `python3.X`, or None if none is installed."""
    version = runtime.removeprefix("python")
    override = overrides.get(runtime)
    if override:
        return override
    candidates = sorted(glob.glob(f"/root/.pyenv/versions/{version}.*/bin/python{version}"))
    candidates += [p for p in (shutil.which(f"python{version}"),) if p]
    for candidate in candidates:
        real = os.path.realpath(candidate)
        if os.access(real, os.X_OK) and "shims" not in candidate:
            return real
    return None


def python_runtime(runtime: str, overrides: Mapping[str, str]) -> PythonRuntime | None:
    if runtime not in PYTHON_RUNTIMES:
        return None
    interpreter = find_interpreter(runtime, overrides)
    return PythonRuntime(runtime, interpreter) if interpreter else None
