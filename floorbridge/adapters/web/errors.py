"""One error shape for the whole web surface: JSON under /api, plain text elsewhere."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from floorbridge.core.errors import ConcurrentChange, InvalidInput, NotFound
from floorbridge.core.speakers import NotAllowed, QueueRefused

from ..storage.engine import database_unavailable
from .limits import capped

log = logging.getLogger("floorbridge.web")

RETRY_AFTER_SECONDS = 5
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(request: web.Request, status: int, code: str, message: str, **extra: object) -> web.Response:
    if request.path.startswith("/api/"):
        return web.json_response({"error": {"code": code, "message": message, **extra}}, status=status)
    return web.Response(status=status, text=f"{status} {code}: {message}\n", content_type="text/plain")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except NotFound as e:
        return error_response(request, 404, "not_found", str(e))
    except InvalidInput as e:
        listed = capped(e.problems)
        problems = [{"where": p.where, "what": p.what} for p in listed]
        return error_response(request, 400, "invalid_input", str(listed[0]), problems=problems)
    except ConcurrentChange as e:
        return error_response(request, 409, "conflict", str(e))
    except NotAllowed as e:
        return error_response(request, 403, "forbidden", e.reason)
    except QueueRefused as e:
        # The rules refuse it (deadline passed, list closed, already asked): say which, and why.
        return error_response(request, 422, e.code, e.reason)
    except web.HTTPException as e:
        if e.status >= 400 and e.empty_body is False and request.path.startswith("/api/"):
            return error_response(request, e.status, e.reason.lower().replace(" ", "_"), e.text or e.reason)
        raise
    except Exception as exc:
        if database_unavailable(exc):
            # The database is restarting or out of reach: the client may try again (the queue refuses a
            # request made twice, so a retry of one that was stored after all changes nothing).
            log.warning("database unavailable (%s)", type(exc).__name__, extra={"path": request.path})
            response = error_response(request, 503, "unavailable",
                                      "the database cannot be reached just now; try again")
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response
        # Never echo internals (they may hold connection strings); the log has the trace.
        log.exception("unhandled error", extra={"path": request.path})
        return error_response(request, 500, "internal_error", "internal error; see the server log")
