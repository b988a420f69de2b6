"""GetAccountSettings: AWS's quotas, the configured concurrency limit and this region's real
usage."""

from __future__ import annotations

from lamina.api.context import Call, Handler, Output

TOTAL_CODE_SIZE = 80_530_636_800  # 75 GB, AWS's default code storage quota
CODE_SIZE_UNZIPPED = 262_144_000
CODE_SIZE_ZIPPED = 52_428_800


async def get_account_settings(call: Call) -> Output:
    count, code_size = await call.services.functions.usage(call.region)
    code_size += await call.services.layers.usage(call.region)  # AWS counts layers too
    concurrency = call.services.concurrency
    return {
        "AccountLimit": {
            "TotalCodeSize": TOTAL_CODE_SIZE,
            "CodeSizeUnzipped": CODE_SIZE_UNZIPPED,
            "CodeSizeZipped": CODE_SIZE_ZIPPED,
            "ConcurrentExecutions": concurrency.limit,
            "UnreservedConcurrentExecutions": concurrency.unreserved(call.region),
        },
        "AccountUsage": {"TotalCodeSize": code_size, "FunctionCount": count},
    }


HANDLERS: dict[str, Handler] = {"GetAccountSettings": get_account_settings}
