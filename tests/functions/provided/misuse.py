"""A custom runtime (stdlib Python, started by a shell `bootstrap`) that misuses the Runtime API
on request, to check the answers a runtime gets (runtime-api.md §1). Each event names a case;
`report` returns what the earlier cases observed. With INIT_FAIL set, it reports an init error."""

import http.client
import json
import os
import uuid
from typing import Any

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
BASE = "/2018-06-01/runtime"
seen: list[dict[str, Any]] = []
connection = http.client.HTTPConnection(API)


def call(
    method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, bytes, http.client.HTTPResponse]:
    connection.request(method, BASE + path, body=body, headers=headers or {})
    answer = connection.getresponse()
    return answer.status, answer.read(), answer


def observe(case: str, status: int, body: bytes) -> None:
    seen.append({"case": case, "status": status, "body": json.loads(body or b"null")})


if os.environ.get("INIT_FAIL"):
    document: dict[str, Any] = {"errorMessage": "cannot start", "errorType": "Runtime.Custom"}
    status, body, _ = call(
        "POST",
        "/init/error",
        json.dumps(document).encode(),
        {"Lambda-Runtime-Function-Error-Type": "Runtime.Custom"},
    )
    print("init/error answered", status, body.decode())
    raise SystemExit(1)

while True:
    _status, event_raw, answer = call("GET", "/invocation/next")
    request_id = answer.getheader("Lambda-Runtime-Aws-Request-Id")
    case = json.loads(event_raw).get("case")
    respond = f"/invocation/{request_id}/response"
    if case == "wrong-id":
        observe(case, *call("POST", f"/invocation/{uuid.uuid4()}/response", b"{}")[:2])
        call("POST", respond, b'{"answered": true}')
    elif case == "twice":
        call("POST", respond, b'{"first": true}')
        observe(case, *call("POST", respond, b'{"second": true}')[:2])
    elif case == "next-while-busy":
        observe(case, *call("GET", "/invocation/next")[:2])
        call("POST", respond, b'{"answered": true}')
    elif case == "oversize":
        observe(case, *call("POST", respond, b"x" * (6 * 1024 * 1024 + 101))[:2])
    elif case == "error":
        document = {"errorMessage": "it broke", "errorType": "CustomError", "stackTrace": ["a"]}
        call(
            "POST",
            f"/invocation/{request_id}/error",
            json.dumps(document).encode(),
            {"Lambda-Runtime-Function-Error-Type": "Function.CustomError"},
        )
    elif case == "malformed-error":
        call(
            "POST",
            f"/invocation/{request_id}/error",
            b"not json at all",
            {"Lambda-Runtime-Function-Error-Type": "Function.BadBody"},
        )
    elif case == "exit":
        raise SystemExit(7)
    else:
        call("POST", respond, json.dumps({"seen": seen}).encode())
