"""A handler in a subdirectory, addressed as `lib/handlers/app.handler`."""

import os
from typing import Any


def handler(event: Any, context: Any) -> Any:
    return {"where": __name__, "file": __file__, "cwd": os.getcwd()}
