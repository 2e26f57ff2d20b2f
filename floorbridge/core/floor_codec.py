"""Lists-of-speakers objects <-> JSON-ready dicts: the commands a chat process hands to the process
that keeps the lists, and what it answers (an outcome, or the reason a command was refused)."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import Any

from .errors import ConcurrentChange, FloorbridgeError, NotFound
from .speakers import (
    ACTION_NAMES,
    Actor,
    AuditEntry,
    Channel,
    Command,
    FloorNotice,
    NotAllowed,
    Outcome,
    Participant,
    QueueRefused,
    Speaker,
    SpeakerState,
    SpeechType,
)

Json = dict[str, Any]

_COMMANDS: dict[str, type] = {name: cls for cls, name in ACTION_NAMES.items()}


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def participant_to_dict(p: Participant) -> Json:
    return {"key": p.key, "name": p.name, "delegation": p.delegation, "channel": p.channel.value,
            "remote": p.remote, "notify": p.notify}


def participant_from_dict(d: Json) -> Participant:
    return Participant(str(d["key"]), str(d["name"]), str(d["delegation"]), Channel(d["channel"]),
                       bool(d["remote"]), str(d["notify"]))


def actor_to_dict(a: Actor) -> Json:
    return {"key": a.key, "name": a.name, "channel": a.channel.value, "moderator": a.moderator}


def actor_from_dict(d: Json) -> Actor:
    return Actor(str(d["key"]), str(d["name"]), Channel(d["channel"]), bool(d["moderator"]))


def command_to_dict(c: Command) -> Json:
    out: Json = {"action": ACTION_NAMES[type(c)]}
    for f in fields(c):
        value = getattr(c, f.name)
        if isinstance(value, Participant):
            value = participant_to_dict(value)
        elif isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, SpeechType):
            value = value.value
        out[f.name] = value
    return out


def command_from_dict(d: Json) -> Command:
    """KeyError or ValueError when `d` is not a command this version knows."""
    cls = _COMMANDS[d["action"]]
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in d:
            continue
        value = d[f.name]
        if f.name == "participant":
            value = participant_from_dict(value)
        elif f.name == "speech_type":
            value = SpeechType(value)
        elif f.name == "requested_at":
            value = _parse_time(value)
        kwargs[f.name] = value
    command: Command = cls(**kwargs)
    return command


def speaker_to_dict(s: Speaker) -> Json:
    return {"id": s.id, "participant": participant_to_dict(s.participant), "speech_type": s.speech_type.value,
            "requested_at": s.requested_at.isoformat(), "receipt": s.receipt, "state": s.state.value,
            "started_at": _time(s.started_at), "ended_at": _time(s.ended_at), "paused_at": _time(s.paused_at),
            "paused_seconds": s.paused_seconds, "allotted_seconds": s.allotted_seconds}


def speaker_from_dict(d: Json) -> Speaker:
    return Speaker(id=int(d["id"]), participant=participant_from_dict(d["participant"]),
                   speech_type=SpeechType(d["speech_type"]), requested_at=datetime.fromisoformat(d["requested_at"]),
                   receipt=int(d["receipt"]), state=SpeakerState(d["state"]), started_at=_parse_time(d["started_at"]),
                   ended_at=_parse_time(d["ended_at"]), paused_at=_parse_time(d["paused_at"]),
                   paused_seconds=float(d["paused_seconds"]), allotted_seconds=int(d["allotted_seconds"]))


def outcome_to_dict(o: Outcome) -> Json:
    a = o.audit
    return {
        "version": o.version,
        "changed": [speaker_to_dict(s) for s in o.changed],
        "notices": [{"kind": n.kind, "speaker": speaker_to_dict(n.speaker), "position": n.position}
                    for n in o.notices],
        "audit": {"version": a.version, "at": a.at.isoformat(), "actor": actor_to_dict(a.actor), "action": a.action,
                  "detail": dict(a.detail)},
        "speaker": speaker_to_dict(o.speaker) if o.speaker is not None else None,
    }


def outcome_from_dict(d: Json) -> Outcome:
    a = d["audit"]
    audit = AuditEntry(int(a["version"]), datetime.fromisoformat(a["at"]), actor_from_dict(a["actor"]),
                       str(a["action"]), dict(a["detail"]))
    return Outcome(
        version=int(d["version"]),
        changed=tuple(speaker_from_dict(s) for s in d["changed"]),
        notices=tuple(FloorNotice(n["kind"], speaker_from_dict(n["speaker"]), int(n["position"]))
                      for n in d["notices"]),
        audit=audit,
        speaker=speaker_from_dict(d["speaker"]) if d["speaker"] is not None else None,
    )


def refusal_to_dict(exc: FloorbridgeError) -> Json:
    """A refusal the caller is meant to read (the rules, a change that came first, an unknown session)."""
    if isinstance(exc, QueueRefused):
        return {"error": "refused", "reason": exc.reason, "code": exc.code}
    if isinstance(exc, ConcurrentChange):
        return {"error": "concurrent", "reason": str(exc)}
    if isinstance(exc, NotFound):
        return {"error": "not_found", "reason": str(exc)}
    raise TypeError(f"{type(exc).__name__} is not a refusal")


def refusal_from_dict(d: Json) -> FloorbridgeError:
    kind, reason = d["error"], str(d["reason"])
    if kind == "refused":
        return NotAllowed(reason) if d["code"] == "forbidden" else QueueRefused(reason, str(d["code"]))
    if kind == "concurrent":
        return ConcurrentChange(reason)
    if kind == "not_found":
        return NotFound(reason)
    raise ValueError(f"unknown refusal {kind!r}")
