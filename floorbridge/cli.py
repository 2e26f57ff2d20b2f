"""Command line: `python run.py --help`."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from floorbridge.adapters.logs import configure_logging
from floorbridge.adapters.mail.archive_import import import_mail
from floorbridge.adapters.settings import Settings, describe, load_settings
from floorbridge.adapters.storage import upgrade
from floorbridge.app import Services, WorkerLink, serve, services
from floorbridge.core import codec
from floorbridge.core.chats import Role
from floorbridge.core.errors import FloorbridgeError, InvalidInput, NothingToPublish, Problem
from floorbridge.core.ids import MeetingId

DEFAULT_CONFIG = "config/floorbridge.yaml"
PASSWORD_ENV = "FLOORBRIDGE_NEW_PASSWORD"  # noqa: S105 (the variable's name, not a password)
USERNAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")


def _config_path(arg: str | None) -> Path | None:
    chosen = arg or os.environ.get("FLOORBRIDGE_CONFIG")
    if chosen:
        return Path(chosen)
    return Path(DEFAULT_CONFIG) if Path(DEFAULT_CONFIG).exists() else None


def _settings(args: argparse.Namespace) -> Settings:
    path = _config_path(args.config)
    if path is None:
        return load_settings(Path(os.devnull))
    if not path.exists():
        raise InvalidInput([], source=f"{path}: no such configuration file")
    return load_settings(path)


def _secrets(settings: Settings) -> list[str]:
    return [s for s in settings.secret_values() if s]


async def _with_services(settings: Settings, job: Callable[[Services], Awaitable[int]]) -> int:
    async with services(settings) as svc:
        return await job(svc)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    link = None
    if args.link is not None or args.parent_pid is not None:
        if args.link is None or args.parent_pid is None or args.role != "worker":
            raise InvalidInput([Problem("--link", "is for the chat worker a web process starts: --role worker "
                                                  "--link DIR --parent-pid PID")], source="serve")
        link = WorkerLink(Path(args.link), args.parent_pid)
    asyncio.run(serve(settings, seed=not args.no_seed, role=args.role, config=_config_path(args.config),
                      link=link))
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    asyncio.run(upgrade(settings.database_url()))
    print("database is at the latest schema")
    return 0


def cmd_check_config(args: argparse.Namespace, settings: Settings) -> int:
    checked = load_settings(Path(args.file))
    print(f"{args.file}: OK")
    print(describe(checked))
    return 0


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    async def job(svc: Services) -> int:
        imported = await svc.import_file(MeetingId(args.meeting), Path(args.file))
        print(f"{args.file}: imported {len(imported.sessions)} session(s) into the working copy of {args.meeting}")
        for w in imported.warnings:
            print(f"warning: {w}", file=sys.stderr)
        if args.publish:
            version = await svc.publish(MeetingId(args.meeting), args.comment or "")
            print(f"published version {version.number} with {len(version.changes)} change(s)")
        return 0

    return asyncio.run(_with_services(settings, job))


def cmd_import_mail(args: argparse.Namespace, settings: Settings) -> int:
    async def job(svc: Services) -> int:
        report = await import_mail(svc.mail, MeetingId(args.meeting), Path(args.path))
        for line in report.lines():
            print(line)
        return 0

    return asyncio.run(_with_services(settings, job))


def _print_changes(version_number: int, changes: dict[str, object]) -> None:
    print(json.dumps(changes, indent=2, ensure_ascii=False))


def cmd_publish(args: argparse.Namespace, settings: Settings) -> int:
    async def job(svc: Services) -> int:
        try:
            version = await svc.publish(MeetingId(args.meeting), args.comment or "")
        except NothingToPublish as e:
            print(str(e), file=sys.stderr)
            return 1
        print(f"published version {version.number} of {args.meeting} with {len(version.changes)} change(s)")
        for c in version.changes:
            print(f"  {c.kind.value:<20} {c.subject}: {c.title}")
        return 0

    return asyncio.run(_with_services(settings, job))


def cmd_changelog(args: argparse.Namespace, settings: Settings) -> int:
    async def job(svc: Services) -> int:
        meeting = MeetingId(args.meeting)
        if args.version is None:
            version = await svc.store.latest_version(meeting)
            if version is None:
                print(f"meeting {meeting} has no published version", file=sys.stderr)
                return 1
        else:
            version = await svc.store.get_version(meeting, args.version)
        _print_changes(version.number, codec.changeset_to_dict(version.changes))
        return 0

    return asyncio.run(_with_services(settings, job))


def _new_password() -> str | None:
    """From $FLOORBRIDGE_NEW_PASSWORD, else typed twice at a terminal; never from the command line."""
    password = os.environ.get(PASSWORD_ENV)
    if password is not None:
        return password
    if not sys.stdin.isatty():
        print(f"error: set {PASSWORD_ENV} or run this in a terminal to type the password", file=sys.stderr)
        return None
    password = getpass.getpass("Password (at least 12 characters): ")
    if getpass.getpass("The same password again: ") != password:
        print("error: the two passwords differ", file=sys.stderr)
        return None
    return password


def cmd_add_account(args: argparse.Namespace, settings: Settings) -> int:
    if not USERNAME.match(args.username):
        print("error: a username has 1 to 64 letters, digits or . _ @ -", file=sys.stderr)
        return 2
    password = _new_password()
    if password is None:
        return 2

    async def job(svc: Services) -> int:
        meeting = MeetingId(args.meeting)
        await svc.store.get_meeting(meeting)  # a typo in the meeting id fails here (NotFound)
        existing = await svc.console.store.account(args.username)
        roles = {**(existing.roles if existing else {}), meeting: Role(args.role)}
        name = args.name or (existing.display_name if existing else "")
        try:
            await svc.console.add_account(args.username, password, roles, name)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        listed = ", ".join(f"{r.value} of {m}" for m, r in sorted(roles.items()))
        print(f"{'updated' if existing else 'created'} console account {args.username}: {listed}")
        return 0

    return asyncio.run(_with_services(settings, job))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="run.py", description="floorbridge: meetings into chats and calendars")
    p.add_argument("--config", help=f"configuration file (default: $FLOORBRIDGE_CONFIG, else {DEFAULT_CONFIG} "
                                    "if present, else built-in defaults)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("serve", help="run the web server and feeds (migrates and seeds the demo meetings)")
    s.add_argument("--no-seed", action="store_true", help="do not import the configured seed meetings")
    s.add_argument("--role", choices=["all", "web", "worker"], default="all",
                   help="all (default): the web server here and, when a chat platform or mail receiver is enabled, "
                        "the chat worker in a process it starts itself; web: the web server and its lists of "
                        "speakers; worker: the bots, delivery, reminders and mail receivers (web and worker on "
                        "their own need PostgreSQL)")
    # How a web process starts its chat worker (serve --role all); not for people.
    s.add_argument("--link", help=argparse.SUPPRESS)
    s.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("migrate", help="apply database migrations")
    s.set_defaults(func=cmd_migrate)

    s = sub.add_parser("check-config", help="validate a configuration file and print a summary (no secrets)")
    s.add_argument("file")
    s.set_defaults(func=cmd_check_config)

    s = sub.add_parser("import-agenda", help="replace a meeting's working copy with an agenda file "
                                             "(.yaml, .csv, .ics, frab .xml); all or nothing")
    s.add_argument("meeting")
    s.add_argument("file")
    s.add_argument("--publish", action="store_true", help="publish a new version right after importing")
    s.add_argument("--comment", help="comment for the published version")
    s.set_defaults(func=cmd_import)

    s = sub.add_parser("import-mail", help="import a mailing list's archive (mbox file or Maildir) into a "
                                           "meeting's announcements (archived, not relayed)")
    s.add_argument("meeting")
    s.add_argument("path", help="an mbox file or a Maildir directory")
    s.set_defaults(func=cmd_import_mail)

    s = sub.add_parser("publish", help="freeze the working copy as the next numbered version")
    s.add_argument("meeting")
    s.add_argument("--comment", help="what changed and why, shown in the changelog")
    s.set_defaults(func=cmd_publish)

    s = sub.add_parser("changelog", help="print the changes a version made (JSON)")
    s.add_argument("meeting")
    s.add_argument("version", nargs="?", type=int, help="version number (default: the latest)")
    s.set_defaults(func=cmd_changelog)

    s = sub.add_parser("add-account", help=f"create or update a moderator console account (password from "
                                           f"${PASSWORD_ENV}, else asked at the terminal)")
    s.add_argument("username")
    s.add_argument("--meeting", required=True, help="the meeting this account may act in (added to its others)")
    s.add_argument("--role", required=True, choices=[r.value for r in Role])
    s.add_argument("--name", default="", help="the name shown in the console and the audit trail")
    s.set_defaults(func=cmd_add_account)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = (
            load_settings(Path(os.devnull)) if args.command == "check-config" else _settings(args)
        )
        configure_logging(settings.logging.level, settings.logging.format, _secrets(settings))
        code: int = args.func(args, settings)
        return code
    except InvalidInput as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except FloorbridgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
