"""CloudWatch Logs: DescribeLogGroups/Streams, GetLogEvents, FilterLogEvents, deletion and
retention (awsJson1_1, served by api/json_wire.py)."""

from __future__ import annotations

from lamina.api.context import Call, Handler, Output
from lamina.control.logs import LogService, event_id
from lamina.errors import InvalidParameter
from lamina.observability.logstore import GroupInfo, StreamInfo


def _service(call: Call) -> LogService:
    return call.services.logs


def _group(call: Call) -> str:
    """logGroupName, or the name inside logGroupIdentifier (a name or a log group ARN)."""
    name = call.params.get("logGroupName")
    identifier = call.params.get("logGroupIdentifier")
    if name is not None and identifier is not None:
        raise InvalidParameter("LogGroup name and LogGroup ARN are mutually exclusive parameters.")
    if identifier is not None:
        if identifier.startswith("arn:"):
            parts = identifier.split(":")
            if len(parts) < 7 or parts[5] != "log-group":
                raise InvalidParameter(f"Invalid log group ARN: {identifier}")
            return str(parts[6])
        return str(identifier)
    if name is None:
        raise InvalidParameter("Either logGroupName or logGroupIdentifier is required.")
    return str(name)


def _group_shape(call: Call, info: GroupInfo) -> Output:
    arn = _service(call).group_arn(call.region, info.name)
    return {
        "logGroupName": info.name,
        "creationTime": info.created_ms,
        "retentionInDays": info.retention_days,
        "metricFilterCount": 0,
        "arn": f"{arn}:*",
        "storedBytes": info.stored_bytes,
        "logGroupClass": "STANDARD",
        "logGroupArn": arn,
    }


def _stream_shape(call: Call, group: str, info: StreamInfo) -> Output:
    return {
        "logStreamName": info.name,
        "creationTime": info.created_ms,
        "firstEventTimestamp": info.first_event_ms,
        "lastEventTimestamp": info.last_event_ms,
        "lastIngestionTime": info.last_event_ms,
        "arn": _service(call).stream_arn(call.region, group, info.name),
        "storedBytes": info.stored_bytes,
    }


async def describe_log_groups(call: Call) -> Output:
    p = call.params
    groups, token = await _service(call).groups(
        call.region,
        p.get("logGroupNamePrefix"),
        p.get("logGroupNamePattern"),
        p.get("limit"),
        p.get("nextToken"),
    )
    return {"logGroups": [_group_shape(call, g) for g in groups], "nextToken": token}


async def describe_log_streams(call: Call) -> Output:
    p = call.params
    group = _group(call)
    streams, token = await _service(call).streams(
        call.region,
        group,
        p.get("logStreamNamePrefix"),
        p.get("orderBy"),
        bool(p.get("descending")),
        p.get("limit"),
        p.get("nextToken"),
    )
    return {"logStreams": [_stream_shape(call, group, s) for s in streams], "nextToken": token}


async def get_log_events(call: Call) -> Output:
    p = call.params
    page = await _service(call).get_events(
        call.region,
        _group(call),
        p["logStreamName"],
        p.get("startTime"),
        p.get("endTime"),
        p.get("nextToken"),
        p.get("limit"),
        bool(p.get("startFromHead")),
    )
    return {
        "events": [
            {"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.timestamp}
            for e in page.events
        ],
        "nextForwardToken": page.forward_token,
        "nextBackwardToken": page.backward_token,
    }


async def filter_log_events(call: Call) -> Output:
    p = call.params
    page = await _service(call).filter_events(
        call.region,
        _group(call),
        p.get("logStreamNames"),
        p.get("logStreamNamePrefix"),
        p.get("startTime"),
        p.get("endTime"),
        p.get("filterPattern"),
        p.get("nextToken"),
        p.get("limit"),
    )
    events = [
        {
            "logStreamName": e.stream,
            "timestamp": e.timestamp,
            "message": e.message,
            "ingestionTime": e.timestamp,
            "eventId": event_id(e),
        }
        for e in page.events
    ]
    return {"events": events, "searchedLogStreams": [], "nextToken": page.next_token}


async def delete_log_group(call: Call) -> Output:
    await _service(call).delete_group(call.region, call.params["logGroupName"])
    return {}


async def delete_log_stream(call: Call) -> Output:
    p = call.params
    await _service(call).delete_stream(call.region, p["logGroupName"], p["logStreamName"])
    return {}


async def put_retention_policy(call: Call) -> Output:
    p = call.params
    await _service(call).put_retention(call.region, p["logGroupName"], p["retentionInDays"])
    return {}


async def delete_retention_policy(call: Call) -> Output:
    await _service(call).delete_retention(call.region, call.params["logGroupName"])
    return {}


HANDLERS: dict[str, Handler] = {
    "DescribeLogGroups": describe_log_groups,
    "DescribeLogStreams": describe_log_streams,
    "GetLogEvents": get_log_events,
    "FilterLogEvents": filter_log_events,
    "DeleteLogGroup": delete_log_group,
    "DeleteLogStream": delete_log_stream,
    "PutRetentionPolicy": put_retention_policy,
    "DeleteRetentionPolicy": delete_retention_policy,
}
