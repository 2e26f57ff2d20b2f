"""The platform-neutral conversation: every command a delegate or moderator can send, answered in
their language, with times in the meeting's zone and theirs.

Adapters turn platform payloads into `Incoming` and render the `Reply`s; nothing here knows
which platform a message came from beyond the ids in it.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from floorbridge.core.chats import ALL_NOTICES, ChatProfile, ChatRef, NoticeKind, Role, Staff, Subscription, UserRef
from floorbridge.core.errors import NotFound
from floorbridge.core.ids import MeetingId, slugify
from floorbridge.core.meeting import Meeting, is_known_timezone
from floorbridge.core.ports import AgendaStore, ChatStore, FloorDesk, SlotDesk
from floorbridge.core.richtext import Block, Button, Part, b, code, i, link, message, p, ul
from floorbridge.core.versions import AgendaVersion

from .events import MAX_INPUT, Incoming, Reply, split_command
from .floor import FloorCommands
from .i18n import LANGUAGE_NAMES, LANGUAGES, Translator, supported_language, translator
from .mail_review import MailReview
from .notices import deadline_end
from .present import Viewer
from .slot_dialogue import SlotDialogue
from .slot_review import SlotReview
from .timezones import find_timezone

log = logging.getLogger("floorbridge.bots")



def N_(text: str) -> str:
    """Marks a text for the catalogs where it is defined; it is translated where it is shown."""
    return text


# (command, usage, what it does): the `help` reply and the platforms' command menus.
HELP = (
    ("start", "start", N_("choose your language and timezone")),
    ("help", "help", N_("this list")),
    ("today", "today", N_("today's sessions")),
    ("now", "now", N_("what is on now and next")),
    ("next", "next", N_("what is on now and next")),
    ("agenda", "agenda [date|track]", N_("the agenda of a day or a track")),
    ("session", "session ID", N_("one session in full")),
    ("deadlines", "deadlines", N_("registration, contributions, visa and speaking-slot deadlines")),
    ("subscribe", "subscribe [track|agenda|deadlines|announcements]", N_("get changes and reminders here")),
    ("unsubscribe", "unsubscribe [track|kind]", N_("stop them")),
    ("tz", "tz PLACE", N_("your timezone: a city, a country code or a zone name")),
    ("lang", "lang CODE", N_("language: en, fr, es, ru, ar, zh")),
    ("ical", "ical [reset]", N_("your personal calendar link; reset revokes the old one")),
    ("info", "info", N_("venue, registration desk, Wi-Fi, remote participation, contacts")),
    ("meeting", "meeting [ID]", N_("which meeting this chat follows")),
    ("whoami", "whoami", N_("what I know about you and this chat")),
    ("pin", "pin", N_("pin today's schedule in this channel (moderators)")),
    ("floor", "floor [order|reply|question|answer] [SESSION] [DELEGATION]",
     N_("ask for the floor in the session running now")),
    ("withdraw", "withdraw [SESSION]", N_("withdraw your request to speak")),
    ("speakers", "speakers [SESSION]", N_("the list of speakers and your place in it")),
    ("console", "console", N_("a one-time link to the moderator console (moderators, in a private chat)")),
    ("chair", "chair next|end|pause|resume|move|remove|close|reopen|readd|time|budget|add",
     N_("run the list of speakers (moderators)")),
    ("slot", "slot [CALL|mine|list|withdraw REF]", N_("request a speaking slot before the deadline")),
    ("review", "review [CALL|REF approve|waitlist|reject]", N_("review speaking-slot requests (secretariat)")),
    ("mail", "mail [N release|relay|decline|accept K|reject K]",
     N_("review received mail: quarantine, relays, deadlines (moderators)")),
)
COMMANDS = tuple(name for name, _, _ in HELP)
# Most list replies stop here and say how many more there are: a chat is not a printout.
MAX_LINES = 40


def personal_feed_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/ical/personal/{token}.ics"


def new_feed_token() -> str:
    """256 bits from the OS: unguessable, and URL-safe for the feed path."""
    return secrets.token_urlsafe(32)


@dataclass
class Context:
    incoming: Incoming
    profile: ChatProfile
    t: Translator
    args: list[str]


class Conversation:
    def __init__(
        self,
        agenda: AgendaStore,
        chats: ChatStore,
        staff: Staff,
        *,
        public_url: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_pin_request: Callable[[ChatProfile, MeetingId], Awaitable[None]] | None = None,
        floor: FloorDesk | None = None,
        login_link: Callable[[UserRef], Awaitable[str | None]] | None = None,
        slots: SlotDesk | None = None,
        staff_chats: Mapping[MeetingId, Sequence[ChatRef]] | None = None,
    ) -> None:
        self.agenda = agenda
        self.chats = chats
        self.staff = staff
        self.public_url = public_url
        self.clock = clock
        self._on_pin_request = on_pin_request
        self._floor = FloorCommands(floor) if floor is not None else None
        self._login_link = login_link
        self._slots = SlotDialogue(slots, agenda, public_url=public_url, clock=clock, meeting_of=self._meeting_of)
        self._review = SlotReview(slots, staff, staff_chats or {}, meeting_of=self._meeting_of)
        self.mail_review = MailReview(staff, staff_chats or {}, meeting_of=self._meeting_of)
        self._handlers: dict[str, Callable[[Context], Awaitable[list[Reply]]]] = {
            "start": self._start,
            "help": self._help,
            "today": self._today,
            "now": self._now,
            "next": self._now,
            "agenda": self._agenda,
            "session": self._session,
            "deadlines": self._deadlines,
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
            "tz": self._tz,
            "lang": self._lang,
            "ical": self._ical,
            "info": self._info,
            "meeting": self._meeting,
            "whoami": self._whoami,
            "pin": self._pin,
            "floor": self._queue_command,
            "withdraw": self._queue_command,
            "speakers": self._queue_command,
            "chair": self._queue_command,
            "console": self._console,
            "slot": self._slots.handle,
            "review": self._review.handle,
            "mail": self.mail_review.handle,
        }

    # ---------------------------------------------------------------- entry point

    async def handle(self, incoming: Incoming) -> list[Reply]:
        profile = await self.chats.get_profile(incoming.chat)
        if profile is None:
            lang = supported_language(incoming.language_hint) or "en"
            profile = ChatProfile(incoming.chat, is_group=incoming.is_group, language=lang)
        t = translator(profile.language)
        if len(incoming.text) > MAX_INPUT:
            return [self._say(t._("That message is too long ({n} characters). Commands are short: "
                                  "try {help}.").format(n=len(incoming.text), help="help"))]
        name, args = split_command(incoming.text)
        handler = self._handlers.get(name)
        if handler is None:
            return [self._unknown(t, name)]
        try:
            return await handler(Context(incoming, profile, t, args))
        except Exception:
            log.exception("command failed", extra={"command": name, "chat": str(incoming.chat)})
            return [self._say(t._("Something went wrong on our side; the secretariat has been told. "
                                  "Please try again in a minute."))]

    # ---------------------------------------------------------------- helpers

    @staticmethod
    def _say(*parts: Part, buttons: Sequence[Sequence[Button]] = ()) -> Reply:
        return Reply(message(p(*parts), buttons=buttons))

    def _unknown(self, t: Translator, name: str) -> Reply:
        shown = name[:40] or "?"
        return Reply(message(
            p(t._("I don't know the command {command}.").format(command=shown)),
            p(t._("Send {help} for the list of commands.").format(help="help")),
            buttons=[[Button(t._("Help"), "help")]],
        ))

    async def _meeting_of(self, ctx: Context) -> tuple[Meeting, AgendaVersion] | Reply:
        """The chat's meeting and its latest version, or the reply that explains what is missing."""
        t = ctx.t
        meeting_id = ctx.profile.meeting_id
        if meeting_id is None:
            meetings = await self.agenda.list_meetings()
            if len(meetings) == 1:
                meeting_id = meetings[0].id
            else:
                return await self._choose_meeting(ctx, t._("Which meeting should this chat follow?"))
        try:
            meeting = await self.agenda.get_meeting(meeting_id)
        except NotFound:
            return self._say(t._("The meeting {meeting} no longer exists. Choose another one with {command}.")
                             .format(meeting=meeting_id, command="meeting"))
        version = await self.agenda.latest_version(meeting_id)
        if version is None:
            return self._say(t._("The agenda of {meeting} has not been published yet.").format(meeting=meeting.title))
        return meeting, version

    async def _choose_meeting(self, ctx: Context, question: str) -> Reply:
        meetings = await self.agenda.list_meetings()
        if not meetings:
            return self._say(ctx.t._("No meeting is published yet."))
        rows = [[Button(m.title[:60], f"meeting {m.id}")] for m in meetings[:10]]
        return Reply(message(
            p(question),
            ul([[b(m.title), " · ", code(m.id), " · ", f"{m.start_date}–{m.end_date}"] for m in meetings]),
            buttons=rows,
        ))

    def _viewer(self, ctx: Context, meeting: Meeting) -> Viewer:
        return Viewer(ctx.t, meeting, ctx.profile.timezone)

    def _local_today(self, viewer: Viewer) -> date:
        return viewer.local_day(self.clock())

    def _role(self, ctx: Context, meeting_id: MeetingId) -> Role | None:
        return self.staff.role(meeting_id, ctx.incoming.user)

    def _refuse_non_staff(self, ctx: Context, meeting_id: MeetingId) -> Reply | None:
        if self._role(ctx, meeting_id) is None:
            return self._say(ctx.t._("Only the moderators of {meeting} can do that.").format(meeting=meeting_id))
        return None

    # ---------------------------------------------------------------- commands

    async def _start(self, ctx: Context) -> list[Reply]:
        t, profile = ctx.t, ctx.profile
        profile = replace(profile, started=True)
        await self.chats.save_profile(profile)
        language_buttons = [Button(LANGUAGE_NAMES[code_], f"lang {code_}") for code_ in LANGUAGES]
        replies = [Reply(message(
            p(b(t._("Welcome to floorbridge.")), " ",
              t._("I bring the meeting's agenda, its changes and its deadlines to this chat.")),
            p(t._("Choose your language:")),
            buttons=[language_buttons[:3], language_buttons[3:]],
        ))]
        found = await self._meeting_of(ctx)
        if isinstance(found, Reply):
            replies.append(found)
            return replies
        meeting, _ = found
        replies.append(Reply(message(
            p(t._("Times are shown in the meeting's time ({zone}). To see them in your own time as well, send "
                  "{command} followed by a city, a country code or a zone name, e.g. {example}.")
              .format(zone=meeting.timezone, command="tz", example="tz Nairobi")),
            p(t._("Then try {today}, {agenda} or {deadlines}; {subscribe} sends you every change.")
              .format(today="today", agenda="agenda", deadlines="deadlines", subscribe="subscribe")),
            buttons=[[Button(t._("Today"), "today"), Button(t._("Deadlines"), "deadlines"),
                      Button(t._("Subscribe"), "subscribe")]],
        )))
        return replies

    async def _help(self, ctx: Context) -> list[Reply]:
        t = ctx.t
        lines = [(usage, t._(what)) for _, usage, what in HELP]
        return [Reply(message(p(b(t._("Commands"))), ul([[code(c), " — ", what] for c, what in lines])))]

    async def _agenda_lines(self, viewer: Viewer, version: AgendaVersion, day: date | None,
                            track: str | None) -> list[list[Part]]:
        out = []
        for ps in sorted(version.sessions, key=lambda x: (x.session.start, x.session.id)):
            s = ps.session
            if day is not None and viewer.local_day(s.start) != day:
                continue
            if track is not None and slugify(s.track) != track:
                continue
            out.append(viewer.session_line(s, with_day=day is None))
        return out

    def _limited(self, t: Translator, lines: list[list[Part]]) -> list[list[Part]]:
        if len(lines) <= MAX_LINES:
            return lines
        more = len(lines) - MAX_LINES
        return [*lines[:MAX_LINES], [i(t.n_("… and {n} more", "… and {n} more", more).format(n=more))]]

    async def _today(self, ctx: Context) -> list[Reply]:
        found = await self._meeting_of(ctx)
        if isinstance(found, Reply):
            return [found]
        meeting, version = found
        viewer, t = self._viewer(ctx, meeting), ctx.t
        today = viewer.local_day(self.clock())
        lines = await self._agenda_lines(viewer, version, today, None)
        if not lines:
            first = max(meeting.start_date, today) if today <= meeting.end_date else meeting.start_date
            return [self._say(
                t._("No sessions today. {meeting} runs from {start} to {end}.").format(
                    meeting=meeting.title, start=t.date(meeting.start_date), end=t.date(meeting.end_date)),
                buttons=[[Button(t.short_date(first), f"agenda {first.isoformat()}")]],
            )]
        return [Reply(message(p(b(meeting.title), " — ", t.date(today)), ul(self._limited(t, lines))))]

    async def _now(self, ctx: Context) -> list[Reply]:
        found = await self._meeting_of(ctx)
        if isinstance(found, Reply):
            return [found]
        meeting, version = found
        viewer, t, now = self._viewer(ctx, meeting), ctx.t, self.clock()
        live = [ps.session for ps in version.sessions if not ps.session.cancelled]
        current = sorted((s for s in live if s.start <= now < s.end), key=lambda s: s.start)
        upcoming = sorted((s for s in live if s.start > now), key=lambda s: s.start)
        blocks: list[Block] = []
        if current:
            blocks += [p(b(t._("Now"))), ul([viewer.session_line(s) for s in current])]
        else:
            blocks.append(p(t._("Nothing is in session right now.")))
        if upcoming:
            first = upcoming[0].start
            following = [s for s in upcoming if s.start == first]
            blocks += [p(b(t._("Next"))), ul([viewer.session_line(s, with_day=True) for s in following])]
        else:
            blocks.append(p(t._("There are no more sessions in this meeting.")))
        return [Reply(message(*blocks))]

    async def _agenda(self, ctx: Context) -> list[Reply]:
        found = await self._meeting_of(ctx)
        if isinstance(found, Reply):
            return [found]
        meeting, version = found
        viewer, t = self._viewer(ctx, meeting), ctx.t
        days = sorted({viewer.local_day(ps.session.start) for ps in version.sessions})
        tracks = version.tracks()
        if not ctx.args:
            buttons = [[Button(t.short_date(d), f"agenda {d.isoformat()}") for d in days[i_:i_ + 3]]
                       for i_ in range(0, min(len(days), 9), 3)]
            blocks: list[Block] = [p(b(meeting.title), " — ", t._("choose a day or a track:"))]
            if tracks:
                blocks.append(ul([[code(slug), " — ", name] for slug, name in tracks.items()]))
            return [Reply(message(*blocks, buttons=buttons))]
        arg = " ".join(ctx.args)
        day = _parse_day(arg, days)
        if day is not None:
            lines = await self._agenda_lines(viewer, version, day, None)
            if not lines:
                return [self._say(t._("There are no sessions on {date}.").format(date=t.date(day)))]
            return [Reply(message(p(b(meeting.title), " — ", t.date(day)), ul(self._limited(t, lines))))]
        slug = slugify(arg)
        if slug in tracks:
            lines = await self._agenda_lines(viewer, version, None, slug)
            return [Reply(message(p(b(meeting.title), " — ", tracks[slug]), ul(self._limited(t, lines))))]
        return [self._say(
            t._("{value} is neither a day of the meeting (e.g. {example}) nor one of its tracks.").format(
                value=arg[:60], example=days[0].isoformat() if days else "2025-07-09"),
            buttons=[[Button(t._("Agenda"), "agenda")]],
        )]

    async def _session(self, ctx: Context) -> list[Reply]:
        t = ctx.t
        if len(ctx.args) != 1:
            return [self._say(t._("Send {usage}, with the id shown in the agenda.").format(usage="session ID"))]
        found = await self._meeting_of(ctx)
        if isinstance(found, Reply):
            return [found]
        meeting, version = found
        published = version.session(ctx.args[0])
        if published is None:
            return [self._say(t._("There is no session {id} in {meeting}.").format(
                id=ctx.args[0][:60], meeting=meeting.title))]
        s = published.session
        viewer = self._viewer(ctx, meeting)
        facts: list[list[Part]] = [[t._("When:"), " ", viewer.span(s.start, s.end, with_day=True)]]
        if s.room:
            facts.append([t._("Room:"), " ", s.room])
        if s.track:
            facts.append([t._("Track:"), " ", s.track])
        if s.chairs:
            facts.append([t._("Chairs:"), " ", ", ".join(s.chairs)])
        remote = s.remote_url or meeting.remote.url
        if remote:
            facts.append([t._("Join remotely:"), " ", link(remote)])
        if s.cancelled:
            facts.append([i(t._("This session is cancelled."))])
        blocks: list[Block] = [p(b(s.title)), ul(facts)]
        if s.description:
            blocks.append(p(s.description[:1500]))
        if s.documents:
            blocks += [p(b(t._("Documents"))), ul([[link(d.url, d.title)] for d in s.documents])]
        return [Reply(message(*blocks))]

    async def _deadlines(self, ctx: Context) -> list[Reply]:
        found = await self._meeting_of(ctx)
        if isinstance(found, Reply):
            return [found]
        meeting, version = found
        t, viewer = ctx.t, self._viewer(ctx, meeting)
        if not version.deadlines:
            return [self._say(t._("{meeting} has no deadlines.").format(meeting=meeting.title))]
        today = self._local_today(viewer)
        ordered = sorted(version.deadlines, key=lambda d: deadline_end(meeting, d))
        return [Reply(message(
            p(b(t._("Deadlines")), " — ", meeting.title),
            ul([viewer.deadline_line(d, today) for d in ordered]),
        ))]

    async def _subscription_of(self, ctx: Context) -> tuple[Meeting, AgendaVersion, Subscription | None] | Reply:
        """The chat's meeting, its latest version and the chat's subscription to it; a group's
        subscription belongs to the meeting's moderators, so anyone else gets the refusal."""
        found = await self._meeting_of(ctx)
        if isinstance(found, Reply):
            return found
        meeting, version = found
        if ctx.incoming.is_group and (refused := self._refuse_non_staff(ctx, meeting.id)):
            return refused
        subs = {s.meeting_id: s for s in await self.chats.subscriptions_of(ctx.incoming.chat)}
        return meeting, version, subs.get(meeting.id)

    async def _subscribe(self, ctx: Context) -> list[Reply]:
        found = await self._subscription_of(ctx)
        if isinstance(found, Reply):
            return [found]
        meeting, version, current = found
        t = ctx.t
        tracks, kinds, bad = _parse_targets(ctx.args, version)
        if bad:
            return [self._bad_targets(t, bad, version)]
        if current is None or not current.active:
            sub = Subscription(ctx.incoming.chat, meeting.id, frozenset(tracks), frozenset(kinds) or ALL_NOTICES)
        else:
            everything = not tracks and not kinds
            # An empty track set means every track: naming a track then adds nothing.
            merged = frozenset() if everything or not current.tracks else current.tracks | tracks
            sub = replace(current, tracks=merged, kinds=ALL_NOTICES if everything else current.kinds | kinds)
        await self.chats.save_profile(replace(ctx.profile, meeting_id=ctx.profile.meeting_id or meeting.id))
        await self.chats.save_subscription(sub)
        return [self._describe_subscription(t, meeting, sub, version)]

    def _describe_subscription(self, t: Translator, meeting: Meeting, sub: Subscription,
                               version: AgendaVersion) -> Reply:
        names = version.tracks()
        tracks = ", ".join(names.get(x, x) for x in sorted(sub.tracks)) if sub.tracks else t._("all tracks")
        kinds = ", ".join(_kind_name(t, k) for k in sorted(sub.kinds))
        return self._say(t._("This chat is subscribed to {meeting}: {kinds}; {tracks}.").format(
            meeting=meeting.title, kinds=kinds, tracks=tracks))

    def _bad_targets(self, t: Translator, bad: list[str], version: AgendaVersion) -> Reply:
        known = ", ".join([*(k.value for k in NoticeKind), *version.tracks()])
        return self._say(t._("I don't know {what}. You can name: {known}.").format(
            what=", ".join(x[:40] for x in bad), known=known))

    async def _unsubscribe(self, ctx: Context) -> list[Reply]:
        found = await self._subscription_of(ctx)
        if isinstance(found, Reply):
            return [found]
        meeting, version, current = found
        t = ctx.t
        if current is None:
            return [self._say(t._("This chat is not subscribed to {meeting}.").format(meeting=meeting.title))]
        if not ctx.args:
            await self.chats.delete_subscription(ctx.incoming.chat, meeting.id)
            return [self._say(t._("Unsubscribed: this chat gets no more notices from {meeting}.")
                              .format(meeting=meeting.title))]
        tracks, kinds, bad = _parse_targets(ctx.args, version)
        if bad:
            return [self._bad_targets(t, bad, version)]
        remaining_tracks = current.tracks - tracks if current.tracks else frozenset(set(version.tracks()) - tracks)
        sub = replace(current, tracks=remaining_tracks if tracks else current.tracks, kinds=current.kinds - kinds)
        if not sub.kinds or (tracks and not sub.tracks):
            await self.chats.delete_subscription(ctx.incoming.chat, meeting.id)
            return [self._say(t._("Unsubscribed: this chat gets no more notices from {meeting}.")
                              .format(meeting=meeting.title))]
        await self.chats.save_subscription(sub)
        return [self._describe_subscription(t, meeting, sub, version)]

    async def _tz(self, ctx: Context) -> list[Reply]:
        t = ctx.t
        if not ctx.args:
            current = ctx.profile.timezone or t._("the meeting's time")
            return [self._say(t._("Your timezone: {zone}. Send {usage} to change it, e.g. {example}.").format(
                zone=current, usage="tz PLACE", example="tz Asia/Tokyo"))]
        query = " ".join(ctx.args)
        found = find_timezone(query)
        if found.zone is None:
            if found.choices:
                rows = [[Button(z, f"tz {z}")] for z in found.choices[:8]]
                return [Reply(message(p(t._("{query} matches several timezones; which one?").format(query=query[:60])),
                                      buttons=rows))]
            return [self._say(t._("I don't know the timezone {query}. Try a city (Nairobi), a country code (KE) "
                                  "or a zone name (Africa/Nairobi).").format(query=query[:60]))]
        assert is_known_timezone(found.zone)
        await self.chats.save_profile(replace(ctx.profile, timezone=found.zone))
        return [self._say(t._("Your timezone is now {zone}.").format(zone=found.zone))]

    async def _lang(self, ctx: Context) -> list[Reply]:
        t = ctx.t
        wanted = ctx.args[0].lower() if len(ctx.args) == 1 else ""
        if wanted not in LANGUAGES:
            rows = [[Button(LANGUAGE_NAMES[c], f"lang {c}") for c in LANGUAGES[:3]],
                    [Button(LANGUAGE_NAMES[c], f"lang {c}") for c in LANGUAGES[3:]]]
            return [Reply(message(p(t._("Choose a language: {codes}.").format(codes=", ".join(LANGUAGES))),
                                  buttons=rows))]
        await self.chats.save_profile(replace(ctx.profile, language=wanted))
        t = translator(wanted)
        return [self._say(t._("I will write to you in English from now on."))]

    async def _ical(self, ctx: Context) -> list[Reply]:
        t, profile = ctx.t, ctx.profile
        reset = ctx.args[:1] == ["reset"]
        if ctx.args and not reset:
            return [self._say(t._("Send {ical} for your link, or {reset} to revoke it and get a new one.")
                              .format(ical="ical", reset="ical reset"))]
        if ctx.incoming.is_group:
            return [self._say(t._("Your personal calendar link is private: ask me in a private chat."))]
        token = profile.feed_token
        if not token or reset:
            token = new_feed_token()
            await self.chats.save_profile(replace(profile, feed_token=token))
        url = personal_feed_url(self.public_url, token)
        webcal = "webcal://" + url.split("://", 1)[1]
        lines = [p(t._("Your personal calendar lists what this chat follows. Add it to your calendar app:")),
                 p(link(url)), p(link(webcal, t._("Open in your calendar app")))]
        if reset:
            lines.insert(0, p(b(t._("The old link no longer works."))))
        else:
            lines.append(p(i(t._("Keep it to yourself; send {reset} if it leaks.").format(reset="ical reset"))))
        return [Reply(message(*lines), private=True)]

    async def _info(self, ctx: Context) -> list[Reply]:
        found = await self._meeting_of(ctx)
        if isinstance(found, Reply):
            return [found]
        meeting, _version = found
        t, info, remote = ctx.t, meeting.practical, meeting.remote
        facts: list[list[Part]] = []
        venue = ", ".join(x for x in (meeting.venue, meeting.city, meeting.country) if x)
        if venue:
            facts.append([b(t._("Venue:")), " ", venue])
        facts.append([b(t._("Dates:")), " ", f"{t.date(meeting.start_date)} – {t.date(meeting.end_date)}"])
        if info.registration_desk:
            facts.append([b(t._("Registration desk:")), " ", info.registration_desk])
        if info.registration_opens:
            facts.append([b(t._("Registration opens:")), " ", info.registration_opens])
        if info.wifi_ssid:
            wifi: list[Part] = [b(t._("Wi-Fi:")), " ", code(info.wifi_ssid)]
            if info.wifi_password:
                wifi += [" / ", code(info.wifi_password)]
            facts.append(wifi)
        for label, value in ((t._("Lockers:"), info.lockers), (t._("Printers:"), info.printers),
                             (t._("Visas:"), info.visas)):
            if value:
                facts.append([b(label), " ", value])
        if remote.url or remote.instructions:
            line: list[Part] = [b(t._("Remote participation:")), " "]
            if remote.platform:
                line += [remote.platform, " "]
            if remote.url:
                line.append(link(remote.url))
            if remote.instructions:
                line += [" — ", remote.instructions]
            facts.append(line)
        for note in info.notes:
            facts.append([note])
        blocks: list[Block] = [p(b(meeting.title)), ul(facts)]
        if info.contacts:
            people: list[list[Part]] = []
            for c in info.contacts:
                person: list[Part] = [c.name]
                if c.role:
                    person += [" (", c.role, ")"]
                if c.email:
                    person += [" ", link("mailto:" + c.email, c.email)]
                if c.phone:
                    person += [" ", c.phone]
                people.append(person)
            blocks += [p(b(t._("Contacts"))), ul(people)]
        return [Reply(message(*blocks))]

    async def _meeting(self, ctx: Context) -> list[Reply]:
        t = ctx.t
        if not ctx.args:
            current = ctx.profile.meeting_id
            question = (t._("This chat follows {meeting}. Choose another:").format(meeting=current) if current
                        else t._("Which meeting should this chat follow?"))
            return [await self._choose_meeting(ctx, question)]
        wanted = MeetingId(ctx.args[0].lower())
        try:
            meeting = await self.agenda.get_meeting(wanted)
        except NotFound:
            return [await self._choose_meeting(ctx, t._("There is no meeting {id}. Choose one:").format(
                id=ctx.args[0][:64]))]
        if ctx.incoming.is_group and (refused := self._refuse_non_staff(ctx, meeting.id)):
            return [refused]
        await self.chats.save_profile(replace(ctx.profile, meeting_id=meeting.id))
        return [self._say(t._("This chat now follows {meeting}.").format(meeting=meeting.title))]

    async def _whoami(self, ctx: Context) -> list[Reply]:
        t, profile, user = ctx.t, ctx.profile, ctx.incoming.user
        facts: list[list[Part]] = [
            [t._("You:"), " ", code(f"{user.platform}:{user.user_id}"), *([" (", ctx.incoming.user_name, ")"]
                                                                         if ctx.incoming.user_name else [])],
            [t._("This chat:"), " ", code(str(profile.chat)), " — ",
             t._("group") if ctx.incoming.is_group else t._("private")],
            [t._("Language:"), " ", LANGUAGE_NAMES.get(profile.language, profile.language)],
            [t._("Timezone:"), " ", profile.timezone or t._("the meeting's time")],
            [t._("Meeting:"), " ", profile.meeting_id or "—"],
        ]
        for meeting_id in self.staff.meetings_of(user):
            role = self.staff.role(meeting_id, user)
            label = t._("moderator") if role is Role.MODERATOR else t._("secretariat")
            facts.append([t._("Role:"), " ", label, " — ", meeting_id])
        for sub in await self.chats.subscriptions_of(ctx.incoming.chat):
            state = t._("active") if sub.active else t._("stopped: {reason}").format(reason=sub.stopped_reason)
            facts.append([t._("Subscribed:"), " ", sub.meeting_id, " (", state, ")"])
        return [Reply(message(ul(facts)), private=True)]

    async def _pin(self, ctx: Context) -> list[Reply]:
        found = await self._meeting_of(ctx)
        if isinstance(found, Reply):
            return [found]
        meeting, _version = found
        t = ctx.t
        if refused := self._refuse_non_staff(ctx, meeting.id):
            return [refused]
        if not ctx.incoming.is_group:
            return [self._say(t._("The pinned schedule is for announcement channels: send this in the group."))]
        if self._on_pin_request is None:
            return [self._say(t._("Pinning is not available here."))]
        await self._on_pin_request(ctx.profile, meeting.id)
        return [self._say(t._("Today's schedule will be pinned here and kept up to date."))]

    async def _console(self, ctx: Context) -> list[Reply]:
        t = ctx.t
        if not self.staff.meetings_of(ctx.incoming.user):
            return [self._say(t._("The console is for the meeting's moderators and secretariat."))]
        if ctx.incoming.is_group:
            return [self._say(t._("Ask me for a console link in a private chat: a link sent here could be "
                                  "used by anyone who sees it."))]
        url = await self._login_link(ctx.incoming.user) if self._login_link is not None else None
        if url is None:
            return [self._say(t._("The console is not available here."))]
        return [Reply(message(
            p(t._("Your one-time link to the moderator console (valid for a few minutes, usable once):")),
            p(link(url, url)),
        ), private=True)]

    async def _queue_command(self, ctx: Context) -> list[Reply]:
        found = await self._meeting_of(ctx)
        if isinstance(found, Reply):
            return [found]
        meeting, version = found
        if self._floor is None:
            return [self._say(ctx.t._("The list of speakers is not available here."))]
        name, _ = split_command(ctx.incoming.text)
        now = self.clock()
        if name == "floor":
            return await self._floor.floor(ctx, meeting, version, now)
        if name == "withdraw":
            return await self._floor.withdraw(ctx, meeting, version, now)
        if name == "speakers":
            return await self._floor.speakers(ctx, meeting, version, now)
        return await self._floor.chair(ctx, meeting, version, now, self._role(ctx, meeting.id) is not None)


# ---------------------------------------------------------------- parsing


def _parse_day(text: str, days: list[date]) -> date | None:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        pass
    if text.strip().isdigit() and days:  # "agenda 2" = the second day of the meeting
        n = int(text.strip())
        span = (days[-1] - days[0]).days + 1
        if 1 <= n <= span:
            return days[0] + timedelta(days=n - 1)
    return None


def _parse_targets(args: list[str], version: AgendaVersion) -> tuple[frozenset[str], frozenset[NoticeKind], list[str]]:
    tracks, kinds, bad = set(), set(), []
    names = version.tracks()
    by_name = {slugify(name): slug for slug, name in names.items()}
    for arg in args:
        lowered = arg.lower()
        if lowered in {k.value for k in NoticeKind}:
            kinds.add(NoticeKind(lowered))
        elif lowered in names:
            tracks.add(lowered)
        elif slugify(arg) in by_name:
            tracks.add(by_name[slugify(arg)])
        else:
            bad.append(arg)
    return frozenset(tracks), frozenset(kinds), bad


def _kind_name(t: Translator, kind: NoticeKind) -> str:
    return {
        NoticeKind.AGENDA: t._("agenda changes"),
        NoticeKind.DEADLINES: t._("deadline reminders"),
        NoticeKind.ANNOUNCEMENTS: t._("announcements"),
    }[kind]


__all__ = ["COMMANDS", "Conversation", "Incoming", "Reply", "new_feed_token", "personal_feed_url"]
