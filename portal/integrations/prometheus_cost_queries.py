"""The PromQL of the Prometheus cost source: its nine daily queries and the SLO expressions.

The expressions it accepts to ask an increase of are checked here too; how the figures are
read is in :mod:`portal.integrations.prometheus_cost`. Text in, text out: nothing here talks
to Prometheus.
"""

from __future__ import annotations

import re

APP_LABEL = "label_app_kubernetes_io_name"
MAX_EXPRESSION_BYTES = 4096
CONTAINERS = '{container!="",container!="POD"}'  # not the pod cgroup nor the pause container
# A plain vector selector (name, matchers or both): increase() reads it at full resolution.
PLAIN_SELECTOR = re.compile(
    r"""\s*(?=[a-zA-Z_:{])(?:[a-zA-Z_:][a-zA-Z0-9_:]*)?\s*"""
    r"""(?:\{(?:[^{}()\[\]"'`]|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)*\})?\s*"""
)


def daily_queries(cluster: str) -> dict[str, str]:
    """Return the nine PromQL expressions of ``resource_days``, by name (see the module)."""
    pod = f"{cluster}, namespace, pod"
    container = f"{pod}, container"
    mid = " offset 30m"  # the hour's midpoint: the subquery's points are the hours' ends

    def requests(resource: str) -> str:
        selector = f'kube_pod_container_resource_requests{{resource="{resource}"}}{mid}'
        return f"max by ({container}) ({selector})"

    def held(request: str, usage: str) -> str:
        # Keep both sides apart in the union (a label each), then take the larger.
        return (
            f'max by ({container}) (label_replace({request}, "portal_part", "request", "", "")'
            f' or label_replace({usage}, "portal_part", "usage", "", ""))'
        )

    cpu_usage = f"sum by ({container}) (rate(container_cpu_usage_seconds_total{CONTAINERS}[1h]))"
    memory_usage = f"max by ({container}) (container_memory_working_set_bytes{CONTAINERS}{mid})"
    running = (
        f"max by ({pod}) (kube_pod_container_resource_requests{mid})"
        f" or max by ({pod}) (container_memory_working_set_bytes{CONTAINERS}{mid})"
    )
    claims = (
        f"max by ({pod}, persistentvolumeclaim)"
        f" (kube_pod_spec_volumes_persistentvolumeclaims_info{mid})"
        f" * on ({cluster}, namespace, persistentvolumeclaim) group_left ()"
        f" max by ({cluster}, namespace, persistentvolumeclaim)"
        f" (kube_persistentvolumeclaim_resource_requests_storage_bytes{mid})"
    )
    # One series per pod (topk: a label changed within the hour must not break the join).
    # Only pods with the label: one without it falls to service "" below all the same, and
    # a cluster's many system pods are not read.
    labels = (
        f"topk by ({pod}) (1, max by ({pod}, {APP_LABEL})"
        f' (max_over_time(kube_pod_labels{{{APP_LABEL}!=""}}[1h])))'
    )

    def per_day(per_pod: str, aggregation: str = "sum") -> str:
        attributed = (
            f"(({per_pod}) * on ({pod}) group_left ({APP_LABEL}) {labels})"
            f" or on ({pod}) ({per_pod})"  # pods without the label keep service ""
        )
        hourly = f"{aggregation} by ({cluster}, namespace, {APP_LABEL}) ({attributed})"
        return f"sum_over_time(({hourly})[23h30m:1h])"

    cpu_request, memory_request = requests("cpu"), requests("memory")
    return {
        "pod_hours": per_day(running, "count"),
        "cpu_request": per_day(cpu_request),
        "cpu_usage": per_day(cpu_usage),
        "cpu_held": per_day(held(cpu_request, cpu_usage)),
        "memory_request": per_day(memory_request),
        "memory_usage": per_day(memory_usage),
        "memory_held": per_day(held(memory_request, memory_usage)),
        "gpu": per_day(requests("nvidia_com_gpu")),
        "pv": per_day(claims),
    }


def check_expression(expression: str) -> str:
    """Return ``expression`` if it is one closed PromQL term; raise ``ValueError`` if not.

    It is wrapped as ``(expression)[range:step]``: brackets must pair up and strings
    close, so it cannot end the wrapper early, and a ``#`` comment or a control character
    could hide what follows; over ``MAX_EXPRESSION_BYTES`` is refused outright.
    """
    if len(expression.encode()) > MAX_EXPRESSION_BYTES:
        raise ValueError(f"longer than {MAX_EXPRESSION_BYTES} bytes")
    if not expression.strip():
        raise ValueError("empty")
    closing = {"(": ")", "[": "]", "{": "}"}
    stack: list[str] = []
    quote = ""
    escaped = False
    for position, char in enumerate(expression, 1):
        if ord(char) < 32 or ord(char) == 127:
            raise ValueError(f"control character at {position}")
        if quote:
            if escaped:
                escaped = False
            elif char == "\\" and quote != "`":
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "\"'`":
            quote = char
        elif char == "#":
            raise ValueError(f"comment at {position}")
        elif char in closing:
            stack.append(closing[char])
        elif char in ")]}" and (not stack or stack.pop() != char):
            raise ValueError(f"unmatched {char!r} at {position}")
    if quote:
        raise ValueError("unterminated string")
    if stack:
        raise ValueError(f"missing {stack[-1]!r} at the end")
    return expression
