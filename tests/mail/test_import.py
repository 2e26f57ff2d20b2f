"""`run.py import-mail`: mbox files and Maildir directories, streamed into a meeting's archive."""

from __future__ import annotations

import mailbox
import subprocess
import sys
from pathlib import Path

import pytest

from floorbridge.adapters.mail.archive_import import import_mail, mbox_messages
from floorbridge.core.announcements import MailStatus, RelayState
from floorbridge.core.errors import InvalidInput

from .conftest import ROOT, WSIS, MailWorld, letter

BODY = "Dear colleagues,\n\nFrom the secretariat: registration closes no later than 15 June 2025.\n"


def _mbox(path: Path, messages: list[bytes]) -> Path:
    box = mailbox.mbox(path)
    for raw in messages:
        box.add(raw)
    box.flush()
    box.close()
    return path


def test_the_streaming_reader_splits_like_the_standard_library_and_unquotes_from_lines(tmp_path: Path) -> None:
    messages = [letter(BODY, message_id=f"<m{n}@itu.int>") for n in range(5)]
    path = _mbox(tmp_path / "list.mbox", messages)
    assert b"\n>From the secretariat" in path.read_bytes()  # mailbox quoted the body's "From " line
    ours = list(mbox_messages(path))
    theirs = [box.get_bytes(key) for box in [mailbox.mbox(path)] for key in box.iterkeys()]
    assert len(ours) == len(theirs) == 5
    assert ours == [std.replace(b"\n>From ", b"\nFrom ") for std in theirs]


def test_a_message_over_the_cap_is_not_held_whole_and_the_next_ones_come_as_they_are(tmp_path: Path) -> None:
    huge_body = BODY + "\n" + ("x" * 99 + "\n") * 40_000  # 4 MB: over a 100 kB cap, across several blocks
    messages = [letter(BODY, message_id="<a@itu.int>"), letter(huge_body, message_id="<b@itu.int>"),
                letter(BODY, message_id="<c@itu.int>")]
    path = _mbox(tmp_path / "list.mbox", messages)
    ours = list(mbox_messages(path, max_bytes=100_000))
    whole = list(mbox_messages(path))
    assert len(ours) == len(whole) == 3
    assert ours[0] == whole[0] and ours[2] == whole[2]
    assert 100_000 < len(ours[1]) <= 101_024 < len(whole[1])  # its start only, enough to be refused
    assert whole[1].startswith(ours[1])


async def test_an_mbox_is_archived_without_relaying_and_bad_messages_quarantined(world: MailWorld,
                                                                                 tmp_path: Path) -> None:
    good = [letter(BODY, message_id=f"<a{n}@itu.int>") for n in range(7)]
    spam = letter(BODY, list_id="spam.example.org", message_id="<spam@x.org>")
    path = _mbox(tmp_path / "archive.mbox", [*good, spam, good[0]])
    report = await import_mail(world.intake, WSIS, path, batch=3)
    assert (report.messages, report.archived, report.quarantined, report.copies) == (9, 7, 1, 1)
    assert "List-Id 'spam.example.org' is not one of the meeting's lists (wsis-announce.lists.itu.int, " \
           "wsis-discuss.lists.itu.int)" in report.reasons
    archived = await world.intake.store.listing(WSIS, archived=True)
    assert len(archived) == 7 and all(m.channel == "import" and m.relay is RelayState.NONE for m in archived)
    assert not [i for i, _, _ in await world.svc.outbox.rows() if i.outgoing.cause.startswith("announcement")]
    again = await import_mail(world.intake, WSIS, path)
    assert (again.archived, again.copies) == (0, 9)  # importing twice stores nothing twice


async def test_a_maildir_is_imported(world: MailWorld, tmp_path: Path) -> None:
    box = mailbox.Maildir(tmp_path / "Maildir", create=True)
    for n in range(3):
        box.add(letter(BODY, message_id=f"<md{n}@itu.int>"))
    box.close()
    report = await import_mail(world.intake, WSIS, tmp_path / "Maildir")
    assert report.archived == 3
    statuses = {m.status for m in await world.intake.store.listing(WSIS, archived=True)}
    assert statuses == {MailStatus.ACCEPTED}


async def test_what_is_not_an_archive_is_refused_with_the_reason(world: MailWorld, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello\n")
    with pytest.raises(InvalidInput, match="is not an mbox file"):
        await import_mail(world.intake, WSIS, tmp_path / "notes.txt")
    (tmp_path / "dir").mkdir()
    with pytest.raises(InvalidInput, match="not a Maildir"):
        await import_mail(world.intake, WSIS, tmp_path / "dir")
    with pytest.raises(InvalidInput, match="no such file"):
        await import_mail(world.intake, WSIS, tmp_path / "missing.mbox")
    with pytest.raises(InvalidInput, match="there is no meeting 'nope'"):
        await import_mail(world.intake, WSIS.__class__("nope"), tmp_path / "notes.txt")
    assert await world.intake.store.count() == 0


def test_the_command_line(tmp_path: Path) -> None:
    path = _mbox(tmp_path / "a.mbox", [letter(BODY, list_id=None, message_id=f"<c{n}@itu.int>") for n in range(2)])
    config = tmp_path / "fb.yaml"
    config.write_text(f"database:\n  url: sqlite+aiosqlite:///{tmp_path}/cli.db\n")
    run = [sys.executable, str(ROOT / "run.py"), "--config", str(config)]
    seeded = subprocess.run([*run, "import-agenda", "fg-dlt-1", "config/meetings/fg-dlt-1.yaml", "--publish"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert seeded.returncode == 0, seeded.stderr
    done = subprocess.run([*run, "import-mail", "fg-dlt-1", str(path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "2 message(s): 2 archived, 0 quarantined, 0 already received" in done.stdout
    wrong = subprocess.run([*run, "import-mail", "fg-dlt-1", str(tmp_path / "nope.mbox")], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert wrong.returncode == 2 and "no such file or directory" in wrong.stderr


async def test_copies_and_reused_message_ids_inside_one_batch(world: MailWorld, tmp_path: Path) -> None:
    first = letter(BODY, message_id="<same@itu.int>")
    other = letter(BODY + "\nA corrected version.\n", message_id="<same@itu.int>")
    path = _mbox(tmp_path / "dups.mbox", [first, first, other, first])
    report = await import_mail(world.intake, WSIS, path)  # one batch
    assert (report.messages, report.archived, report.quarantined, report.copies) == (4, 1, 1, 2)
    [archived] = await world.intake.store.listing(WSIS, archived=True)
    assert archived.copies == 3
    [held] = await world.intake.store.listing(WSIS, archived=False)
    assert held.reason.startswith("duplicate: an earlier message received with this one has the same")
