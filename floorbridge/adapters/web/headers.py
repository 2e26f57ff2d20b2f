"""The security headers of every answer: HTML pages, and everything else (JSON, text, calendars,
scripts, errors), whether aiohttp or the feeds' fast path sends it."""

from __future__ import annotations

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
# What any other answer (JSON, text, calendars, scripts, errors) carries: nothing on it may run or
# be framed, and its type is not to be guessed.
OTHER_HEADERS = {
    **{k: v for k, v in SECURITY_HEADERS.items() if k != "Content-Security-Policy"},
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
}
# On every answer of a site that is public over https.
HSTS = {"Strict-Transport-Security": "max-age=31536000"}
