"""DKIM verification with dkimpy: every DKIM-Signature of a message, the first that verifies and
is aligned with the From domain wins.

dkimpy is synchronous and asks DNS for the keys; `verify_dkim` runs it in a worker thread. Tests
pass `dnsfunc` (name -> TXT record bytes) in place of DNS, with keys they generated themselves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import dkim
from dkim.util import InvalidTagValueList, parse_tag_value

from floorbridge.core.announcements import DkimResult, aligned

DnsFunc = Callable[..., bytes | None]

_MAX_SIGNATURES = 5
_quiet = logging.getLogger("floorbridge.mail.dkimpy")
_quiet.setLevel(logging.CRITICAL)  # dkimpy logs each failure as an error; the result says it once


def _signatures(raw: bytes) -> list[dict[bytes, bytes]]:
    found: list[dict[bytes, bytes]] = []
    message = dkim.DKIM(raw, logger=_quiet)
    for name, value in message.headers:
        if name.lower() == b"dkim-signature":
            try:
                found.append(parse_tag_value(value))
            except InvalidTagValueList:
                found.append({})
    return found


def check_dkim(raw: bytes, from_address: str, dnsfunc: DnsFunc | None = None) -> DkimResult:
    """The verdict on `raw`'s DKIM signatures (blocking: DNS)."""
    try:
        signatures = _signatures(raw)
    except Exception as exc:  # dkimpy's parser on broken headers
        return DkimResult("fail", detail=f"unreadable signature headers ({type(exc).__name__})")
    if not signatures:
        return DkimResult("none")
    failures: list[str] = []
    passed: list[str] = []
    for idx, sig in enumerate(signatures[:_MAX_SIGNATURES]):
        domain = sig.get(b"d", b"").decode("ascii", "replace").lower()
        verifier = dkim.DKIM(raw, logger=_quiet)
        try:
            ok = verifier.verify(idx=idx, dnsfunc=dnsfunc) if dnsfunc else verifier.verify(idx=idx)
        except dkim.DKIMException as exc:
            failures.append(f"{domain or '?'}: {exc}")
            continue
        except Exception as exc:  # DNS libraries raise their own errors
            failures.append(f"{domain or '?'}: key lookup failed ({type(exc).__name__})")
            continue
        if ok:
            if aligned(domain, from_address):
                return DkimResult("pass", domain)
            passed.append(domain)
        else:
            failures.append(f"{domain or '?'}: the signature does not verify")
    if passed:
        return DkimResult("pass", passed[0], detail="valid, but not by the sender's domain")
    return DkimResult("fail", detail="; ".join(failures)[:500])


def _has_signature(raw: bytes) -> bool:
    end = min((i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0), default=len(raw))
    return b"dkim-signature:" in raw[:end].lower()


async def verify_dkim(raw: bytes, from_address: str, dnsfunc: DnsFunc | None = None) -> DkimResult:
    if not _has_signature(raw):
        return DkimResult("none")  # without a worker thread: most list mail is not signed
    return await asyncio.to_thread(check_dkim, raw, from_address, dnsfunc)
