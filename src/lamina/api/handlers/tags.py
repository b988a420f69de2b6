"""TagResource, UntagResource, ListTags (functions only, unqualified ARNs, as AWS)."""

from __future__ import annotations

from lamina.api.context import Call, Handler, Output
from lamina.errors import InvalidParameter
from lamina.ids import FunctionRef, parse_function_ref


def _function(call: Call) -> FunctionRef:
    resource: str = call.params["Resource"]
    if not resource.startswith("arn:"):
        raise InvalidParameter(f"Invalid resource ARN: {resource}")
    ref = parse_function_ref(resource, call.region, call.services.account_id)
    if ref.qualifier is not None:
        raise InvalidParameter(
            "Tags on function aliases and versions are not supported. "
            "Please specify a function ARN."
        )
    return ref


async def tag_resource(call: Call) -> Output:
    await call.services.functions.tag(_function(call), call.params["Tags"])
    return {}


async def untag_resource(call: Call) -> Output:
    await call.services.functions.untag(_function(call), call.params["TagKeys"])
    return {}


async def list_tags(call: Call) -> Output:
    function = await call.services.functions.get(_function(call))
    return {"Tags": dict(function.tags)}


HANDLERS: dict[str, Handler] = {
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListTags": list_tags,
}
