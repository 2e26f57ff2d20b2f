#!/usr/bin/env python3
"""Mail import benchmark (issue 5).

Writes mbox files of 1,000 and 10,000 realistic list messages (circular letters in UTF-8,
KOI8-R and windows-1251, quoted-printable and base64, some multipart/alternative with HTML, some
with a PDF attachment, replies), then, each in a fresh child process:

- raw:  the standard library alone: `mailbox.mbox` + `email.message_from_bytes(policy.default)`
        and the body as text (get_body().get_content()), for every message of the file;
- ours: `import-mail` into a fresh SQLite database: read, judge by the meeting's rules, find the
        deadlines, store in batches (the whole pipeline, as `run.py import-mail` runs it).

Rounds alternate raw and ours on the 10,000-message file; the ratio is the median of the rounds'
ratios. Peak memory is the child's ru_maxrss for importing each file (streaming: it should not
grow with the file).

Last line: one JSON object {"vs_raw_parse", "msgs_per_s", "peak_rss_mb_1k", "peak_rss_mb_10k"}.

Usage: .venv/bin/python bench/mail.py [--rounds 3] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import email
import json
import mailbox
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# bench/ itself is not a package path: its queue.py would shadow the standard library's queue.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

LETTER_EN = (
    "Dear Sir/Madam,\n\nI am pleased to invite you to the WSIS+20 High-Level Event 2025, Geneva, 7-11 July 2025."
    "\n\nRequests for speaking slots in the high-level segment must be received no later than 30 April 2025. "
    "Registration closes on 15 June 2025; requests for visa support letters should reach us by 1 June 2025.\n\n"
    "{filler}\n\nYours faithfully,\nThe Secretariat\n"
)
LETTER_RU = (
    "Уважаемая госпожа,\nуважаемый господин,\n\nЯ рад сообщить о первом собрании Оперативной группы, "
    "Женева, 17-19 октября 2017 года.\n\nПисьменные вклады следует направлять не позднее 10 октября 2017 года. "
    "Предельный срок регистрации - 10 октября 2017 г.\n\n{filler}\n\nС уважением,\nДиректор Бюро\n"
)
FILLER_EN = ("The event takes stock of the implementation of the WSIS Action Lines and looks at the Global Digital "
             "Compact and the Pact for the Future. ")
FILLER_RU = "Собрание рассмотрит вопросы применения технологии распределенного реестра и стандартизации. "
FOOTER = "\n_______________________________________________\nwsis mailing list\nhttps://lists.itu.int/mailman/listinfo\n"


def make_message(n: int, rng: random.Random) -> bytes:
    msg = EmailMessage()
    russian = n % 3 == 1
    msg["From"] = "ITU Secretariat <tsbmail@itu.int>" if not russian else "Бюро МСЭ-Т <tsbmail@itu.int>"
    msg["To"] = "fg-dlt-1@lists.example.org"
    msg["Subject"] = (f"Circular {n}: WSIS+20 speaking slots" if not russian
                      else f"Циркуляр {n}: собрание ОГ-DLT")
    msg["Date"] = format_datetime(datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=n))
    msg["Message-ID"] = f"<bench-{n}@itu.int>"
    msg["List-Id"] = "FG DLT <fg-dlt.lists.itu.int>"
    if n % 7 == 3:
        msg["In-Reply-To"] = f"<bench-{n - 1}@itu.int>"
        msg["References"] = f"<bench-{n - 1}@itu.int>"
    filler = (FILLER_RU if russian else FILLER_EN) * rng.randint(3, 25)
    text = (LETTER_RU if russian else LETTER_EN).format(filler=filler) + FOOTER
    charset, cte = [("utf-8", "quoted-printable"), ("koi8-r", "base64"), ("windows-1251", "quoted-printable"),
                    ("utf-8", "8bit")][n % 4] if russian else ("utf-8", ["quoted-printable", "7bit"][n % 2])
    if not russian and cte == "7bit":
        cte = "quoted-printable"
    msg.set_content(text, charset=charset, cte=cte)
    if n % 5 == 0:
        paragraphs = "".join(f"<p>{line}</p>" for line in text.split("\n\n"))
        msg.add_alternative(f"<html><body>{paragraphs}</body></html>", subtype="html")
    if n % 11 == 0:
        msg.add_attachment(rng.randbytes(20_000), maintype="application", subtype="pdf", filename=f"CL-{n}.pdf")
    return msg.as_bytes(policy=policy.SMTP)


def write_mbox(path: Path, count: int) -> None:
    rng = random.Random(5)
    with path.open("wb") as f:
        for n in range(count):
            raw = make_message(n, rng).replace(b"\r\n", b"\n")
            f.write(b"From tsbmail@itu.int Wed Jan  1 00:00:00 2025\n")
            for line in raw.splitlines(keepends=True):
                f.write(b">" + line if line.startswith(b"From ") else line)
            f.write(b"\n")


# ---------------------------------------------------------------- the children


def child_raw(path: Path) -> dict[str, float]:
    started = time.perf_counter()
    box = mailbox.mbox(path, create=False)
    count = 0
    for key in box.iterkeys():
        msg = email.message_from_bytes(box.get_bytes(key), policy=policy.default)
        body = msg.get_body(preferencelist=("plain", "html"))  # type: ignore[attr-defined]
        if body is not None:
            body.get_content()
        count += 1
    elapsed = time.perf_counter() - started
    return {"messages": count, "seconds": elapsed, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def child_ours(path: Path, workdir: Path) -> dict[str, float]:
    from floorbridge.adapters.mail.archive_import import import_mail
    from floorbridge.adapters.settings import load_settings
    from floorbridge.app import services
    from floorbridge.core.ids import MeetingId

    config = workdir / "fb.yaml"
    config.write_text(f"database:\n  url: sqlite+aiosqlite:///{workdir}/bench.db\n"
                      "logging:\n  level: WARNING\n"
                      "mail:\n  meetings:\n    fg-dlt-1:\n      lists: [{list_id: fg-dlt.lists.itu.int}]\n"
                      "      senders: ['@itu.int']\n")
    settings = load_settings(config)

    async def run() -> tuple[int, float]:
        async with services(settings) as svc:
            await svc.seed()
            started = time.perf_counter()
            report = await import_mail(svc.mail, MeetingId("fg-dlt-1"), path)
            elapsed = time.perf_counter() - started
            assert report.quarantined == 0, report.lines()
            return report.messages, elapsed

    messages, elapsed = asyncio.run(run())
    return {"messages": messages, "seconds": elapsed,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def in_child(kind: str, path: Path, workdir: Path) -> dict[str, float]:
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(path), str(workdir)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"the {kind} child failed:\n{out.stderr[-3000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--child", nargs=3, metavar=("KIND", "PATH", "WORKDIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, path, workdir = args.child
        result = child_raw(Path(path)) if kind == "raw" else child_ours(Path(path), Path(workdir))
        print(json.dumps(result))
        return

    tmp = Path(tempfile.mkdtemp(prefix="fb-mail-bench-"))
    try:
        small, large = tmp / "1k.mbox", tmp / "10k.mbox"
        started = time.perf_counter()
        write_mbox(small, 1_000)
        write_mbox(large, 10_000)
        print(f"wrote {small.stat().st_size / 1e6:.1f} MB and {large.stat().st_size / 1e6:.1f} MB of mbox "
              f"in {time.perf_counter() - started:.1f} s")
        ratios, rates, raw_rates = [], [], []
        rss_10k = []
        for n in range(args.rounds):
            raw = in_child("raw", large, tmp / "raw")
            ours = in_child("ours", large, tmp / "ours")
            assert ours["messages"] == raw["messages"] == 10_000, (ours, raw)
            raw_rate, our_rate = raw["messages"] / raw["seconds"], ours["messages"] / ours["seconds"]
            ratios.append(our_rate / raw_rate)
            rates.append(our_rate)
            raw_rates.append(raw_rate)
            rss_10k.append(ours["rss_mb"])
            print(f"round {n + 1}: raw parse {raw_rate:,.0f} msg/s, import {our_rate:,.0f} msg/s, "
                  f"ratio {our_rate / raw_rate:.2f}, import peak RSS {ours['rss_mb']:.0f} MB")
        rss_1k = [in_child("ours", small, tmp / "ours-1k")["rss_mb"] for _ in range(args.rounds)]
        print(f"import peak RSS: 1k messages {statistics.median(rss_1k):.0f} MB, "
              f"10k messages {statistics.median(rss_10k):.0f} MB")
        print(json.dumps({
            "vs_raw_parse": round(statistics.median(ratios), 3),
            "msgs_per_s": round(statistics.median(rates), 1),
            "peak_rss_mb_1k": round(statistics.median(rss_1k), 1),
            "peak_rss_mb_10k": round(statistics.median(rss_10k), 1),
        }))
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
