"""Runtime name -> how to run it. Interpreters are found by absolute path (the pyenv shim
costs ~110 ms per start), overridable per runtime with LAMINA_PYTHON3_11 and friends."""

from __future__ import annotations

import glob
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass

PYTHON_RUNTIMES = ("python3.11", "python3.12", "python3.13")


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
