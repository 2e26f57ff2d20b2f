"""What the web process serves, loaded from storage once per published version.

Feeds are rendered at publish time and stored; a web process only loads the stored bytes and
pre-builds their response headers, so a request does a dictionary look-up and a write.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from multidict import CIMultiDict, CIMultiDictProxy

from floorbridge.core.errors import NotFound
from floorbridge.core.ids import MeetingId
from floorbridge.core.meeting import Meeting
from floorbridge.core.ports import AgendaStore, RenderedFeed, VersionSummary
from floorbridge.core.tasks import cancel_and_wait
from floorbridge.core.versions import AgendaVersion

from .conditional import accepts_gzip, http_date, not_modified
from .headers import HSTS, OTHER_HEADERS

log = logging.getLogger("floorbridge.web")

CACHE_CONTROL = "public, max-age=60"


@dataclass(frozen=True)
class Variant:
    """One possible answer to a feed request, prepared once per published version.

    `headers` are for aiohttp; `head` is the same status line and headers already serialised
    for the fast path (adapters/web/fastpath.py), without Date and the closing blank line.
    """

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    head: bytes

    @classmethod
    def of(cls, status: int, headers: dict[str, str], body: bytes, length: int) -> Variant:
        reason = "OK" if status == 200 else "Not Modified"
        lines = [f"HTTP/1.1 {status} {reason}"]
        if status == 200:
            lines.append(f"Content-Length: {length}")
        lines += [f"{k}: {v}" for k, v in headers.items()]
        head = ("\r\n".join(lines) + "\r\n").encode("latin-1")
        return cls(status, CIMultiDictProxy(CIMultiDict(headers)), body, head)


@dataclass(frozen=True)
class ServedFeed:
    feed: RenderedFeed
    gzip_etag: str
    etags: tuple[str, ...]
    plain: Variant
    gzipped: Variant
    not_modified: Variant
    not_modified_gzip: Variant

    @classmethod
    def of(cls, feed: RenderedFeed, *, https: bool = False) -> ServedFeed:
        gzip_etag = feed.etag[:-1] + '-gz"' if feed.etag.endswith('"') else feed.etag + "-gz"
        modified = http_date(feed.last_modified)
        # The fast path answers from these, past the app's response hook: they carry its headers.
        security = {**OTHER_HEADERS, **(HSTS if https else {})}
        common = {
            **security,
            "Content-Type": feed.content_type,
            "Last-Modified": modified,
            "Cache-Control": CACHE_CONTROL,
            "Vary": "Accept-Encoding",
        }
        validators = {**security, "Last-Modified": modified, "Cache-Control": CACHE_CONTROL, "Vary": "Accept-Encoding"}
        plain_len, gz_len = len(feed.body), len(feed.gzipped)
        return cls(
            feed,
            gzip_etag,
            (feed.etag, gzip_etag),
            Variant.of(200, {**common, "ETag": feed.etag}, feed.body, plain_len),
            Variant.of(200, {**common, "ETag": gzip_etag, "Content-Encoding": "gzip"}, feed.gzipped, gz_len),
            # A 304 names the representation the client would have received (RFC 9110 15.4.5).
            Variant.of(304, {**validators, "ETag": feed.etag}, b"", plain_len),
            Variant.of(304, {**validators, "ETag": gzip_etag}, b"", gz_len),
        )

    def answer(self, if_none_match: str | None, if_modified_since: str | None, accept_encoding: str | None) -> Variant:
        """What a GET with these request headers gets: 304 or 200, gzipped or not."""
        gzip = accepts_gzip(accept_encoding)
        if not_modified(if_none_match, if_modified_since, self.etags, self.feed.last_modified):
            return self.not_modified_gzip if gzip else self.not_modified
        return self.gzipped if gzip else self.plain


@dataclass(frozen=True)
class MeetingSnapshot:
    meeting: Meeting
    version: AgendaVersion | None
    versions: tuple[VersionSummary, ...]
    feeds: dict[str, ServedFeed] = field(default_factory=dict)


class Snapshots:
    """The latest published state of every meeting, refreshed by polling storage."""

    def __init__(self, store: AgendaStore, poll_seconds: float, *, https: bool = False) -> None:
        self.store = store
        self.poll_seconds = poll_seconds
        self.https = https  # the site is public over https: feeds carry HSTS too
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
        rendered = await self.store.rendered_feeds(meeting_id)
        feeds = {k: ServedFeed.of(f, https=self.https) for k, f in rendered.items()}
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
        await cancel_and_wait(self._task)
