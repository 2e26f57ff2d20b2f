"""Typed application keys shared by the handlers."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from .snapshot import Snapshots


@dataclass(frozen=True)
class WebOptions:
    public_url: str
    max_body_bytes: int = 1 << 20
    # Per client address: `rate_burst` requests at once, then `rate_per_second` (server.rate_limit).
    rate_limit: bool = True
    rate_per_second: float = 50.0
    rate_burst: int = 1000
    # Addresses or networks of reverse proxies whose X-Forwarded-For names the client.
    trusted_proxies: tuple[str, ...] = ()


SNAPSHOTS = web.AppKey("snapshots", Snapshots)
OPTIONS = web.AppKey("options", WebOptions)
