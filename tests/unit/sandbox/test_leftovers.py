"""The registry that lets a server clear what a SIGKILLed predecessor left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lamina.sandbox import leftovers


def test_dead_instances_are_cleared_and_live_ones_kept(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "import os; print(os.getpid())"]
    dead = subprocess.run(command, capture_output=True, text=True, check=True)
    (tmp_path / "gone").write_text(dead.stdout.strip())
    (tmp_path / "garbage").write_text("not a pid")
    leftovers.register("mine", tmp_path)
    assert (tmp_path / "mine").read_text() == str(os.getpid())
    cleared: list[str] = []
    assert sorted(leftovers.sweep(cleared.append, tmp_path)) == ["garbage", "gone"]
    assert sorted(cleared) == ["garbage", "gone"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]
    leftovers.unregister("mine", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_failing_clear_keeps_the_entry_for_next_time(tmp_path: Path) -> None:
    (tmp_path / "stuck").write_text("999999999")

    def fail(instance: str) -> None:
        raise RuntimeError(instance)

    assert leftovers.sweep(fail, tmp_path) == []
    assert (tmp_path / "stuck").exists()
