"""`lamina invoke --async`, `lamina queue ...` and `lamina events NAME`, and the AWS CLI's
`invoke --invocation-type Event` and `put-function-event-invoke-config`, against a live server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from async_support import ASYNC_HANDLER, Queues, records
from lamina_support import (
    aws_json,
    base_env,
    client,
    create_params,
    lamina_cli,
    make_zip,
    unique_name,
    wait_active,
)


def lamina(server: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return lamina_cli(server.endpoint, *args)


def aws(server: Any, home: Path, *args: str) -> Any:
    return aws_json(server.endpoint, home, *args)


def test_queue_commands(server: Any) -> None:
    name = unique_name("cliq")
    created = lamina(server, "queue", "create", name)
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == f"arn:aws:sqs:us-east-1:000000000000:{name}"
    again = lamina(server, "queue", "create", name)
    assert again.returncode == 1
    assert "ResourceConflictException" in again.stderr
    for body in ("one", "two", "three"):
        sent = lamina(server, "queue", "send", name, body, "--attribute", "k=v")
        assert sent.returncode == 0, sent.stderr
    listed = lamina(server, "queue", "ls")
    assert f"{name}\t3\t" in listed.stdout
    peeked = lamina(server, "queue", "peek", name, "-n", "2")
    assert [json.loads(line)["Body"] for line in peeked.stdout.splitlines()] == ["one", "two"]
    shown = json.loads(lamina(server, "queue", "show", name).stdout)
    assert shown["Messages"] == 3
    drained = lamina(server, "queue", "drain", name, "--all")
    assert drained.stderr == f"Took 3 messages from {name}.\n"
    messages = [json.loads(line) for line in drained.stdout.splitlines()]
    assert [(m["Body"], m["Attributes"]) for m in messages] == [
        ("one", {"k": "v"}),
        ("two", {"k": "v"}),
        ("three", {"k": "v"}),
    ]
    deleted = lamina(server, "queue", "delete", name)
    assert (deleted.returncode, deleted.stdout) == (0, f"Deleted queue {name}.\n")
    gone = lamina(server, "queue", "show", name)
    assert gone.returncode == 1
    assert "ResourceNotFoundException" in gone.stderr
    bad = lamina(server, "queue", "send", name, "x", "--attribute", "novalue")
    assert bad.returncode == 2


def test_invoke_async_and_events(server: Any) -> None:
    lam = client(server.endpoint)
    name = unique_name("cli-async")
    lam.create_function(**create_params(name, make_zip({"app.py": ASYNC_HANDLER})))
    wait_active(lam, name)
    queued = lamina(server, "invoke", name, '{"a": 1}', "--async")
    assert queued.returncode == 0, queued.stderr
    request_id = queued.stdout.strip()
    assert len(request_id) == 36
    for _ in range(200):
        stats = json.loads(lamina(server, "events", name).stdout)
        if stats["outcomes"].get("succeeded") == 1:
            break
    assert stats["outcomes"] == {"succeeded": 1}
    assert stats["pending"] == 0


def test_aws_cli_async_invoke_with_a_destination(server: Any, tmp_path: Path) -> None:
    lam, queues = client(server.endpoint), Queues(server.endpoint)
    name = unique_name("aws-async")
    lam.create_function(**create_params(name, make_zip({"app.py": ASYNC_HANDLER})))
    wait_active(lam, name)
    queue_name = unique_name("awsq")
    queue = queues.create(queue_name)
    home = tmp_path / "home"
    home.mkdir()
    config = aws(
        server,
        home,
        "lambda",
        "put-function-event-invoke-config",
        "--function-name",
        name,
        "--maximum-retry-attempts",
        "0",
        "--destination-config",
        json.dumps({"OnSuccess": {"Destination": queue}}),
    )
    assert config["MaximumRetryAttempts"] == 0
    answer = aws(
        server,
        home,
        "lambda",
        "invoke",
        "--function-name",
        name,
        "--invocation-type",
        "Event",
        "--payload",
        '{"via": "aws"}',
        str(tmp_path / "out.json"),
    )
    assert answer["StatusCode"] == 202
    (record,) = records(queues.wait(queue_name, 1))
    assert record["requestPayload"] == {"via": "aws"}


def test_bad_names_and_refusals_are_one_clear_line(server: Any) -> None:
    for name in (unique_name("nosuch"), "a/b", "hello:live"):  # no function of that name
        missing = lamina(server, "events", name)
        assert missing.returncode == 1
        assert "ResourceNotFoundException: Function not found:" in missing.stderr
    for command in (("versions", ".."), ("publish", "."), ("invoke", "..", "{}")):
        # normalised out of the request's path, the signature would not match
        dotted = lamina(server, *command)
        assert dotted.returncode == 2, dotted.stderr
        assert "is not a function name" in dotted.stderr
    for usage in (
        ("versions", "\udcff"),  # the byte 0xff on the command line: not UTF-8 text
        ("queue", "send", "q", "\udcff"),
        ("invoke", "somefunction", "{}", "--qualifier", ""),  # not $LATEST
        ("invoke", "somefunction", "{}", "--async", "--log"),
        ("queue", "send", "q", "x", "--attribute", "k=v", "--attribute", "k=w"),
    ):
        refused = lamina(server, *usage)
        assert refused.returncode == 2, (usage, refused.stderr)
    for name in ("", ".."):  # could only reach another endpoint
        refused = lamina(server, "queue", "show", name)
        assert refused.returncode == 2, refused.stderr
        assert "is not a name" in refused.stderr
    slashed = lamina(server, "queue", "show", "a/b")  # one name, escaped: the server judges it
    assert slashed.returncode == 1
    assert "Invalid queue name 'a/b'" in slashed.stderr
    unnamed = lamina(server, "invoke", "", "{}")  # botocore's check, with what is wrong
    assert unnamed.returncode == 2
    assert "Invalid length for parameter FunctionName" in unnamed.stderr
    lam = client(server.endpoint)
    name = unique_name("throttled")
    lam.create_function(**create_params(name, make_zip({"app.py": ASYNC_HANDLER})))
    wait_active(lam, name)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    throttled = lamina(server, "invoke", name, "{}")
    assert throttled.returncode == 1
    assert throttled.stderr.strip() == (
        "lamina: TooManyRequestsException: Rate Exceeded. "
        "(Reason: ReservedFunctionConcurrentInvocationLimitExceeded)"
    )


def depth(server: Any, name: str) -> int:
    shown = lamina(server, "queue", "show", name)
    assert shown.returncode == 0, shown.stderr
    count: int = json.loads(shown.stdout)["Messages"]
    return count


def test_drain_removes_only_what_it_wrote(server: Any) -> None:
    """A drain whose output fails loses nothing: a message is removed once written (an audit
    found `drain --all | head -1` and `drain > /dev/full` emptying the queue)."""
    name = unique_name("drainq")
    assert lamina(server, "queue", "create", name).returncode == 0
    queues = Queues(server.endpoint)
    for index in range(50):  # 200 KB in all: more than a pipe holds, so a closed one is seen
        queues.send(name, f"m{index}:" + "x" * 4000)
    command = [sys.executable, "-m", "lamina", "queue", "drain", name]
    env = base_env({"HOME": "/tmp", "LAMINA_ENDPOINT": server.endpoint})
    with open("/dev/full", "w") as full:
        failed = subprocess.run(
            command, stdout=full, stderr=subprocess.PIPE, env=env, text=True, check=False
        )
    assert failed.returncode == 1
    assert failed.stderr.startswith("lamina: cannot write the messages (No space left on device)")
    assert depth(server, name) == 50
    with subprocess.Popen(
        [*command, "--all"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
        bufsize=1,
    ) as closed:
        assert closed.stdout is not None
        assert closed.stderr is not None
        first = json.loads(closed.stdout.readline())
        closed.stdout.close()  # as `| head -1` does
        said = closed.stderr.read()
    assert closed.returncode == 1, said
    assert first["Body"].startswith("m0:")
    taken = int(said.split("took ")[1].split(",")[0])
    assert taken >= 1
    assert depth(server, name) == 50 - taken  # all that was not written is still queued
    both = lamina(server, "queue", "drain", name, "--all", "-n", "1")
    assert both.returncode == 2
