"""/metrics (Prometheus text format), /healthz and /readyz.

Metrics are read when scraped, from the objects that count them (delivery workers, the feed fast
path, the lists of speakers, the mail intake) and from the database (outbox depth and age); the
process's own memory and CPU come from prometheus_client's process collector.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector

from floorbridge.delivery.engine import DeliveryReport

from .keys import SNAPSHOTS


@dataclass
class MetricsSources:
    """What /metrics reads; each part may be absent (a web-only process has no delivery)."""

    outbox_depth: Callable[[], Awaitable[Mapping[str, tuple[int, float]]]]
    ping: Callable[[], Awaitable[None]]
    # Per enabled platform: whether the platform's bot and delivery run here now (the process holds
    # its lock) and their figures; in `serve --role all`, the chat worker's.
    delivery: Callable[[], Awaitable[DeliveryReport]] = lambda: _no_delivery()
    feeds: Callable[[], tuple[int, int]] = lambda: (0, 0)  # (answered, of which 304)
    floor_actions: Callable[[], Mapping[str, int]] = dict
    mail: Callable[[], Mapping[tuple[str, str], int]] = dict
    role: str = "all"
    _process: ProcessCollector | None = field(default=None, repr=False)


METRICS = web.AppKey("metrics_sources", MetricsSources)


async def _no_delivery() -> DeliveryReport:
    return DeliveryReport()


class _Snapshot(Collector):
    def __init__(self, sources: MetricsSources, depth: Mapping[str, tuple[int, float]],
                 delivery: DeliveryReport) -> None:
        self._s = sources
        self._depth = depth
        self._delivery = delivery

    def collect(self) -> Iterator[Metric]:
        s = self._s
        depth = GaugeMetricFamily("floorbridge_outbox_pending", "Messages waiting in the outbox", labels=["platform"])
        age = GaugeMetricFamily("floorbridge_outbox_oldest_seconds", "Age of the oldest waiting message",
                                labels=["platform"])
        for platform, (count, oldest) in sorted(self._depth.items()):
            depth.add_metric([platform], count)
            age.add_metric([platform], oldest)
        yield depth
        yield age
        running = GaugeMetricFamily("floorbridge_platform_running",
                                    "1 where this process runs the platform's bot and delivery now",
                                    labels=["platform"])
        for platform, here in sorted(self._delivery.running.items()):
            running.add_metric([platform], 1.0 if here else 0.0)
        yield running
        counters = {
            "sent": ("floorbridge_sends", "Messages delivered"),
            "rate_limited": ("floorbridge_http_429", "429 answers honoured"),
            "retried": ("floorbridge_retries", "Temporary failures retried"),
            "failed": ("floorbridge_failures", "Messages given up (the chat is gone or refused it)"),
        }
        for attr, (name, text) in counters.items():
            family = CounterMetricFamily(name, text, labels=["platform"])
            for platform, figures in sorted(self._delivery.workers.items()):
                family.add_metric([platform], getattr(figures, attr))
            yield family
        latency = SummaryMetricFamily("floorbridge_delivery_latency_seconds",
                                      "Enqueue to delivery, over the latest sends", labels=["platform"])
        p50 = GaugeMetricFamily("floorbridge_delivery_latency_p50_seconds", "Median enqueue-to-delivery time",
                                labels=["platform"])
        for platform, figures in sorted(self._delivery.workers.items()):
            latency.add_metric([platform], count_value=figures.latency_count, sum_value=figures.latency_sum)
            p50.add_metric([platform], figures.latency_p50)
        yield latency
        yield p50
        answered, not_modified = s.feeds()
        feeds = CounterMetricFamily("floorbridge_feed_responses", "Feed requests answered", labels=["status"])
        feeds.add_metric(["200"], answered - not_modified)
        feeds.add_metric(["304"], not_modified)
        yield feeds
        ratio = GaugeMetricFamily("floorbridge_feed_not_modified_ratio", "Share of feed answers that were 304")
        ratio.add_metric([], not_modified / answered if answered else 0.0)
        yield ratio
        actions = CounterMetricFamily("floorbridge_queue_actions", "Stored changes of lists of speakers",
                                      labels=["action"])
        for action, n in sorted(s.floor_actions().items()):
            actions.add_metric([action], n)
        yield actions
        mail = CounterMetricFamily("floorbridge_mail_received", "Mail received", labels=["channel", "status"])
        for (channel, status), n in sorted(s.mail().items()):
            mail.add_metric([channel, status], n)
        yield mail


async def metrics(request: web.Request) -> web.Response:
    sources = request.app[METRICS]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(sources, await sources.outbox_depth(), await sources.delivery()))
    ProcessCollector(registry=registry)
    return web.Response(body=generate_latest(registry), headers={"Content-Type": "text/plain; version=0.0.4"})


async def healthz(request: web.Request) -> web.Response:
    """Alive: the process answers (its event loop turns)."""
    return web.json_response({"status": "ok", "meetings": len(request.app[SNAPSHOTS].meetings)})


async def readyz(request: web.Request) -> web.Response:
    """Ready: the database answers and the published meetings are loaded."""
    sources = request.app.get(METRICS)
    problems: list[str] = []
    if sources is not None:
        try:
            await sources.ping()
        except Exception as exc:  # what it is matters less than that it is not ready; the log has the rest
            problems.append(f"the database does not answer ({type(exc).__name__})")
    if not request.app[SNAPSHOTS].meetings:
        problems.append("no published meeting is loaded yet")
    body: dict[str, Any] = {"status": "ready" if not problems else "not ready", "problems": problems}
    if sources is not None:
        body["role"] = sources.role
    return web.json_response(body, status=200 if not problems else 503)


def add_routes(app: web.Application, sources: MetricsSources | None) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if sources is not None:
        app[METRICS] = sources
        app.router.add_get("/metrics", metrics)
