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


def openapi_document(public_url: str) -> dict[str, Any]:
    track_param = {"name": "track", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "floorbridge API",
            "version": __version__,
            "description": "Meetings, their published agenda versions, changelogs, deadlines and iCal feeds.",
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
        },
        "components": {"schemas": _SCHEMAS},
    }
