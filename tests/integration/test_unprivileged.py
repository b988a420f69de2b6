"""`lamina server` run as an unprivileged user (nobody, 65534): isolation "userns" where user
namespaces work, "rlimits" (loudly insecure) where they do not, and never "strict".

How the server is run as nobody: root's interpreters live under /root (mode 0700), so neither
the venv's python (a symlink into /root/.pyenv) nor the pyenv runtimes work for nobody. The
venv's python can still be exec'd through setpriv, but it then cannot find its own standard
library, and it cannot re-exec itself (sys.executable), which the isolation probe needs. So
the server runs on the system's /usr/bin/python3.11 with the repository's src and the venv's
(world-readable) site-packages on PYTHONPATH, and functions get LAMINA_PYTHON3_11 likewise.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sysconfig
import tempfile
import threading
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, WaiterError
from lamina_support import client, create_params, make_zip, remove_tree

pytestmark = pytest.mark.integration

NOBODY = 65534
PYTHON = "/usr/bin/python3.11"
REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"
SITE_PACKAGES = sysconfig.get_paths()["purelib"]
SETPRIV = [
    "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--",
]  # fmt: skip
PROBES = Path(__file__).resolve().parents[1] / "functions" / "isolation" / "probes.py"
HELLO = "def handler(event, context):\n    return {'hello': event.get('name', 'world')}\n"
# Forces "rlimits" without touching host settings: the server runs under a seccomp filter that
# denies unshare (and namespace clones), so its user-namespace probe fails as on a host
# without user namespaces.
NO_NAMESPACES = (
    "import os, sys\n"
    "from lamina_inside import linux\n"
    "linux.install_seccomp_denylist(['unshare', 'setns'])\n"
    "os.execv(sys.executable, [sys.executable, '-m', 'lamina', 'server', *sys.argv[1:]])\n"
)

if os.geteuid() != 0 or shutil.which("setpriv") is None or not os.access(PYTHON, os.X_OK):
    pytest.skip(
        "needs root (to become nobody), setpriv and /usr/bin/python3.11", allow_module_level=True
    )


def nobody_env(data_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A clean environment for nobody: nothing of root's (pyenv shims, AWS_*, LAMINA_*)."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(data_dir),
        "LANG": "C.UTF-8",
        "PYTHONPATH": f"{SRC}:{SITE_PACKAGES}",
        "LAMINA_PYTHON3_11": PYTHON,
        "LAMINA_STEM_POOL": "2",  # as conftest.server_env: not the memory-sized default
        **(extra or {}),
    }


def as_nobody(
    command: list[str], data_dir: Path, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SETPRIV, *command],
        env=nobody_env(data_dir),
        cwd="/",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        **kwargs,
    )


def _userns_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        [*SETPRIV, "unshare", "--user", "--map-root-user", "true"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return probe.returncode == 0


USERNS_WORKS = _userns_works()


@dataclass
class NobodyServer:
    process: subprocess.Popen[str]
    data_dir: Path
    output: list[str] = field(default_factory=list)
    endpoint: str | None = None
    pump: threading.Thread | None = None

    @property
    def text(self) -> str:
        return "".join(self.output)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)
        if self.pump is not None:
            self.pump.join(timeout=20)
        if self.process.stdout is not None:
            self.process.stdout.close()


Start = Callable[..., NobodyServer]


@pytest.fixture
def nobody_dir() -> Iterator[Path]:
    """A data directory nobody owns, in a place nobody can reach (/tmp, not pytest's 0700
    basetemp under /tmp/pytest-of-root)."""
    path = Path(tempfile.mkdtemp(prefix="lamina-nobody-", dir="/tmp"))
    os.chown(path, NOBODY, NOBODY)
    yield path
    if path.exists():
        remove_tree(path)


@pytest.fixture
def start_nobody(nobody_dir: Path) -> Iterator[Start]:
    """start(extra_env, force_rlimits=False): `lamina server` as nobody. Returns once it
    printed its readiness line or exited (an event, never a sleep); stopped at teardown."""
    started: list[NobodyServer] = []

    def start(extra: dict[str, str] | None = None, force_rlimits: bool = False) -> NobodyServer:
        args = ["--port", "0", "--data-dir", str(nobody_dir)]
        if force_rlimits:
            command = [PYTHON, "-c", NO_NAMESPACES, *args]
        else:
            command = [PYTHON, "-m", "lamina", "server", *args]
        process = subprocess.Popen(
            [*SETPRIV, *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=nobody_env(nobody_dir, extra),
            cwd="/",
        )
        live = NobodyServer(process, nobody_dir)
        started.append(live)
        ready = threading.Event()

        def pump() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                live.output.append(line)
                if live.endpoint is None and "Lamina listening on " in line:
                    live.endpoint = line.split("Lamina listening on ", 1)[1].split()[0]
                    ready.set()
            ready.set()

        live.pump = threading.Thread(target=pump, daemon=True)
        live.pump.start()
        if not ready.wait(60):
            live.stop()
            raise AssertionError("the server neither started nor exited:\n" + live.text)
        return live

    yield start
    for live in started:
        live.stop()


def deploy(live: NobodyServer, code: bytes, **overrides: Any) -> tuple[Any, str]:
    """Create a function and wait for Active; a failure carries the server's own account."""
    assert live.endpoint is not None, live.text
    lam = client(live.endpoint)
    name = f"fn-{uuid.uuid4().hex[:12]}"
    try:
        lam.create_function(**create_params(name, code, **{"Timeout": 30, **overrides}))
        lam.get_waiter("function_active_v2").wait(
            FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
        )
    except (ClientError, WaiterError) as error:
        raise AssertionError(f"{error}\n--- server output ---\n{live.text[-4000:]}") from None
    return lam, name


def invoke(lam: Any, name: str, event: dict[str, Any]) -> Any:
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode())
    payload = json.loads(response["Payload"].read())
    assert response.get("FunctionError") is None, payload
    return payload


def shell_runtime_zip() -> bytes:
    """A custom runtime: a shell `bootstrap` answering through the Runtime API with curl."""
    bootstrap = (
        '#!/bin/sh\nAPI="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"\nwhile true; do\n'
        '  H=$(mktemp); E=$(curl -sS -D "$H" "$API/invocation/next")\n'
        "  ID=$(grep -Fi Lambda-Runtime-Aws-Request-Id \"$H\" | tr -d '[:space:]' | cut -d: -f2)\n"
        '  curl -sS -X POST "$API/invocation/$ID/response" -d "{\\"shell\\": $E}" >/dev/null\n'
        "done\n"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o100755 << 16
        archive.writestr(info, bootstrap)
    return buffer.getvalue()


def probes_zip() -> bytes:
    return make_zip({"app.py": PROBES.read_text()})


# --- the set-up itself ---------------------------------------------------------------------


def test_nobody_can_run_the_server_code(nobody_dir: Path) -> None:
    """Precondition of this module: nobody can run the interpreter and import the server."""
    check = "import lamina.cli.main, uvicorn, orjson, cryptography, lamina_inside.zygote"
    result = as_nobody([PYTHON, "-c", check], nobody_dir)
    assert result.returncode == 0, result.stderr


# --- (1) it starts and serves --------------------------------------------------------------


def test_starts_with_the_best_isolation_available_and_serves(start_nobody: Start) -> None:
    live = start_nobody()
    assert live.endpoint is not None, live.text
    lam, name = deploy(live, make_zip({"app.py": HELLO}))
    assert invoke(lam, name, {"name": "nobody"}) == {"hello": "nobody"}
    lam, probes = deploy(live, probes_zip())
    me = invoke(lam, probes, {"probe": "identity"})
    if USERNS_WORKS:
        assert "INSECURE" not in live.text, live.text
        # userns: root inside a user namespace that maps only the server's own uid.
        assert me["uid_map"] == {"ok": True, "value": ["0", str(NOBODY), "1"]}, me
        assert me["cwd"] == "/var/task"
        assert me["status"]["NoNewPrivs"] == "1"
        assert me["status"]["Seccomp"] == "2"
        assert me["pid_namespace"] != os.readlink("/proc/self/ns/pid")
        lam, custom = deploy(live, shell_runtime_zip(), Runtime="provided.al2023")
        assert invoke(lam, custom, {"n": 2}) == {"shell": {"n": 2}}
    else:
        assert "INSECURE" in live.text, live.text


# --- (2) userns still isolates ---------------------------------------------------------


@pytest.mark.skipif(not USERNS_WORKS, reason="user namespaces do not work for nobody here")
def test_userns_function_cannot_read_the_host_or_see_its_processes(
    start_nobody: Start,
) -> None:
    live = start_nobody()
    assert live.endpoint is not None, live.text
    data = live.data_dir
    assert (data / "state.db").is_file()
    lam, name = deploy(live, probes_zip())
    paths = [
        "/root",
        "/root/.bashrc",
        str(data / "state.db"),
        str(data / "keys" / "code.key"),
        str(data),
        f"/proc/1/root{data / 'state.db'}",
    ]
    outcomes = invoke(lam, name, {"probe": "read", "paths": paths})
    assert {path: o for path, o in outcomes.items() if o["ok"]} == {}
    host_pids = [os.getpid(), live.process.pid]
    seen = invoke(lam, name, {"probe": "processes", "host_pids": host_pids})
    assert len(seen["pids"]) <= 4, seen["pids"]
    assert 1 in seen["pids"]
    assert seen["parent"] == 1
    assert not set(host_pids) & set(seen["pids"])
    assert all(not kill["ok"] for kill in seen["kill"].values()), seen["kill"]
    view = invoke(lam, name, {"probe": "filesystem"})
    assert view["var"] == ["lang", "runtime", "task"]  # as in AWS: /var/runtime holds runtimes
    assert "root" not in view["root"]


# --- (3) strict is refused -------------------------------------------------------------


@pytest.mark.parametrize("force_rlimits", [False, True], ids=["auto-detected", "rlimits"])
def test_demanding_strict_isolation_refuses_to_start(
    start_nobody: Start, force_rlimits: bool
) -> None:
    if not force_rlimits and not USERNS_WORKS:
        pytest.skip("user namespaces do not work for nobody here: covered by the rlimits case")
    live = start_nobody({"LAMINA_ISOLATION": "strict"}, force_rlimits=force_rlimits)
    assert live.endpoint is None, f"served without strict isolation:\n{live.text}"
    assert live.process.wait(timeout=30) != 0
    assert "LAMINA_ISOLATION=strict" in live.text, live.text
    assert "Strict isolation" in live.text, live.text
    expected = "rlimits" if force_rlimits else "userns"
    assert f"'{expected}'" in live.text, live.text


# --- (4) rlimits only ------------------------------------------------------------------


def test_rlimits_only_mode_warns_and_serves(start_nobody: Start) -> None:
    live = start_nobody(force_rlimits=True)
    assert live.endpoint is not None, live.text
    assert "INSECURE" in live.text, live.text
    lam, name = deploy(live, make_zip({"app.py": HELLO}))
    assert invoke(lam, name, {}) == {"hello": "world"}
    lam, probes = deploy(live, probes_zip())
    me = invoke(lam, probes, {"probe": "identity"})
    assert me["uid"] == NOBODY  # the server's own user, no namespaces
    assert me["nofile"] == [1024, 1024]
    assert me["address_space"][0] > 0  # memory capped by RLIMIT_AS
    # a custom runtime: without a network namespace its Runtime API takes any free port
    lam, custom = deploy(live, shell_runtime_zip(), Runtime="provided.al2023")
    assert invoke(lam, custom, {"n": 1}) == {"shell": {"n": 1}}
    # a failed init reaches its caller, and its lingering runtime is ended (no namespace to end)
    lam, missing = deploy(live, make_zip({"app.py": HELLO}), Handler="app.missing")
    response = lam.invoke(FunctionName=missing, Payload=json.dumps({"big": "x" * 1_000_000}))
    assert json.loads(response["Payload"].read())["errorType"] == "Runtime.HandlerNotFound"
