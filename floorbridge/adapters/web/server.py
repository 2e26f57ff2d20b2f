"""The aiohttp application factory."""

from __future__ import annotations

import itertools
import re
import secrets
from typing import Any

from aiohttp import web

from floorbridge.adapters.mail.intake import MailIntake
from floorbridge.adapters.slot_service import SlotService
from floorbridge.core import log_context
from floorbridge.core.ports import FloorDesk, SpeakerStore

from . import api, feeds, floor, mail, metrics, pages, personal, ratelimit, slot_pages
from . import console as console_pages
from . import slots as slot_api
from .console_auth import CONSOLE, ConsoleAuth
from .errors import Handler, error_middleware
from .headers import HSTS, OTHER_HEADERS, SECURITY_HEADERS
from .keys import OPTIONS, SNAPSHOTS, WebOptions
from .snapshot import Snapshots

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Ids this process gives: unique, not secret (a counter after a random prefix, without a system call each).
_ID_PREFIX = secrets.token_hex(4)
_ids = itertools.count(1)


@web.middleware
async def request_ids(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request's log lines carry its id: the caller's X-Request-Id when it is a plain token
    (a proxy's), else a new one; the answer says it too."""
    given = request.headers.get("X-Request-Id", "")
    rid = given if _REQUEST_ID.match(given) else f"{_ID_PREFIX}{next(_ids):08x}"
    log_context.request_id.set(rid)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers["X-Request-Id"] = rid
        raise
    response.headers["X-Request-Id"] = rid
    return response


def _security_headers(public_url: str) -> Any:
    """Every answer the application gives, from a handler, a middleware or an error: the pages'
    headers (CSP and the rest) on any HTML that lacks them, nosniff on everything, and HSTS when
    the site is public over https. A handler's own (stricter or looser) CSP is kept."""
    # Built once: each answer only picks one of the two and fills in what it lacks.
    hsts = tuple(HSTS.items()) if public_url.startswith("https://") else ()
    html = (*SECURITY_HEADERS.items(), *hsts)
    other = (*OTHER_HEADERS.items(), *hsts)

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        headers = response.headers
        for name, value in html if headers.get("Content-Type", "").startswith("text/html") else other:
            headers.setdefault(name, value)

    return on_prepare


def create_app(
    snapshots: Snapshots,
    options: WebOptions,
    *,
    personal_feeds: personal.PersonalFeeds | None = None,
    floor_desk: FloorDesk | None = None,
    speaker_store: SpeakerStore | None = None,
    console: ConsoleAuth | None = None,
    slots: SlotService | None = None,
    mail_intake: MailIntake | None = None,
    mail_key: bytes | None = None,
    metrics_sources: metrics.MetricsSources | None = None,
) -> web.Application:
    """The app serves what `snapshots` holds; its owner starts and stops the snapshot poller.
    `personal_feeds` (the chat store) enables /ical/personal/{token}.ics."""
    buckets = ratelimit.TokenBuckets(options.rate_per_second, options.rate_burst) if options.rate_limit else None
    middlewares = [request_ids, ratelimit.middleware(buckets, ratelimit.networks(options.trusted_proxies)),
                   error_middleware]
    app = web.Application(middlewares=middlewares, client_max_size=options.max_body_bytes)
    app.on_response_prepare.append(_security_headers(options.public_url))
    app[SNAPSHOTS] = snapshots
    app[OPTIONS] = options
    if floor_desk is not None and speaker_store is not None:
        # First: aiohttp tries the routes under /api/v1/meetings in the order they were added, and a
        # burst of requests for the floor should not try a dozen others before its own.
        floor.add_routes(app, floor_desk, speaker_store)
    metrics.add_routes(app, metrics_sources)
    feeds.add_routes(app)
    api.add_routes(app)
    pages.add_routes(app)
    if personal_feeds is not None:
        personal.add_routes(app, personal_feeds)
    if console is not None:
        app[CONSOLE] = console
    if mail_intake is not None:  # before the console's /console/{meeting}/{session} swallows .../mail
        mail.add_routes(app, mail_intake, mail_key)
    if console is not None:
        console_pages.add_routes(app)
    if slots is not None:
        slot_api.add_routes(app, slots)
        slot_pages.add_routes(app, slots)
    return app
