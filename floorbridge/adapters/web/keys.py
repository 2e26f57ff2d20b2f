"""Typed application keys shared by the handlers."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from .snapshot import Snapshots


@dataclass(frozen=True)
class WebOptions:
    public_url: str
    max_body_bytes: int = 1 << 20


SNAPSHOTS = web.AppKey("snapshots", Snapshots)
OPTIONS = web.AppKey("options", WebOptions)
