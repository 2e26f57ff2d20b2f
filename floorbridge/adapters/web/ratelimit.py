"""Requests per client address: a token bucket each, and who the client is behind a proxy.

Every address may make `burst` requests at once, then `rate` a second (the bucket refills
continuously). The defaults are generous because a whole venue's delegates may reach the server
from one NAT address; what they stop is one client hammering the server. An IPv6 client counts
by its /64 (one machine may hold the whole network). Kept in the process's memory: each web
process counts its own.

X-Forwarded-For is believed only from configured proxies (server.trusted_proxies): walking the
header from the right, the first address that is not one of them is the client. A client's own
X-Forwarded-For therefore changes nothing: it is left of what the proxy appended.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any

from aiohttp import web

from .errors import Handler, error_response

# Answered without counting: probes, metrics scrapes, the console's versioned static files, and
# Telegram's webhook (chat_runtime.TELEGRAM_WEBHOOK), which carries every chat's updates from a few
# Telegram addresses and is authenticated by its secret header.
EXEMPT_PREFIXES = ("/healthz", "/readyz", "/metrics", "/static/", "/telegram/webhook")
CLIENT = web.RequestKey("client", str)  # the client's address, after the trusted proxies


class TokenBuckets:
    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 200_000) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when counted)

    def take(self, key: str) -> float:
        """Take one token for `key`: 0.0 when there was one, else the seconds until there is."""
        now = self._clock()
        tokens, then = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        if tokens >= 1.0:
            if key not in self._buckets and len(self._buckets) >= self._max_keys:
                self._forget(now)
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def _forget(self, now: float) -> None:
        """Make room for a tenth more: drop the buckets that have refilled (forgetting them changes
        nothing), and the oldest others if those are not enough."""
        full = self.burst / self.rate
        room = max(1, self._max_keys // 10)
        idle = [k for k, (_, then) in self._buckets.items() if now - then >= full]
        if len(idle) < room:
            chosen = set(idle)
            idle += [k for k in list(self._buckets)[: 2 * room] if k not in chosen][: room - len(idle)]
        for key in idle:
            self._buckets.pop(key, None)

    def __len__(self) -> int:
        return len(self._buckets)


Network = IPv4Network | IPv6Network


def networks(texts: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ip_network(t, strict=False) for t in texts)


def client_address(request: web.Request, proxies: tuple[Network, ...]) -> str:
    """The client's address: the peer's, or, when the peer is a trusted proxy, the rightmost
    address in X-Forwarded-For that is not a trusted proxy."""
    peer = request.remote or ""
    if not proxies or not _trusted(peer, proxies):
        return peer
    hops = [hop.strip() for value in request.headers.getall("X-Forwarded-For", ()) for hop in value.split(",")]
    for hop in reversed(hops):
        try:
            address = ip_address(hop)
        except ValueError:
            return peer  # not an address: the header is garbled past this point
        if not any(address in net for net in proxies):
            return str(address)
    return peer


def _trusted(text: str, proxies: tuple[Network, ...]) -> bool:
    try:
        address = ip_address(text)
    except ValueError:
        return False
    return any(address in net for net in proxies)


@lru_cache(maxsize=4096)  # on every counted request; a client comes back with the same address
def bucket_key(address: str) -> str:
    try:
        parsed = ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(IPv6Network((int(parsed) >> 64 << 64, 64)))
    return str(parsed)


def client_of(request: web.Request) -> str:
    """The address a request counts against (set by the middleware; the peer's without it)."""
    return request.get(CLIENT) or request.remote or ""


def middleware(buckets: TokenBuckets | None, proxies: tuple[Network, ...]) -> Any:
    """Sets request[CLIENT] and, when `buckets` is given, answers 429 with Retry-After to an
    address over its limit (JSON under /api, text elsewhere)."""

    @web.middleware
    async def limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        client = client_address(request, proxies)
        request[CLIENT] = client
        if buckets is None or request.path.startswith(EXEMPT_PREFIXES):
            return await handler(request)
        wait = buckets.take(bucket_key(client))
        if wait <= 0:
            return await handler(request)
        seconds = max(1, math.ceil(wait))
        response = error_response(
            request, 429, "too_many_requests",
            f"too many requests from your address: the limit is {buckets.burst} at once, then "
            f"{buckets.rate:g} a second (server.rate_limit); try again in {seconds} s")
        response.headers["Retry-After"] = str(seconds)
        return response

    return limit
