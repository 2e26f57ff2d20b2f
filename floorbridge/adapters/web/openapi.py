"""The OpenAPI 3.1 description of /api/v1, served at /api/v1/openapi.json."""

from __future__ import annotations

from typing import Any

from floorbridge import __version__

_STR = {"type": "string"}
_DT = {"type": "string", "format": "date-time"}
_DATE = {"type": "string", "format": "date"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _arr(name: str) -> dict[str, Any]:
    return {"type": "array", "items": _ref(name)}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required or list(props)}


_SCHEMAS: dict[str, Any] = {
    "Error": _obj(
        {
            "error": _obj(
                {
                    "code": _STR,
                    "message": _STR,
                    "problems": {"type": "array", "items": _obj({"where": _STR, "what": _STR})},
                },
                ["code", "message"],
            )
        }
    ),
    "FeedLinks": _obj({"https": {"type": "string", "format": "uri"}, "webcal": _STR}),
    "Meeting": _obj(
        {
            "id": _STR,
            "title": _STR,
            "organiser": _STR,
            "timezone": {"type": "string", "description": "IANA timezone of the meeting"},
            "start_date": _DATE,
            "end_date": _DATE,
            "venue": _STR,
            "city": _STR,
            "country": _STR,
            "languages": {"type": "array", "items": _STR},
            "url": _STR,
            "description": _STR,
            "remote": {"type": "object"},
            "practical": {"type": "object"},
            "latest_version": {"type": ["integer", "null"]},
            "feeds": {"type": "object", "additionalProperties": _ref("FeedLinks")},
        },
        ["id", "title", "timezone", "start_date", "end_date", "latest_version", "feeds"],
    ),
    "Document": _obj({"title": _STR, "url": _STR}),
    "Session": _obj(
        {
            "id": _STR,
            "title": _STR,
            "start": _DT,
            "end": _DT,
            "track": _STR,
            "room": _STR,
            "remote_url": _STR,
            "description": _STR,
            "documents": {"type": "array", "items": _ref("Document")},
            "chairs": {"type": "array", "items": _STR},
            "status": {"enum": ["scheduled", "tentative", "cancelled"]},
            "sequence": {"type": "integer", "description": "iCal SEQUENCE in this version"},
            "last_modified": _DT,
        }
    ),
    "Deadline": _obj(
        {
            "id": _STR,
            "kind": {"enum": ["registration", "contributions", "visa-support", "speaking-slot", "other"]},
            "title": _STR,
            "due": {
                "oneOf": [_obj({"date": _DATE}), _obj({"datetime": _DT})],
                "description": "a whole local day, or an exact moment",
            },
            "all_day": {"type": "boolean"},
            "source": _STR,
            "description": _STR,
            "url": _STR,
        }
    ),
    "Change": _obj(
        {
            "kind": {
                "enum": [
                    "added", "cancelled", "reinstated", "moved-time", "moved-room", "renamed", "redescribed",
                    "status", "track", "remote-link", "chairs", "document-added", "document-withdrawn",
                    "deadline-added", "deadline-moved", "deadline-changed", "deadline-removed",
                ]
            },
            "subject": {"type": "string", "description": "session or deadline id"},
            "title": _STR,
            "old": {"description": "old value: string, {start,end}, {title,url}, {list}, {date} or {datetime}"},
            "new": {"description": "new value, same shapes as old"},
            "tracks": {"type": "array", "items": _STR},
        }
    ),
    "Changelog": _obj(
        {
            "meeting": _STR,
            "from_version": {"type": ["integer", "null"]},
            "to_version": {"type": "integer"},
            "changes": {"type": "array", "items": _ref("Change")},
        }
    ),
    "VersionSummary": _obj(
        {"number": {"type": "integer"}, "published_at": _DT, "comment": _STR, "change_count": {"type": "integer"}}
    ),
}

_MEETING = {"name": "meeting", "in": "path", "required": True, "schema": {"type": "string"}}
_NUMBER = {"name": "number", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
_VERSION_Q = {
    "name": "version",
    "in": "query",
    "required": False,
    "description": "a published version number; the latest when absent",
    "schema": {"type": "integer", "minimum": 1},
}


def _ok(schema: dict[str, Any], summary: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "parameters": params,
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": schema}}},
                "400": {"description": "Bad request", "content": {"application/json": {"schema": _ref("Error")}}},
                "404": {"description": "Not found", "content": {"application/json": {"schema": _ref("Error")}}},
            },
        }
    }


def _ics(summary: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "parameters": params,
            "responses": {
                "200": {"description": "RFC 5545 calendar", "content": {"text/calendar": {"schema": _STR}}},
                "304": {"description": "Not modified (If-None-Match / If-Modified-Since)"},
                "404": {"description": "Unknown meeting, track or nothing published"},
            },
        }
    }


_SESSION = {"name": "session", "in": "path", "required": True, "schema": _STR}
_CALL = {"name": "call", "in": "path", "required": True, "schema": _STR}
_REF = {"name": "ref", "in": "path", "required": True, "schema": _STR,
        "description": "the request's reference, as given in its acknowledgement"}
_ERRORS = {
    "400": "Malformed input: every problem is named in error.problems",
    "401": "Not signed in to the console",
    "403": "Signed in, but not a moderator or the secretariat of this meeting, or a bad CSRF token",
    "404": "Unknown meeting, session, call or request",
    "409": "Changed meanwhile (expected_version or expected_updated_at no longer current)",
    "422": "Refused by the rules (deadline passed, list closed, already asked…); error.code says which",
    "429": "Too many requests from this address (server.rate_limit); Retry-After says when to try again",
}


def _op(summary: str, params: list[dict[str, Any]], *, body: list[str] | None = None, status: str = "200",
        content: str = "application/json", errors: tuple[str, ...] = ("400", "404"),
        note: str = "") -> dict[str, Any]:
    """An operation whose answer is JSON (or `content`); `body` lists the JSON fields it accepts."""
    op: dict[str, Any] = {
        "summary": summary,
        "parameters": params,
        "responses": {
            status: {"description": "OK", "content": {content: {"schema": {"type": "object"} if content ==
                                                                 "application/json" else _STR}}},
            **{code: {"description": _ERRORS[code], "content": {"application/json": {"schema": _ref("Error")}}}
               for code in (*errors, "429")},
        },
    }
    if note:
        op["description"] = note
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "properties": {name: {} for name in body}, "additionalProperties": False}}}}
    return op


_CONSOLE = "Console session cookie and, for changes, its CSRF token in X-CSRF-Token."
_ALL = ("400", "401", "403", "404", "409", "422")


def _queue_paths() -> dict[str, Any]:
    base = "/api/v1/meetings/{meeting}/sessions/{session}/speakers"
    ms = [_MEETING, _SESSION]
    return {
        base: {"get": _op("The live list of speakers: current speaker, waiting (with positions), finished", ms)},
        base + "/events": {"get": _op("Server-sent events: the list's version after every change", ms,
                                      content="text/event-stream")},
        base + "/requests": {"post": _op(
            "Ask for the floor from the web (this browser's cookie fb_delegate identifies the delegate)", ms,
            body=["name", "delegation", "speech_type", "remote"], status="201", errors=("400", "404", "422"))},
        base + "/requests/mine": {"delete": _op("Withdraw this browser's request", ms, errors=("400", "404", "422"))},
        base + "/actions": {"post": _op(
            "A moderator action: next, start, end, pause, resume, move, remove, close, reopen, readd_last, "
            "set_time, set_budget, add (an in-room speaker), withdraw", ms,
            body=["action", "speaker_id", "position", "seconds", "delegation", "name", "speech_type", "remote",
                  "participant", "expected_version"], errors=_ALL, note=_CONSOLE)},
        base + "/audit": {"get": _op("Every change: who, when, from which platform", ms,
                                     errors=("401", "403", "404"), note=_CONSOLE)},
        base + "/record.{format}": {"get": {
            **_op("The record of the session's speeches (channel, requested, start, end, spoken)",
                  [*ms, {"name": "format", "in": "path", "required": True, "schema": {"enum": ["csv", "json"]}}],
                  errors=("404",)),
        }},
        "/api/v1/meetings/{meeting}/speaking-time": {"get": _op(
            "Speaking time per delegation over the whole meeting", [_MEETING], errors=("404",))},
    }


def _slot_paths() -> dict[str, Any]:
    m = "/api/v1/meetings/{meeting}"
    return {
        m + "/slot-calls": {"get": _op("Calls for speaking-slot requests and their rules", [_MEETING])},
        m + "/slot-calls/{call}": {"put": _op("Open or change a call (secretariat)", [_MEETING, _CALL],
                                              body=["title", "deadline", "sessions", "minutes",
                                                    "one_per_delegation", "modes", "languages"],
                                              errors=_ALL, note=_CONSOLE)},
        m + "/slot-calls/{call}/requests": {
            "post": _op("Request a speaking slot; the answer carries the reference", [_MEETING, _CALL],
                        body=["name", "title", "delegation", "stakeholder", "rank", "session", "mode",
                              "language"], status="201", errors=("400", "404", "422")),
            "get": _op("The requests with the draft order by protocol precedence (secretariat)",
                       [_MEETING, _CALL], errors=("401", "403", "404"), note=_CONSOLE),
        },
        m + "/slot-requests/{ref}/review": {"post": _op(
            "Approve (session, order, start, minutes), waitlist or reject (reason) a request", [_MEETING, _REF],
            body=["decision", "reason", "session", "order", "start", "minutes", "expected_updated_at"],
            errors=_ALL, note=_CONSOLE)},
        m + "/slot-requests/{ref}/feed-token": {"post": _op(
            "Revoke a request's private calendar link (secretariat); the old link answers 404",
            [_MEETING, _REF], errors=("401", "403", "404", "409"), note=_CONSOLE)},
        "/api/v1/slot-requests/{ref}/feed-token": {"post": _op(
            "Replace the requester's own private calendar link; the old one answers 404", [_REF],
            errors=("403", "404", "409"))},
        m + "/sessions/{session}/rolling-list": {"get": _op("Approved speakers of a session, in order",
                                                            [_MEETING, _SESSION])},
        "/api/v1/slot-requests/{ref}": {
            "get": _op("The requester's own request", [_REF], errors=("404",)),
            "put": _op("Change it before the deadline", [_REF], body=["name", "title", "delegation", "stakeholder",
                                                                      "rank", "session", "mode", "language"],
                       errors=("400", "404", "409", "422")),
            "delete": _op("Withdraw it before the deadline", [_REF], errors=("404", "422")),
        },
        "/ical/slot/{token}.ics": _ics("An approved speaker's slot, for their calendar",
                                       [{"name": "token", "in": "path", "required": True, "schema": _STR}]),
    }


_MAIL_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}


def _mail_paths() -> dict[str, Any]:
    m = "/api/v1/meetings/{meeting}"
    return {
        m + "/mail": {"post": {
            "summary": "Deliver one raw RFC 822 message, signed with the shared HMAC key",
            "description": "Headers: X-Floorbridge-Timestamp (Unix seconds, within 5 minutes) and "
                           "X-Floorbridge-Signature: sha256=HEX, the HMAC-SHA256 of the timestamp, '.', and the body.",
            "parameters": [_MEETING],
            "requestBody": {"required": True, "content": {"message/rfc822": {"schema": _STR}}},
            "responses": {
                "202": {"description": "Stored: in the archive or, with the reason, in the quarantine",
                        "content": {"application/json": {"schema": {"type": "object"}}}},
                **{code: {"description": text, "content": {"application/json": {"schema": _ref("Error")}}}
                   for code, text in (("400", "No body"), ("401", "Missing, stale or wrong signature"),
                                      ("404", "Unknown meeting, or the endpoint is not configured"),
                                      ("413", "Over the size cap"))},
            },
        }},
        m + "/announcements": {"get": _op("The archived announcements, newest first (before=ID, limit=N)",
                                          [_MEETING])},
        m + "/announcements/{id}": {"get": _op("One archived announcement: text, deadlines, attachments",
                                               [_MEETING, _MAIL_ID])},
    }


def openapi_document(public_url: str) -> dict[str, Any]:
    track_param = {"name": "track", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "floorbridge API",
            "version": __version__,
            "description": "Meetings, their published agenda versions, changelogs, deadlines and iCal feeds; the live "
                           "lists of speakers and speaking-slot requests.",
        },
        "servers": [{"url": public_url}],
        "paths": {
            "/api/v1/meetings": _ok(_obj({"meetings": _arr("Meeting")}), "List meetings", []),
            "/api/v1/meetings/{meeting}": _ok(_ref("Meeting"), "One meeting", [_MEETING]),
            "/api/v1/meetings/{meeting}/sessions": _ok(
                _obj({"meeting": _STR, "version": {"type": "integer"}, "sessions": _arr("Session")}),
                "Sessions of a published version",
                [
                    _MEETING,
                    _VERSION_Q,
                    {"name": "track", "in": "query", "required": False, "schema": {"type": "string"}},
                ],
            ),
            "/api/v1/meetings/{meeting}/sessions/{session}": _ok(
                _ref("Session"),
                "One session",
                [_MEETING, {"name": "session", "in": "path", "required": True, "schema": _STR}, _VERSION_Q],
            ),
            "/api/v1/meetings/{meeting}/deadlines": _ok(
                _obj(
                    {
                        "meeting": _STR,
                        "version": {"type": "integer"},
                        "deadlines": _arr("Deadline"),
                        "feed": _ref("FeedLinks"),
                    }
                ),
                "Deadlines of a published version",
                [_MEETING, _VERSION_Q],
            ),
            "/api/v1/meetings/{meeting}/versions": _ok(
                _obj({"meeting": _STR, "versions": _arr("VersionSummary")}), "Published versions", [_MEETING]
            ),
            "/api/v1/meetings/{meeting}/versions/{number}": _ok(
                _obj(
                    {
                        "meeting": _STR,
                        "number": {"type": "integer"},
                        "published_at": _DT,
                        "comment": _STR,
                        "session_count": {"type": "integer"},
                        "changelog": _ref("Changelog"),
                    }
                ),
                "One version with its changelog against the version before it",
                [_MEETING, _NUMBER],
            ),
            "/api/v1/meetings/{meeting}/versions/{number}/changelog": _ok(
                _ref("Changelog"), "Changes from the version before to this one", [_MEETING, _NUMBER]
            ),
            "/api/v1/openapi.json": _ok({"type": "object"}, "This document", []),
            "/ical/{meeting}.ics": _ics("All sessions of a meeting", [_MEETING]),
            "/ical/{meeting}/tracks/{track}.ics": _ics("The sessions of one track", [_MEETING, track_param]),
            "/ical/{meeting}/deadlines.ics": _ics("Deadlines, with alarms", [_MEETING]),
            "/healthz": {
                "get": {"summary": "Liveness", "responses": {"200": {"description": "The process is serving"}}}
            },
            "/readyz": {
                "get": {"summary": "Readiness: the database answers and the meetings are loaded", "responses": {
                    "200": {"description": "Ready"}, "503": {"description": "Not ready; `problems` says why"}}}
            },
            "/metrics": {
                "get": {"summary": "Prometheus metrics (outbox, sends, 429s, retries, feeds, queue, mail)",
                        "responses": {"200": {"description": "Prometheus text format",
                                              "content": {"text/plain": {"schema": _STR}}}}}
            },
            **_queue_paths(),
            **_slot_paths(),
            **_mail_paths(),
        },
        "components": {"schemas": _SCHEMAS},
    }
