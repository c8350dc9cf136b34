"""Prometheus metrics, served at ``/metrics`` only when ``-proxy-metrics`` or
``-runtime-metrics`` is given, as upstream does.

Proxy metrics are upstream's two counters, ``toxiproxy_proxy_received_bytes_total`` and
``toxiproxy_proxy_sent_bytes_total``, labelled by direction, listener, proxy and
upstream. Runtime metrics describe this Python process instead of a Go runtime.
"""
from __future__ import annotations

import gc
import os
import resource
import sys
import threading
from collections import defaultdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chaos.proxy.link import Link
    from chaos.proxy.proxy import Proxy

Labels = tuple[str, str, str, str]


class Metrics:
    """Byte counters per link, kept after the link closes."""

    def __init__(self, *, proxy_metrics: bool = False, runtime_metrics: bool = False) -> None:
        self.proxy_metrics = proxy_metrics
        self.runtime_metrics = runtime_metrics
        self._live: dict["Link", Labels] = {}
        self._closed: dict[Labels, list[int]] = defaultdict(lambda: [0, 0])

    @property
    def enabled(self) -> bool:
        return self.proxy_metrics or self.runtime_metrics

    def track(self, proxy: "Proxy", link: "Link") -> None:
        if self.proxy_metrics:
            self._live[link] = (link.direction, proxy.listen, proxy.name, proxy.upstream)

    def untrack(self, proxy: "Proxy", link: "Link") -> None:
        labels = self._live.pop(link, None)
        if labels is not None:
            totals = self._closed[labels]
            totals[0] += link.received
            totals[1] += link.sent

    def _totals(self) -> dict[Labels, list[int]]:
        totals: dict[Labels, list[int]] = defaultdict(lambda: [0, 0])
        for labels, (received, sent) in self._closed.items():
            totals[labels][0] += received
            totals[labels][1] += sent
        for link, labels in self._live.items():
            totals[labels][0] += link.received
            totals[labels][1] += link.sent
        return totals

    def render(self) -> str:
        lines: list[str] = []
        if self.proxy_metrics:
            totals = sorted(self._totals().items())
            for index, (metric, help_text) in enumerate((
                    ("toxiproxy_proxy_received_bytes_total", "The total bytes received on a given proxy link"),
                    ("toxiproxy_proxy_sent_bytes_total", "The total bytes sent on a given proxy link"))):
                lines.append(f"# HELP {metric} {help_text}")
                lines.append(f"# TYPE {metric} counter")
                for (direction, listener, proxy, upstream), counts in totals:
                    lines.append(f'{metric}{{direction="{direction}",listener="{listener}",'
                                 f'proxy="{proxy}",upstream="{upstream}"}} {counts[index]}')
        if self.runtime_metrics:
            usage = resource.getrusage(resource.RUSAGE_SELF)
            runtime = {
                "process_cpu_seconds_total": ("counter", "Total user and system CPU time spent in seconds.",
                                              usage.ru_utime + usage.ru_stime),
                "process_max_resident_memory_bytes": ("gauge", "Maximum resident set size in bytes.",
                                                      usage.ru_maxrss * 1024),
                "process_open_fds": ("gauge", "Number of open file descriptors.",
                                     len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0),
                "python_threads": ("gauge", "Number of threads that currently exist.", threading.active_count()),
                "python_gc_objects_tracked": ("gauge", "Objects tracked by the garbage collector.",
                                              len(gc.get_objects())),
            }
            for metric, (kind, help_text, value) in runtime.items():
                lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} {kind}", f"{metric} {value}"]
            version = ".".join(map(str, sys.version_info[:3]))
            lines += ["# HELP python_info Python platform information", "# TYPE python_info gauge",
                      f'python_info{{implementation="{sys.implementation.name}",version="{version}"}} 1']
        return "\n".join(lines) + "\n"
