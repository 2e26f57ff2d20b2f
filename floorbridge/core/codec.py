"""Core objects <-> JSON-ready dicts, for storage rows and the API (pure functions, no I/O)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, cast

from .agenda import Document, Session, SessionStatus
from .announcements import Attachment, DeadlineState, FoundDeadline, MailDeadline, ParsedMail
from .changes import Change, ChangeKind, ChangeSet, TimeSpan, Value
from .deadline import Deadline, DeadlineKind
from .ids import DeadlineId, MeetingId, SessionId
from .meeting import Contact, Meeting, PracticalInfo, RemoteParticipation
from .versions import AgendaVersion, PublishedSession

Json = dict[str, Any]


def _dt(value: str) -> datetime:
    return datetime.fromisoformat(value)


def meeting_to_dict(m: Meeting) -> Json:
    return {
        "id": m.id,
        "title": m.title,
        "organiser": m.organiser,
        "timezone": m.timezone,
        "start_date": m.start_date.isoformat(),
        "end_date": m.end_date.isoformat(),
        "venue": m.venue,
        "city": m.city,
        "country": m.country,
        "languages": list(m.languages),
        "url": m.url,
        "description": m.description,
        "remote": {
            "url": m.remote.url,
            "platform": m.remote.platform,
            "instructions": m.remote.instructions,
            "registration_required": m.remote.registration_required,
        },
        "practical": {
            "registration_desk": m.practical.registration_desk,
            "registration_opens": m.practical.registration_opens,
            "wifi_ssid": m.practical.wifi_ssid,
            "wifi_password": m.practical.wifi_password,
            "lockers": m.practical.lockers,
            "printers": m.practical.printers,
            "visas": m.practical.visas,
            "contacts": [vars(c) for c in m.practical.contacts],
            "notes": list(m.practical.notes),
        },
    }


def meeting_from_dict(d: Json) -> Meeting:
    p = d.get("practical", {})
    return Meeting(
        id=MeetingId(d["id"]),
        title=d["title"],
        organiser=d["organiser"],
        timezone=d["timezone"],
        start_date=date.fromisoformat(d["start_date"]),
        end_date=date.fromisoformat(d["end_date"]),
        venue=d.get("venue", ""),
        city=d.get("city", ""),
        country=d.get("country", ""),
        languages=tuple(d.get("languages", ("en",))),
        url=d.get("url", ""),
        description=d.get("description", ""),
        remote=RemoteParticipation(**d.get("remote", {})),
        practical=PracticalInfo(
            **{k: v for k, v in p.items() if k not in ("contacts", "notes")},
            contacts=tuple(Contact(**c) for c in p.get("contacts", ())),
            notes=tuple(p.get("notes", ())),
        ),
    )


def session_to_dict(s: Session) -> Json:
    return {
        "id": s.id,
        "title": s.title,
        "start": s.start.isoformat(),
        "end": s.end.isoformat(),
        "track": s.track,
        "room": s.room,
        "remote_url": s.remote_url,
        "description": s.description,
        "documents": [{"title": d.title, "url": d.url} for d in s.documents],
        "chairs": list(s.chairs),
        "status": s.status.value,
    }


def session_from_dict(d: Json) -> Session:
    return Session(
        id=SessionId(d["id"]),
        title=d["title"],
        start=_dt(d["start"]),
        end=_dt(d["end"]),
        track=d.get("track", ""),
        room=d.get("room", ""),
        remote_url=d.get("remote_url", ""),
        description=d.get("description", ""),
        documents=tuple(Document(x["title"], x["url"]) for x in d.get("documents", ())),
        chairs=tuple(d.get("chairs", ())),
        status=SessionStatus(d.get("status", "scheduled")),
    )


def _due_to_json(due: date | datetime) -> Json:
    if isinstance(due, datetime):
        return {"datetime": due.isoformat()}
    return {"date": due.isoformat()}


def _due_from_json(d: Json) -> date | datetime:
    if "datetime" in d:
        return _dt(d["datetime"])
    return date.fromisoformat(d["date"])


def deadline_to_dict(x: Deadline) -> Json:
    return {
        "id": x.id,
        "kind": x.kind.value,
        "title": x.title,
        "due": _due_to_json(x.due),
        "all_day": x.all_day,
        "source": x.source,
        "description": x.description,
        "url": x.url,
    }


def deadline_from_dict(d: Json) -> Deadline:
    return Deadline(
        id=DeadlineId(d["id"]),
        kind=DeadlineKind(d["kind"]),
        title=d["title"],
        due=_due_from_json(d["due"]),
        source=d.get("source", ""),
        description=d.get("description", ""),
        url=d.get("url", ""),
    )


def _value_to_json(v: Value) -> Any:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, TimeSpan):
        return {"start": v.start.isoformat(), "end": v.end.isoformat()}
    if isinstance(v, Document):
        return {"title": v.title, "url": v.url}
    if isinstance(v, tuple):
        return {"list": list(v)}
    return _due_to_json(v)


def _value_from_json(v: Any) -> Value:
    if v is None or isinstance(v, str):
        return cast(Value, v)
    if "start" in v:
        return TimeSpan(_dt(v["start"]), _dt(v["end"]))
    if "url" in v:
        return Document(v["title"], v["url"])
    if "list" in v:
        return tuple(v["list"])
    return _due_from_json(v)


def change_to_dict(c: Change) -> Json:
    return {
        "kind": c.kind.value,
        "subject": c.subject,
        "title": c.title,
        "old": _value_to_json(c.old),
        "new": _value_to_json(c.new),
        "tracks": list(c.tracks),
    }


def change_from_dict(d: Json) -> Change:
    return Change(
        ChangeKind(d["kind"]),
        d["subject"],
        d["title"],
        _value_from_json(d["old"]),
        _value_from_json(d["new"]),
        tuple(d.get("tracks", ())),
    )


def changeset_to_dict(cs: ChangeSet) -> Json:
    return {
        "meeting": cs.meeting_id,
        "from_version": cs.from_version,
        "to_version": cs.to_version,
        "changes": [change_to_dict(c) for c in cs.changes],
    }


def changeset_from_dict(d: Json) -> ChangeSet:
    return ChangeSet(
        MeetingId(d["meeting"]),
        d["from_version"],
        d["to_version"],
        tuple(change_from_dict(c) for c in d["changes"]),
    )


def published_to_dict(p: PublishedSession) -> Json:
    return {**session_to_dict(p.session), "sequence": p.sequence, "last_modified": p.last_modified.isoformat()}


def published_from_dict(d: Json) -> PublishedSession:
    return PublishedSession(session_from_dict(d), int(d["sequence"]), _dt(d["last_modified"]))


def version_to_dict(v: AgendaVersion) -> Json:
    return {
        "meeting": v.meeting_id,
        "number": v.number,
        "published_at": v.published_at.isoformat(),
        "comment": v.comment,
        "sessions": [published_to_dict(p) for p in v.sessions],
        "deadlines": [deadline_to_dict(d) for d in v.deadlines],
        "changes": changeset_to_dict(v.changes),
    }


def version_from_dict(d: Json) -> AgendaVersion:
    return AgendaVersion(
        meeting_id=MeetingId(d["meeting"]),
        number=int(d["number"]),
        published_at=_dt(d["published_at"]),
        comment=d.get("comment", ""),
        sessions=tuple(published_from_dict(x) for x in d["sessions"]),
        deadlines=tuple(deadline_from_dict(x) for x in d["deadlines"]),
        changes=changeset_from_dict(d["changes"]),
    )


def parsed_mail_to_dict(m: ParsedMail) -> Json:
    return {
        "message_id": m.message_id,
        "subject": m.subject,
        "sender": m.sender,
        "sender_address": m.sender_address,
        "list_id": m.list_id,
        "date": m.date.isoformat() if m.date is not None else None,
        "in_reply_to": m.in_reply_to,
        "references": list(m.references),
        "text": m.text,
        "first_paragraph": m.first_paragraph,
        "attachments": [{"filename": a.filename, "content_type": a.content_type, "size": a.size}
                        for a in m.attachments],
        "repairs": list(m.repairs),
    }


def parsed_mail_from_dict(d: Json) -> ParsedMail:
    return ParsedMail(
        message_id=d["message_id"],
        subject=d["subject"],
        sender=d["sender"],
        sender_address=d["sender_address"],
        list_id=d["list_id"],
        date=_dt(d["date"]) if d.get("date") else None,
        in_reply_to=d.get("in_reply_to", ""),
        references=tuple(d.get("references", ())),
        text=d.get("text", ""),
        first_paragraph=d.get("first_paragraph", ""),
        attachments=tuple(Attachment(a["filename"], a["content_type"], a["size"]) for a in d.get("attachments", ())),
        repairs=tuple(d.get("repairs", ())),
    )


def mail_deadline_to_dict(x: MailDeadline) -> Json:
    f = x.found
    return {"id": x.id, "kind": f.kind.value, "due": f.due.isoformat(), "confidence": f.confidence,
            "excerpt": f.excerpt, "language": f.language, "state": x.state.value, "decided_by": x.decided_by}


def mail_deadline_from_dict(d: Json) -> MailDeadline:
    found = FoundDeadline(DeadlineKind(d["kind"]), date.fromisoformat(d["due"]), float(d["confidence"]),
                          d.get("excerpt", ""), d.get("language", ""))
    return MailDeadline(d["id"], found, DeadlineState(d["state"]), d.get("decided_by", ""))
