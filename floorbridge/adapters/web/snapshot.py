"""What the web process serves, loaded from storage once per published version.

Feeds are rendered at publish time and stored; a web process only loads the stored bytes and
pre-builds their response headers, so a request does a dictionary look-up and a write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from multidict import CIMultiDict, CIMultiDictProxy

from floorbridge.core.errors import NotFound
from floorbridge.core.ids import MeetingId
from floorbridge.core.meeting import Meeting
from floorbridge.core.ports import AgendaStore, RenderedFeed, VersionSummary
from floorbridge.core.versions import AgendaVersion

from .conditional import http_date

log = logging.getLogger("floorbridge.web")

CACHE_CONTROL = "public, max-age=60"


@dataclass(frozen=True)
class ServedFeed:
    feed: RenderedFeed
    gzip_etag: str
    etags: tuple[str, ...]
    plain_headers: CIMultiDictProxy[str]
    gzip_headers: CIMultiDictProxy[str]
    not_modified_headers: CIMultiDictProxy[str]
    not_modified_gzip_headers: CIMultiDictProxy[str]

    @classmethod
    def of(cls, feed: RenderedFeed) -> ServedFeed:
        gzip_etag = feed.etag[:-1] + '-gz"' if feed.etag.endswith('"') else feed.etag + "-gz"
        modified = http_date(feed.last_modified)
        common = {
            "Content-Type": feed.content_type,
            "Last-Modified": modified,
            "Cache-Control": CACHE_CONTROL,
            "Vary": "Accept-Encoding",
        }
        plain = CIMultiDict({**common, "ETag": feed.etag})
        gz = CIMultiDict({**common, "ETag": gzip_etag, "Content-Encoding": "gzip"})
        validators = {"Last-Modified": modified, "Cache-Control": CACHE_CONTROL, "Vary": "Accept-Encoding"}
        # A 304 names the representation the client would have received (RFC 9110 15.4.5).
        nm = CIMultiDict({**validators, "ETag": feed.etag})
        nm_gz = CIMultiDict({**validators, "ETag": gzip_etag})
        return cls(
            feed, gzip_etag, (feed.etag, gzip_etag), CIMultiDictProxy(plain), CIMultiDictProxy(gz),
            CIMultiDictProxy(nm), CIMultiDictProxy(nm_gz),
        )


@dataclass(frozen=True)
class MeetingSnapshot:
    meeting: Meeting
    version: AgendaVersion | None
    versions: tuple[VersionSummary, ...]
    feeds: dict[str, ServedFeed] = field(default_factory=dict)


class Snapshots:
    """The latest published state of every meeting, refreshed by polling storage."""

    def __init__(self, store: AgendaStore, poll_seconds: float) -> None:
        self.store = store
        self.poll_seconds = poll_seconds
        self.meetings: dict[MeetingId, MeetingSnapshot] = {}
        self._known: dict[MeetingId, int] = {}
        self._task: asyncio.Task[None] | None = None

    def get(self, meeting_id: str) -> MeetingSnapshot:
        snap = self.meetings.get(MeetingId(meeting_id))
        if snap is None:
            raise NotFound(f"no meeting {meeting_id!r}")
        return snap

    async def refresh(self) -> None:
        """Load every meeting whose latest version number changed (or that is new)."""
        numbers = await self.store.latest_version_numbers()
        meetings = await self.store.list_meetings() if set(numbers) - set(self._known) or not self.meetings else None
        if meetings is not None:
            for m in meetings:
                if m.id not in self.meetings:
                    self.meetings[m.id] = MeetingSnapshot(m, None, ())
        for meeting_id, number in numbers.items():
            if self._known.get(meeting_id) == number:
                continue
            await self._load(meeting_id)
            self._known[meeting_id] = number
            log.info("serving version", extra={"meeting": meeting_id, "version": number})

    async def _load(self, meeting_id: MeetingId) -> None:
        meeting = await self.store.get_meeting(meeting_id)
        version = await self.store.latest_version(meeting_id)
        summaries = tuple(await self.store.list_versions(meeting_id))
        feeds = {k: ServedFeed.of(f) for k, f in (await self.store.rendered_feeds(meeting_id)).items()}
        self.meetings[meeting_id] = MeetingSnapshot(meeting, version, summaries, feeds)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                await self.refresh()
            except Exception:
                # Storage hiccups must not stop serving the last good version.
                log.exception("refresh from storage failed; still serving the last good versions")

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._poll(), name="snapshot-poller")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
