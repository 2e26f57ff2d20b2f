"""One mailing-list message (RFC 5322 / MIME bytes) read into a `ParsedMail`.

Circular letters reach the lists in every charset and every state of repair: KOI8-R and windows-1251
bodies that declare us-ascii, subjects in encoded words of unknown charsets, HTML-only bodies, broken
base64. The parser reads what can be read, says in `repairs` what it had to guess, and raises
`MalformedMail` (and nothing else) only when there is no message to speak of.

The body a delegate reads is the text/plain alternative (else the HTML one, turned into text), without
the Mailman footer and without the quoted message a reply carries at its bottom.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email
import functools
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from email import errors as email_errors
from email import policy
from email.message import Message
from email.utils import parsedate_to_datetime
from html import unescape

from floorbridge.core.announcements import Attachment, ParsedMail

__all__ = ["DEFAULT_MAX_BYTES", "MalformedMail", "parse_mail"]

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
FIRST_PARAGRAPH_MAX = 600  # characters, "…" included
_MAX_HEADER_CHARS = 4000  # of a header's value, folding included (RFC 5322 allows 998 per line)
_MAX_DEPTH = 30  # MIME nesting read; deeper parts are ignored (with a repair note)

_POLICY = policy.default


class MalformedMail(Exception):
    """The message cannot be read at all; `reason` says why, for the quarantine."""

    reason: str

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_mail(raw: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> ParsedMail:
    """Read one message; raise `MalformedMail` when it cannot be read at all, never anything else."""
    if isinstance(raw, bytearray | memoryview):
        raw = bytes(raw)
    if not isinstance(raw, bytes):
        raise MalformedMail(f"not a message: expected bytes, got {type(raw).__name__}")
    if len(raw) > max_bytes:
        raise MalformedMail(f"message too large: {len(raw)} bytes, over the cap of {max_bytes} bytes")
    if not raw.strip():
        raise MalformedMail("empty message")
    try:
        return _parse(raw)
    except MalformedMail:
        raise
    except Exception as exc:  # the contract: only MalformedMail leaves this function
        raise MalformedMail(f"unreadable message: {type(exc).__name__} while parsing") from exc


# ---------------------------------------------------------------------------------------------------
# The message


_WANTED_HEADERS = frozenset({"message-id", "subject", "from", "sender", "list-id", "date", "in-reply-to", "references"})
_ANGLE_ID = re.compile(r"<([^<>]*)>")
_FORWARD_SUBJECT = re.compile(r"^\s*(?:\[[^\]]*\]\s*)?(?:fwd?|fw|tr|rv|enc|wg|пересл|пересылка)\s*:", re.I)


def _parse(raw: bytes) -> ParsedMail:
    msg = email.message_from_bytes(raw, policy=_POLICY)
    if len(msg) == 0:
        raise MalformedMail("no header block: the message does not start with 'Name: value' headers")
    headers: dict[str, str] = {}
    for name, value in msg.raw_items():
        key = name.lower()
        if key in _WANTED_HEADERS and key not in headers:
            headers[key] = str(value)

    repairs: list[str] = []
    for key, value in headers.items():
        if len(value) > _MAX_HEADER_CHARS:  # the header parsers slow down more than linearly
            headers[key] = value[:_MAX_HEADER_CHARS]
            repairs.append(f"header {key.title()}: longer than {_MAX_HEADER_CHARS} characters; the rest ignored")
    subject = _subject(headers.get("subject"), repairs)
    sender, sender_address = _sender(headers.get("from") or headers.get("sender"), repairs)

    body = _Body(repairs)
    body.walk(msg, 0)
    forwarded = bool(_FORWARD_SUBJECT.match(subject))
    text = _clean_text("\n\n".join(body.texts), forwarded=forwarded)
    attachments = tuple(body.attachments)
    if not sender and not text and not attachments:
        raise MalformedMail("neither a sender (From) nor a body could be found")

    references = _ids(headers.get("references", ""))
    in_reply_to = _ids(headers.get("in-reply-to", ""))
    return ParsedMail(
        message_id=_single_id(headers.get("message-id", "")),
        subject=subject,
        sender=sender,
        sender_address=sender_address,
        list_id=_list_id(headers.get("list-id", "")),
        date=_date(headers.get("date"), repairs),
        in_reply_to=in_reply_to[0] if in_reply_to else "",
        references=references,
        text=text,
        first_paragraph=_first_paragraph(text),
        attachments=attachments,
        repairs=tuple(dict.fromkeys(repairs)),
    )


def _ids(value: str) -> tuple[str, ...]:
    """The message ids in a References / In-Reply-To header, in order, without brackets or duplicates."""
    found = (_ascii_clean("".join(m.split())) for m in _ANGLE_ID.findall(value))
    return tuple(dict.fromkeys(i for i in found if i))


def _single_id(value: str) -> str:
    ids = _ids(value)
    if ids:
        return ids[0]
    return _ascii_clean("".join(value.split()))


def _list_id(value: str) -> str:
    match = _ANGLE_ID.search(value)
    ident = match.group(1) if match else value
    return _ascii_clean("".join(ident.split())).lower()


def _date(value: str | None, repairs: list[str]) -> datetime | None:
    if value is None or not value.strip():
        return None
    try:  # what the policy's DateHeader does, without building a header object nobody reads
        found: datetime | None = parsedate_to_datetime(value)
    except Exception:  # (ValueError, TypeError, IndexError, OverflowError in the wild) a repair, not a failure
        found = None
    if not isinstance(found, datetime):
        repairs.append(f"header Date: unreadable date {_ascii_clean(value.strip())[:60]!r}")
        return None
    if found.tzinfo is None:  # "-0000": the time is UTC, the sender's zone unknown
        found = found.replace(tzinfo=UTC)
    return found


def _subject(value: str | None, repairs: list[str]) -> str:
    if value is None:
        return ""
    if value.isascii() and "=?" not in value:  # nothing to decode (isascii is False with raw 8-bit bytes)
        return _one_line(value)
    value = _repair_header(value, "Subject", repairs)
    try:
        decoded = str(_POLICY.header_fetch_parse("Subject", value))
    except Exception:
        decoded = value
        repairs.append("header Subject: could not be decoded; shown as received")
    return _one_line(decoded)


_SIMPLE_MAILBOX = re.compile(
    r'\s*(?:"([^"\\]*)"|([^"<>@,;:\\()\[\]]*?))\s*<\s*([^<>@\s",;:()\[\]\\]+@[^<>@\s",;:()\[\]\\]+)\s*>\s*'
    r'|\s*([^<>@\s",;:()\[\]\\]+@[^<>@\s",;:()\[\]\\]+)\s*')
_EMAIL_IN_TEXT = re.compile(r"[^\s<>@\"',;:()]+@[^\s<>@\"',;:()]+\.[^\s<>@\"',;:()]+")


def _sender(value: str | None, repairs: list[str]) -> tuple[str, str]:
    """("Name <address>" or the address, the address in lower case); ("", "") without a From."""
    if value is None or not value.strip():
        return "", ""
    value = _repair_header(value, "From", repairs)
    simple = _SIMPLE_MAILBOX.fullmatch(value)
    if simple is not None:  # the usual 'Name <address>': no need for the full RFC 5322 address parser
        name = simple.group(1) if simple.group(1) is not None else simple.group(2)
        addr = simple.group(3) or simple.group(4)
        if name and ("=?" in name or not name.isascii()):
            name = str(_POLICY.header_fetch_parse("X-Display-Name", name))
        name = _one_line(name or "")
        return (f"{name} <{addr}>" if name else addr), addr.lower()
    shown = value
    try:
        header = _POLICY.header_fetch_parse("From", value)
        shown = str(header)
        for address in getattr(header, "addresses", ()):
            if address.domain and address.username:
                addr = _one_line(address.addr_spec)
                name = _one_line(address.display_name or "")
                return (f"{name} <{addr}>" if name else addr), addr.lower()
    except Exception:
        repairs.append("header From: could not be parsed; address taken from the text")
    shown = _one_line(shown)
    match = _EMAIL_IN_TEXT.search(shown)
    if match is None:
        return shown, ""
    addr = match.group()
    name = _one_line(shown.replace(addr, " ").replace("<", " ").replace(">", " ").strip(" \"'"))
    return (f"{name} <{addr}>" if name else addr), addr.lower()


# ---------------------------------------------------------------------------------------------------
# Charsets

# Names seen in the wild mapped to the codec that decodes what their senders really meant.
_CHARSET_ALIASES = {
    "iso-8859-1": "cp1252", "iso8859-1": "cp1252", "iso_8859-1": "cp1252", "latin1": "cp1252",
    "latin-1": "cp1252", "l1": "cp1252", "us-ascii": "ascii", "ascii": "ascii", "ansi_x3.4-1968": "ascii",
    "gb2312": "gb18030", "gbk": "gb18030", "euc-cn": "gb18030", "x-gbk": "gb18030",
    "ks_c_5601-1987": "cp949", "euc-kr": "cp949", "tis-620": "cp874", "windows-874": "cp874",
    "x-mac-cyrillic": "mac-cyrillic", "shift_jis": "cp932", "x-sjis": "cp932", "iso-8859-8-i": "iso-8859-8",
    "utf8": "utf-8", "unicode-1-1-utf-7": "utf-7",
}
# Python codecs no mail charset names: decoding with them would interpret the text, not read it.
_REFUSED_CODECS = frozenset({"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined", "mbcs", "oem"})
_WESTERN_CODECS = frozenset({"cp1252", "iso8859-1", "iso8859-15"})
_HIGH_BYTES = bytes(range(0x80, 0x100))

# The codecs tried, in this order, when the declared charset is missing, unknown or lying:
# (label for the repair note, codec, errors).
_GUESSES = (
    ("windows-1251", "cp1251", "replace"),
    ("koi8-r", "koi8-r", "replace"),
    ("windows-1252", "cp1252", "replace"),
    ("utf-8 with replacement characters", "utf-8", "replace"),
)
_CYR_WORD = re.compile("[а-яёА-ЯЁ]+")
_MIXED_SCRIPT = re.compile(r"[A-Za-z][а-яёА-ЯЁ]|[а-яёА-ЯЁ][A-Za-z]")
_LATIN_ACCENT_IN_WORD = re.compile(r"(?<=[A-Za-z])[À-ÖØ-öø-ÿ]|[À-ÖØ-öø-ÿ](?=[A-Za-z])")
_HIGH_RUN = re.compile(r"[\x80-\xff]{3,}")
_IMPLAUSIBLE = re.compile("[\ufffd\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2500-\u25ff\u2320\u2321\u2219\u221a\u2248]")


@functools.lru_cache(maxsize=256)
def _codec(name: str) -> str | None:
    """The Python codec for a declared charset name, or None when there is no such (text) charset."""
    key = name.strip().strip("\"'").lower()
    key = _CHARSET_ALIASES.get(key, key)
    try:
        info = codecs.lookup(key)
    except (LookupError, ValueError, TypeError):
        return None
    if info.name in _REFUSED_CODECS or not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


_SCORED_CHARS = 20_000  # enough text to tell charsets apart


def _plausibility(text: str) -> int:
    """How much a decoded text looks like natural Russian, French, Spanish or English (higher is likelier).

    Cyrillic read with the wrong 8-bit charset comes out with its case inverted (KOI8-R and windows-1251
    put the two cases the other way round), so words cased like no word is ('пРЕДЕЛЬНЫЙ') count against;
    Latin accents belong inside words of ASCII letters, not in runs of their own ('Ïðåäåëüíûé')."""
    text = text[:_SCORED_CHARS]
    cyrillic = 0
    for word in _CYR_WORD.findall(text):
        if word.islower() or (word[0].isupper() and word[1:].islower()):
            cyrillic += len(word)
        elif not word.isupper():
            cyrillic -= len(word)
    return (
        cyrillic
        + len(_LATIN_ACCENT_IN_WORD.findall(text))
        - 3 * len(_MIXED_SCRIPT.findall(text))
        - 3 * len(_IMPLAUSIBLE.findall(text))
        - sum(len(m) for m in _HIGH_RUN.findall(text))
    )


def _guess(data: bytes) -> tuple[str, str, str]:
    """(text, label, codec) for bytes of unknown charset: UTF-8 when valid, else the likeliest 8-bit charset."""
    try:
        return data.decode("utf-8"), "utf-8", "utf-8"
    except UnicodeDecodeError:
        pass
    best: tuple[int, str, str, str] | None = None
    for label, codec, errors in _GUESSES:
        text = data.decode(codec, errors)
        score = _plausibility(text)
        if best is None or score > best[0]:
            best = (score, text, label, codec)
    assert best is not None
    return best[1], best[2], best[3]


def _decode(data: bytes, declared: str | None, where: str, repairs: list[str]) -> str:
    """Bytes to text: the declared charset when it decodes, a guess (and a repair note) when it does not."""
    codec = _codec(declared) if declared else "ascii"
    if codec is None:
        reason = f"unknown charset {declared!r}"
    else:
        try:
            text = data.decode(codec)
        except ValueError:  # UnicodeDecodeError, or whatever an exotic codec raises
            if codec == "cp1252":  # the five bytes windows-1252 leaves undefined: plain ISO-8859-1
                return _unless_cyrillic(data, data.decode("latin-1"), declared, where, repairs)
            reason = f"declared charset {declared!r} did not decode" if declared else "no charset declared"
        else:
            if codec in _WESTERN_CODECS:
                return _unless_cyrillic(data, text, declared, where, repairs)
            return text
    text, label, _ = _guess(data)
    repairs.append(f"{where}: {reason}; read as {label}")
    return text


def _unless_cyrillic(data: bytes, text: str, declared: str | None, where: str, repairs: list[str]) -> str:
    """An 8-bit Western charset decodes any bytes: make sure they are not Cyrillic in disguise."""
    high = len(data) - len(data.translate(None, _HIGH_BYTES))
    if high * 4 < len(data):  # French, Spanish, German: a few accented letters among ASCII ones
        return text
    own = _plausibility(text)
    for label, other, errors in _GUESSES[:2]:
        candidate = data.decode(other, errors)
        if _plausibility(candidate) > max(own, 0) + 10:
            repairs.append(f"{where}: declared charset {declared!r} looks wrong; read as {label}")
            return candidate
    return text


_SURROGATE_RUN = re.compile("[\udc80-\udcff]+")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([qQbB])\?([^?\s]*)\?=")
_ENCODED_RUN = re.compile(r"=\?[^?\s]+\?[qQbB]\?[^?\s]*\?=(?:\s+=\?[^?\s]+\?[qQbB]\?[^?\s]*\?=)*")
_C1_BYTES = bytes(range(0x80, 0xA0))
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")


def _repair_header(value: str, label: str, repairs: list[str]) -> str:
    """Undo what the email package would otherwise turn into U+FFFD: raw 8-bit bytes in a header and
    encoded words whose charset is unknown or lying. Returns the header value to give the policy."""
    if _SURROGATE_RUN.search(value):
        runs = [_raw(m) for m in _SURROGATE_RUN.findall(value)]
        _, guessed, codec = _guess(b" ".join(runs))
        value = _SURROGATE_RUN.sub(lambda m: _raw(m.group()).decode(codec, "replace"), value)
        if guessed != "utf-8":  # raw UTF-8 is allowed (RFC 6532); anything else is a guess
            repairs.append(f"header {label}: unencoded 8-bit text; read as {guessed}")
    if "=?" in value:
        value = _ENCODED_RUN.sub(lambda m: _repair_words(m.group(), label, repairs), value)
    return value


def _word_bytes(encoding: str, payload: str) -> bytes:
    if encoding in "bB":
        return base64.b64decode(_NOT_BASE64.sub(b"", payload.encode("ascii")) + b"==")
    return binascii.a2b_qp(payload.encode("ascii"), header=True)


def _reads_right(charset: str, data: bytes) -> bool:
    """Would the email package decode this encoded word as its sender meant?"""
    codec = _codec(charset)
    if codec is None:
        return False
    try:
        data.decode(codec)
    except ValueError:  # UnicodeDecodeError, or whatever an exotic codec raises
        return False
    # Words labelled ISO-8859-1 carry windows-1252 quotes and dashes, which ISO-8859-1 reads as controls.
    return codec != "cp1252" or charset in ("windows-1252", "cp1252") or data.translate(None, _C1_BYTES) == data


def _repair_words(run: str, label: str, repairs: list[str]) -> str:
    """A run of adjacent encoded words: unchanged when the email package reads it right, else rewritten
    as one UTF-8 word (a character split between two words, an unknown or lying charset, ISO-8859-1
    that is windows-1252)."""
    words: list[tuple[str, bytes]] = []
    try:
        for charset, encoding, payload in _ENCODED_WORD.findall(run):
            words.append((charset.split("*", 1)[0].lower(), _word_bytes(encoding, payload)))
    except (ValueError, binascii.Error):  # not ours to fix: the email package notes the defect
        return run
    if all(_reads_right(charset, data) for charset, data in words):
        return run
    groups: list[tuple[str, bytes]] = []  # consecutive words of one charset joined: they may split a character
    for charset, data in words:
        if groups and groups[-1][0] == charset:
            groups[-1] = (charset, groups[-1][1] + data)
        else:
            groups.append((charset, data))
    texts: list[str] = []
    for charset, data in groups:
        codec = _codec(charset)
        if codec is not None:
            try:
                texts.append(data.decode(codec))
                continue
            except ValueError:  # UnicodeDecodeError, or whatever an exotic codec raises
                reason = f"declared charset {charset!r} did not decode"
        else:
            reason = f"unknown charset {charset!r}"
        text, guessed, _ = _guess(data)
        repairs.append(f"header {label}: {reason}; read as {guessed}")
        texts.append(text)
    return "=?utf-8?b?" + base64.b64encode("".join(texts).encode("utf-8")).decode("ascii") + "?="


def _raw(escaped: str) -> bytes:
    """The bytes the parser kept as surrogates (it reads headers as ASCII with surrogateescape)."""
    return escaped.encode("ascii", "surrogateescape")


def _ascii_clean(value: str) -> str:
    """For identifiers: no surrogates (undecodable bytes), no control characters."""
    if value.isprintable():
        return value
    if _SURROGATE_RUN.search(value):
        value = _SURROGATE_RUN.sub(lambda m: _raw(m.group()).decode("utf-8", "replace"), value)
    return _CONTROL.sub("", value)


def _one_line(value: str) -> str:
    return " ".join(_ascii_clean(value).split())


# ---------------------------------------------------------------------------------------------------
# The MIME tree

_BODY_SUBTYPES = frozenset({"plain", "html", "enriched"})
_DEFECT_TEXT = {
    "MissingHeaderBodySeparatorDefect": "no blank line between the headers and the body",
    "InvalidBase64LengthDefect": "base64 data of impossible length",
    "InvalidBase64PaddingDefect": "base64 padding missing",
    "InvalidBase64CharactersDefect": "invalid characters in base64 data",
    "StartBoundaryNotFoundDefect": "MIME boundary never found",
    "CloseBoundaryNotFoundDefect": "MIME closing boundary missing",
    "NoBoundaryInMultipartDefect": "multipart without boundary",
}
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _defect_text(defect: object) -> str:
    name = type(defect).__name__
    if name in _DEFECT_TEXT:
        return _DEFECT_TEXT[name]
    return _CAMEL.sub(" ", name.removesuffix("Defect")).lower()


class _Body:
    """Walks the MIME tree once, collecting the texts a delegate reads and the attachments."""

    def __init__(self, repairs: list[str]) -> None:
        self.repairs = repairs
        self.texts: list[str] = []
        self.attachments: list[Attachment] = []
        self.leaves = 0

    def _defects(self, part: Message, where: str) -> None:
        for defect in getattr(part, "defects", ()):
            self.repairs.append(f"{where}: {_defect_text(defect)}")

    def walk(self, part: Message, depth: int) -> None:
        if depth > _MAX_DEPTH:
            self.repairs.append(f"MIME parts nested deeper than {_MAX_DEPTH} levels ignored")
            return
        info = _Mime(part)
        if part.is_multipart():
            self._defects(part, "message" if depth == 0 else f"{info.ctype} part")
            children = _messages(part.get_payload())
            if info.maintype == "message":
                self._message_part(part, info)
            elif info.subtype == "alternative":
                self._alternative(children, depth)
            else:
                for child in children:
                    self.walk(child, depth + 1)
            return
        self._leaf(part, info, root=depth == 0)

    def _leaf(self, part: Message, info: _Mime, *, root: bool = False) -> str:
        """Read a single part: its text appended to the body, or listed as an attachment. Returns the text."""
        self.leaves += 1
        where = f"body part {self.leaves}"
        text = ""
        if info.maintype == "multipart":  # declared multipart, but the parser found no parts
            self.repairs.append(f"{where}: {info.ctype} without parts; read as text")
            info.maintype, info.subtype = "text", "plain"
        if info.is_body_text():
            text = self._text(part, info, where)
            self.texts.append(text)
        else:
            data = _payload(part, where, self.repairs)
            self.attachments.append(Attachment(_filename(part, self.leaves), info.ctype, len(data)))
        self._defects(part, "message" if root else where)
        return text

    def _alternative(self, children: list[Message], depth: int) -> None:
        """The text/plain alternative when it says something, else the richest other one that does."""
        if depth + 1 > _MAX_DEPTH:
            self.repairs.append(f"MIME parts nested deeper than {_MAX_DEPTH} levels ignored")
            return
        infos = [(child, _Mime(child)) for child in children]
        others: list[Message] = []
        for child, info in infos:
            if child.is_multipart() or info.subtype not in ("plain", "enriched") or not info.is_body_text():
                others.append(child)
                continue
            before = len(self.texts)
            if self._leaf(child, info).strip():
                return
            del self.texts[before:]
        for child in reversed(others):
            before = len(self.texts)
            self.walk(child, depth + 1)
            if any(t.strip() for t in self.texts[before:]):
                return

    def _message_part(self, part: Message, info: _Mime) -> None:
        """A forwarded message or a delivery report: listed as an attachment, never read."""
        self.leaves += 1
        inner = _messages(part.get_payload())
        size = 0
        try:
            size = sum(len(m.as_bytes()) for m in inner)
        except Exception:  # a forwarded message that will not serialise still gets listed
            self.repairs.append(f"body part {self.leaves}: size of the attached {info.ctype} unknown")
        name = _filename(part, self.leaves, default="")
        if not name:
            subject = ""
            if inner and info.subtype == "rfc822":
                subject = _subject(next((str(v) for k, v in inner[0].raw_items() if k.lower() == "subject"), None), [])
            name = f"{subject[:80] or 'message'}.eml" if info.subtype in ("rfc822", "global") else f"part-{self.leaves}"
        self.attachments.append(Attachment(name, info.ctype, size))

    def _text(self, part: Message, info: _Mime, where: str) -> str:
        data = _payload(part, where, self.repairs)
        text = _decode(data, info.charset(), where, self.repairs)
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if info.subtype == "html":
            return _html_to_text(text, where, self.repairs)
        if info.subtype == "enriched":
            return _ENRICHED_TAG.sub("", text).replace("<<", "<")
        if info.params.get("format", "").lower() == "flowed":
            return _unflow(text, info.params.get("delsp", "").lower() == "yes")
        return text


def _messages(children: object) -> list[Message]:
    if not isinstance(children, list):
        return []
    return [c for c in children if isinstance(c, Message)]


_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"?|([^;]*))')
_QUOTED_PAIR = re.compile(r"\\(.)")
_COMMENT = re.compile(r"\([^()]*\)")


def _split_mime_header(value: str) -> tuple[str, dict[str, str]]:
    """'text/plain; charset="koi8-r"' -> ('text/plain', {'charset': 'koi8-r'}): the value and its parameters."""
    head, _, rest = value.partition(";")
    params: dict[str, str] = {}
    if rest:
        for match in _PARAM.finditer(";" + rest):
            quoted, bare = match.group(2), match.group(3)
            if quoted is not None:
                param = _QUOTED_PAIR.sub(r"\1", quoted) if "\\" in quoted else quoted
            else:
                param = bare.strip()
            params.setdefault(match.group(1).lower(), param)
    head = head.strip().lower()
    if "(" in head:
        head = _COMMENT.sub("", head).strip()
    return head, params


class _Mime:
    """A part's Content-Type and Content-Disposition, read once from its raw headers (the header registry
    parses a header anew at every access, and the walk asks several questions of each part)."""

    __slots__ = ("ctype", "disposition", "maintype", "named", "params", "part", "subtype")

    def __init__(self, part: Message) -> None:
        self.part = part
        content_type = disposition = None
        for name, value in part.raw_items():
            key = name.lower()
            if key == "content-type" and content_type is None:
                content_type = str(value)
            elif key == "content-disposition" and disposition is None:
                disposition = str(value)
        ctype, self.params = _split_mime_header(content_type or "")
        if ctype.count("/") != 1 or ctype.startswith("/") or ctype.endswith("/") or " " in ctype:
            ctype = part.get_default_type()
        self.ctype = ctype
        self.maintype, _, self.subtype = ctype.partition("/")
        self.disposition, disposition_params = _split_mime_header(disposition or "")
        self.named = any(value and key.startswith(("filename", "name"))
                         for key, value in (*disposition_params.items(), *self.params.items()))

    def is_body_text(self) -> bool:
        return (self.maintype == "text" and self.subtype in _BODY_SUBTYPES and self.disposition != "attachment"
                and not self.named)

    def charset(self) -> str | None:
        if "charset*" in self.params or "charset*0*" in self.params:  # RFC 2231: let the email package read it
            try:
                return self.part.get_content_charset()
            except Exception:
                return None
        charset = self.params.get("charset", "").strip().lower()
        return charset or None


def _payload(part: Message, where: str, repairs: list[str]) -> bytes:
    """The decoded content; broken base64 read as far as it goes."""
    try:
        data = part.get_payload(decode=True)
    except Exception as exc:
        repairs.append(f"{where}: content could not be decoded ({type(exc).__name__})")
        return b""
    if not isinstance(data, bytes):
        return b""
    if any(isinstance(d, email_errors.InvalidBase64LengthDefect) for d in part.defects):
        # The email package gave up and handed back the encoded text: decode all whole quads.
        cleaned = _NOT_BASE64.sub(b"", data)
        cleaned = cleaned[: len(cleaned) - len(cleaned) % 4]
        try:
            data = base64.b64decode(cleaned)
        except (ValueError, binascii.Error):
            data = b""
        repairs.append(f"{where}: truncated base64; decoded all but the last characters")
    return data


_UNSAFE_FILENAME = re.compile(r"[\x00-\x1f\x7f]")


def _filename(part: Message, index: int, default: str | None = None) -> str:
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if name:
        name = _one_line(_UNSAFE_FILENAME.sub(" ", str(name)))
        name = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if name:
        return name
    return f"part-{index}" if default is None else default


# ---------------------------------------------------------------------------------------------------
# HTML to text

_SKIP_TAGS = frozenset({"script", "style", "head", "title", "template", "noscript", "object", "applet", "iframe",
                        "svg", "math", "select", "button", "textarea", "xmp"})
_PARAGRAPH_TAGS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "ul", "ol", "dl",
                             "hr", "address", "figure", "section", "article", "header", "footer", "aside", "nav",
                             "main", "form", "fieldset"})
_LINE_TAGS = frozenset({"div", "li", "tr", "dt", "dd", "caption", "center", "option", "legend", "summary",
                        "details", "figcaption", "body"})
_CELL_TAGS = frozenset({"td", "th"})


class _HtmlText:
    """The text of an HTML body as a reader sees it: no scripts, styles or images; links as their text;
    block elements on lines of their own; replies quoted by Gmail or Thunderbird left out.

    A tokenizer of its own (one regex) rather than html.parser: mail HTML only needs tags told from text,
    and html.parser costs more than parsing the whole message."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self._pending = 0  # line breaks owed before the next text
        self._separator = ""  # a space or a tab owed before the next text
        self._started = False
        self._skip_tag = ""
        self._skip_depth = 0
        self._pre = 0
        self._lists: list[list[int]] = []  # [ordered, counter] per open list
        self._cells = 0

    def feed(self, html: str) -> None:
        # Linear whatever the input: each '<' is looked at once, and the '>' that may close it is found
        # once for all the '<' before it.
        position, end, close = 0, len(html), -1
        while position < end:
            lt = html.find("<", position)
            if lt < 0:
                self._text(html[position:])
                return
            if lt > position:
                self._text(html[position:lt])
            if html.startswith("<!--", lt):
                comment_end = html.find("-->", lt + 4)
                position = end if comment_end < 0 else comment_end + 3
                continue
            if close <= lt:
                close = html.find(">", lt + 1)
                if close < 0:
                    self._text(html[lt:])
                    return
            match = _HTML_TAG.match(html, lt, close + 1)
            if match is None:  # '<' that opens no tag: text
                self._text("<")
                position = lt + 1
                continue
            position = close + 1
            tag = match.group(2)
            if tag is None:  # a doctype, marked section or processing instruction
                continue
            tag = tag.lower()
            if match.group(1):
                self.handle_endtag(tag)
                continue
            attributes = match.group(3)
            self.handle_starttag(tag, _attributes(attributes) if tag == "blockquote" else [])
            if attributes.endswith("/"):
                self.handle_endtag(tag)
            elif tag in _RAW_TEXT_TAGS:  # script, style: their content is not markup; skip to the end tag
                closing = _RAW_TEXT_END[tag].search(html, position)
                position = closing.end() if closing else end
                self.handle_endtag(tag)

    def _text(self, data: str) -> None:
        if "&" in data:
            data = unescape(data)
        self.handle_data(data)

    def _break(self, lines: int) -> None:
        self._pending = max(self._pending, lines)

    def _emit(self, text: str) -> None:
        if self._started:
            if self._pending:
                self.out.append("\n" * self._pending)
            elif self._separator:
                self.out.append(self._separator)
        self._pending = 0
        self._separator = ""
        self._started = True
        self.out.append(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip_depth:
            if tag == self._skip_tag:
                self._skip_depth += 1
            elif tag == "body" and self._skip_tag == "head":  # an unclosed <head>
                self._skip_depth = 0
            return
        if tag in _SKIP_TAGS or (tag == "blockquote" and _is_cited(attrs)):
            self._skip_tag, self._skip_depth = tag, 1
            return
        if tag == "br":
            if self._started:
                self._pending = min(self._pending + 1, 2)
        elif tag in _PARAGRAPH_TAGS:
            self._break(2)
            if tag in ("ul", "ol"):
                self._lists.append([tag == "ol", 0])
            elif tag == "pre":
                self._pre += 1
        elif tag in _LINE_TAGS:
            self._break(1)
            if tag == "tr":
                self._cells = 0
            elif tag == "li":
                if self._lists and self._lists[-1][0]:
                    self._lists[-1][1] += 1
                    self._emit(f"{self._lists[-1][1]}. ")
                else:
                    self._emit("- ")
        elif tag in _CELL_TAGS:
            if self._cells and not self._pending:
                self._separator = "\t"
            self._cells += 1

    def handle_endtag(self, tag: str) -> None:
        if self._skip_depth:
            if tag == self._skip_tag:
                self._skip_depth -= 1
            return
        if tag in _PARAGRAPH_TAGS:
            self._break(2)
            if tag in ("ul", "ol") and self._lists:
                self._lists.pop()
            elif tag == "pre" and self._pre:
                self._pre -= 1
        elif tag in _LINE_TAGS:
            self._break(1)

    def handle_data(self, data: str) -> None:
        if self._skip_depth or not data:
            return
        if self._pre:
            self._emit(data)
            return
        words = " ".join(data.split())
        if not words:
            if self._started and not self._pending:
                self._separator = self._separator or " "
            return
        if data[0].isspace() and not self._separator:
            self._separator = " "
        self._emit(words)
        if data[-1].isspace():
            self._separator = " "


_HTML_TAG = re.compile(r"<(?:(/?)([A-Za-z][A-Za-z0-9:-]*)([^>]*)|[!?][^>]*)>")  # matched up to the next '>'
_RAW_TEXT_TAGS = frozenset({"script", "style", "title", "textarea", "xmp"})
_RAW_TEXT_END = {tag: re.compile(rf"</{tag}\s*>", re.I) for tag in _RAW_TEXT_TAGS}
_ATTRIBUTE = re.compile(r"""([^\s=/>"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?""")


def _attributes(text: str) -> list[tuple[str, str | None]]:
    return [(m.group(1).lower(), m.group(2) if m.group(2) is not None else m.group(3) if m.group(3) is not None
             else m.group(4)) for m in _ATTRIBUTE.finditer(text)]


def _is_cited(attrs: Iterable[tuple[str, str | None]]) -> bool:
    for name, value in attrs:
        value = (value or "").lower()
        if (name == "type" and value == "cite") or (name == "class" and ("gmail_quote" in value
                                                                          or "yahoo_quoted" in value)):
            return True
    return False


_SCRIPT_OR_STYLE = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.I | re.S)
_TAG = re.compile(r"<[^>]*>")
_ENRICHED_TAG = re.compile(r"</?[A-Za-z0-9-]{1,40}>")


def _html_to_text(html: str, where: str, repairs: list[str]) -> str:
    parser = _HtmlText()
    try:
        parser.feed(html)
        text = "".join(parser.out)
    except Exception as exc:  # not expected; the message is still worth its text
        repairs.append(f"{where}: HTML could not be read ({type(exc).__name__}); tags removed")
        text = unescape(_TAG.sub(" ", _SCRIPT_OR_STYLE.sub(" ", html)))
    return "\n".join(line.strip() for line in text.split("\n"))


# ---------------------------------------------------------------------------------------------------
# Plain text: format=flowed, whitespace, footer, quoted replies


def _unflow(text: str, delsp: bool) -> str:
    """Join the soft line breaks of RFC 3676 format=flowed text."""
    out: list[str] = []
    held: str | None = None
    held_depth = 0

    def put(depth: int, body: str) -> None:
        out.append(">" * depth + " " + body if depth else body)

    for line in text.split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        body = line[depth:]
        if body.startswith(" "):  # space-stuffed
            body = body[1:]
        soft = body.endswith(" ") and body != "-- "
        if soft and delsp:
            body = body[:-1]
        if held is not None:
            if depth == held_depth:
                body = held + body
            else:
                put(held_depth, held)
            held = None
        if soft:
            held, held_depth = body, depth
        else:
            put(depth, body)
    if held is not None:
        put(held_depth, held)
    return "\n".join(out)


_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\udc80-\udcff]")
_UNICODE_SPACE = re.compile("[\xa0\u1680\u2000-\u200a\u202f\u205f\u3000]")
_INNER_SPACE = re.compile(r"(?<=\S)(?:[ \t]{2,}|\t)(?=\S)")
_TRAILING_SPACE = re.compile(r"[ \t]+$", re.M)
_BLANK_RUN = re.compile(r"\n{3,}")


def _clean_text(text: str, *, forwarded: bool) -> str:
    if not text:
        return ""
    # Each substitution only when a cheap test says it has something to do: this runs on every message.
    text = _CONTROL.sub("", text)
    if not text.isascii():
        text = _UNICODE_SPACE.sub(" ", text)
    if "  " in text or "\t" in text:
        text = _INNER_SPACE.sub(" ", text)
    if " \n" in text or "\t\n" in text or text.endswith((" ", "\t")):
        text = _TRAILING_SPACE.sub("", text)
    text = _strip_footer(text)
    text = _strip_replies(text, forwarded=forwarded)
    if "\n\n\n" in text:
        text = _BLANK_RUN.sub("\n\n", text)
    return text.strip("\n")


_UNDERSCORE_LINE = re.compile(r"_{20,}")
_FOOTER_LINE = re.compile(
    r"mailing list|listinfo|mailman|unsubscribe|@lists?\.|-(?:leave|request|unsubscribe|owner)@|list info"
    r"|liste de diffusion|lista de correo|рассылк|отписат|désinscri|désabonn|darse de baja", re.I)
_FOOTER_SCAN_LINES = 16


def _strip_footer(text: str) -> str:
    """Cut Mailman footers (an underscore rule followed by the list's name and addresses) off the end."""
    for _ in range(3):  # a message relayed through more than one list has more than one
        if "____" not in text:
            return text
        head, *tail = text.rsplit("\n", _FOOTER_SCAN_LINES)
        lines = [head, *tail]
        for i in range(len(lines) - 1, -1, -1):
            rule = _UNDERSCORE_LINE.fullmatch(lines[i].strip())
            if rule and any(_FOOTER_LINE.search(line) for line in lines[i + 1:]):
                text = "\n".join(lines[:i]).rstrip()
                break
        else:
            return text
    return text


# Substrings without which a text has no quoted reply to strip (testing them is much faster than any regex).
_REPLY_HINTS = (">", "---", "____", "rote", "crit", "cribi", "пишет", "написал", "schrieb", "ent:", "nvoy", "nviado",
                "тправлено", "esendet")
_ATTRIBUTION = re.compile(
    r"(?:on\s.{0,300}\swrote"
    r"|le\s.{0,300}\sa\s+écrit"
    r"|el\s.{0,300}\sescribió"
    r"|am\s.{0,300}\sschrieb.{0,80}"
    r"|.{0,300}\s(?:пишет|написала?|написал\(а\)))"
    r"\s*:$", re.I | re.S)
_ATTRIBUTION_START = re.compile(r"(?:on|le|el|am)\s", re.I)
_ORIGINAL_MESSAGE = re.compile(
    r"-{3,}\s*(?:original message|исходное сообщение|оригинальное сообщение|message d'origine|mensaje original"
    r"|ursprüngliche nachricht)\s*-{3,}", re.I)
_OUTLOOK_FROM = re.compile(r"\*?(?:from|de|от|von)\s*:", re.I)
_OUTLOOK_SENT = re.compile(r"\*?(?:sent|envoyé|enviado(?: el)?|отправлено|gesendet)\s*:", re.I)


def _is_quote(line: str) -> bool:
    return line.lstrip().startswith(">")


def _has_text(lines: Iterable[str]) -> bool:
    return any(line.strip() for line in lines)


def _reply_header_at(lines: list[str], i: int) -> bool:
    """Does an Outlook-style quoted-message header start at line i?"""
    line = lines[i].strip()
    if _ORIGINAL_MESSAGE.fullmatch(line):
        return True
    following = [lines[j].strip() for j in range(i + 1, min(i + 3, len(lines)))]
    if _UNDERSCORE_LINE.fullmatch(line) or (len(line) >= 10 and set(line) == {"_"}):
        return bool(following) and bool(_OUTLOOK_FROM.match(following[0]))
    return bool(_OUTLOOK_FROM.match(line)) and any(_OUTLOOK_SENT.match(f) for f in following)


def _strip_replies(text: str, *, forwarded: bool) -> str:
    """Drop the quoted message at the bottom of a reply: '>' lines with their 'On …, X wrote:' line, or all
    that follows an '-----Original Message-----' header. A message that is nothing but quotes is kept."""
    if not any(hint in text for hint in _REPLY_HINTS):
        return text
    lines = text.split("\n")
    if not forwarded:
        for i, line in enumerate(lines):
            if line and (line[0] in "-_*" or line[0].isalpha()) and _reply_header_at(lines, i):
                if _has_text(above for above in lines[:i] if not _is_quote(above)):
                    lines = lines[:i]
                break
    kept: list[str] = []
    count = len(lines)
    i = 0
    while i < count:
        line = lines[i]
        if _is_quote(line):
            i += 1
            continue
        span = 0
        if line.endswith(":"):
            if _ATTRIBUTION.match(line):
                span = 1
        elif (i + 1 < count and lines[i + 1].endswith(":") and _ATTRIBUTION_START.match(line)
              and _ATTRIBUTION.match(line + " " + lines[i + 1])):
            span = 2
        if span:
            j = i + span
            while j < count and not lines[j].strip():
                j += 1
            if j >= count or _is_quote(lines[j]):
                i += span
                continue
        kept.append(line)
        i += 1
    if not _has_text(kept):
        return text
    return "\n".join(kept)


# ---------------------------------------------------------------------------------------------------
# The first paragraph

_GREETING = re.compile(
    r"(?:dear|hello|hi|hey|good (?:morning|afternoon|evening|day)|greetings|to whom|all,"
    r"|madame|monsieur|mesdames|messieurs|mademoiselle|chers?|chères?|bonjour|bonsoir|salut"
    r"|estimad[oa]s?|señor(?:a|es|as)?|sr\.|sra\.|querid[oa]s?|buen[oa]s (?:días|tardes)|hola|distinguid[oa]s?"
    r"|уважаем|дорог|здравствуй|добрый (?:день|вечер)|доброе утро|коллеги|господ|госпож)\b",
    re.I)
_CLOSING_PUNCTUATION = (",", "!", ":", ";")


def _is_greeting(paragraph: str) -> bool:
    lines = paragraph.split("\n")
    if len(lines) > 3:
        return False
    for line in lines:
        line = line.strip()
        words = len(line.split())
        if len(line) > 80:
            return False
        closes = line.endswith(_CLOSING_PUNCTUATION)
        if _GREETING.match(line):
            if not (closes or words <= 4):
                return False
        elif not (line.endswith(",") and words <= 5):
            return False
    return True


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-–—") + "…"


def _first_paragraph(text: str) -> str:
    for paragraph in text.split("\n\n"):
        if not paragraph.strip() or _is_greeting(paragraph):
            continue
        return _shorten(" ".join(paragraph.split()), FIRST_PARAGRAPH_MAX)
    return ""
