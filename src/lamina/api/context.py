"""What a handler receives: the bound parameters and who/where the call is for."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from lamina.api.codelinks import CodeLinks
from lamina.control.aliases import AliasService
from lamina.control.concurrency import ConcurrencyService
from lamina.control.event_config import EventConfigService
from lamina.control.events import EventQueue
from lamina.control.functions import FunctionService
from lamina.control.invoke import InvokeService
from lamina.control.layers import LayerService
from lamina.control.logs import LogService
from lamina.control.provisioned import ProvisionedService
from lamina.control.queues import QueueService
from lamina.ids import FunctionRef, parse_function_ref, with_qualifier


@dataclass(frozen=True, slots=True)
class Services:
    """The control-plane objects the API may call."""

    functions: FunctionService
    invoker: InvokeService
    code_links: CodeLinks
    account_id: str
    events: EventQueue
    event_configs: EventConfigService
    queues: QueueService
    aliases: AliasService
    concurrency: ConcurrencyService
    provisioned: ProvisionedService
    logs: LogService
    layers: LayerService


@dataclass(frozen=True, slots=True)
class Call:
    """One API call after routing, authentication and binding."""

    services: Services
    params: dict[str, Any]
    region: str
    base_url: str  # scheme://host the client used, for links it can follow
    request_id: str  # x-amzn-RequestId; also an invocation's request id, as in AWS

    def function_ref(self, member: str = "FunctionName") -> FunctionRef:
        ref = parse_function_ref(self.params[member], self.region, self.services.account_id)
        return with_qualifier(ref, self.params.get("Qualifier"))


Output = dict[str, Any]
Handler = Callable[[Call], Awaitable[Output]]
