"""A real Dovecot IMAP server for tests.

``Dovecot`` writes a throw-away ``dovecot.conf`` into a temporary directory of its own (``base_dir``,
``state_dir``, the log, the password file and the Maildirs all live there), starts ``dovecot -F -c``
on 127.0.0.1 with plain IMAP on a free port (no TLS, plaintext login allowed) and stops it again::

    with Dovecot() as server:
        user = server.add_user()                  # a fresh, empty INBOX per user (64 are ready at start)
        uid = server.append(user, raw_message)    # APPEND through the standard library's imaplib
        server.flags(user, uid)                   # {"\\Seen", ...}

Everything here is synchronous (subprocess, sockets, imaplib), so a session-scoped fixture can own a
server; an async test that must not block the loop while the server stops or starts calls
``await asyncio.to_thread(server.stop)``. ``stop()`` then ``start()`` runs the same server again on the
same port with the same mailboxes, so a test can restart it under a connected client.

``idle=False`` drops IDLE from the capabilities Dovecot announces (``imap_capability``), for the clients'
polling path. Run as root, Dovecot's own processes use the ``dovecot``/``dovenull`` users of the Debian
package and mail is owned by ``nobody`` (Dovecot refuses mail access as UID 0); otherwise everything runs as
the current user.

The binary is ``$FLOORBRIDGE_DOVECOT``, else ``dovecot`` on PATH, else ``/usr/sbin/dovecot``
(``scripts/test-services.sh`` installs Debian's ``dovecot-imapd``). Without it ``DovecotNotFoundError``
says so.
"""

from __future__ import annotations

import contextlib
import grp
import imaplib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

__all__ = ["Dovecot", "DovecotNotFoundError", "DovecotStartError", "MailUser", "find_dovecot"]

BINARY_ENV = "FLOORBRIDGE_DOVECOT"

# Dovecot 2.3's post-login capabilities without IDLE.
_CAPABILITY_WITHOUT_IDLE = (
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE SORT SORT=DISPLAY THREAD=REFERENCES THREAD=REFS "
    "THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED "
    "I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE "
    "SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY SPECIAL-USE"
)


class DovecotNotFoundError(RuntimeError):
    """No dovecot binary on this machine."""


class DovecotStartError(RuntimeError):
    """Dovecot exited or did not answer in time; the message ends with the log's tail."""


@dataclass(frozen=True)
class MailUser:
    """An account on the test server; each has its own Maildir."""

    username: str
    password: str = field(repr=False)


def find_dovecot() -> str:
    """The dovecot binary to run, or DovecotNotFoundError with what to do about it."""
    candidates = [os.environ.get(BINARY_ENV), shutil.which("dovecot"), "/usr/sbin/dovecot"]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise DovecotNotFoundError(
        "dovecot is not installed: the IMAP tests need a real Dovecot server. Run `bash scripts/test-services.sh` "
        "(it installs Debian's dovecot-imapd; `make test` runs it) or name the binary in $" + BINARY_ENV
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _kill_at_exit(proc: subprocess.Popen[bytes]) -> None:
    """Last resort for a test run that ended without stop(): leave no server behind."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def _remove_tree(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


class Dovecot:
    """A Dovecot master process with its configuration, state, log and mail in one temporary directory."""

    def __init__(
        self,
        *,
        idle: bool = True,
        port: int | None = None,
        start_timeout: float = 15.0,
        stop_timeout: float = 10.0,
        auth_failure_delay: int = 0,
        auth_penalty: bool = False,
        spare_users: int = 64,
        extra_config: str = "",
    ) -> None:
        self.binary = find_dovecot()
        self.idle = idle
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.auth_failure_delay = auth_failure_delay
        self.auth_penalty = auth_penalty
        self.extra_config = extra_config
        self._port = port
        # Not under pytest's tmp_path: that is private to the user running pytest (0700), and as root the
        # mail processes run as another user that must reach its Maildir.
        self.root = Path(tempfile.mkdtemp(prefix="floorbridge-dovecot-"))
        self._cleanup = weakref.finalize(self, _remove_tree, str(self.root))
        self._proc: subprocess.Popen[bytes] | None = None
        self._proc_finalizer: weakref.finalize[Any, Any] | None = None
        self._users: dict[str, str] = {}
        self._counter = 0
        self._passwd_stamp = 0
        if os.geteuid() == 0:
            self.internal_user, self.login_user, self.internal_group = "dovecot", "dovenull", "dovecot"
            mail = pwd.getpwnam("nobody")
            self.mail_uid, self.mail_gid = mail.pw_uid, mail.pw_gid
        else:
            me = pwd.getpwuid(os.geteuid()).pw_name
            self.internal_user = self.login_user = me
            self.internal_group = grp.getgrgid(os.getegid()).gr_name
            self.mail_uid, self.mail_gid = os.geteuid(), os.getegid()
        self.root.chmod(0o755)
        for sub in ("run", "state", "mail"):
            (self.root / sub).mkdir()
        self._chown_mail(self.root / "mail")
        self._spares: list[MailUser] = []
        for n in range(1, spare_users + 1):
            self._spares.append(MailUser(f"delegate{n}", secrets.token_urlsafe(12)))
            self._users[f"delegate{n}"] = self._spares[-1].password
        self._register(MailUser("postmaster", secrets.token_urlsafe(12)))

    # ----------------------------------------------------------------------------- lifecycle

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("Dovecot has not been started")
        return self._port

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def config_path(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def log_path(self) -> Path:
        return self.root / "dovecot.log"

    @property
    def passwd_path(self) -> Path:
        return self.root / "passwd"

    def maildir(self, user: MailUser | str) -> Path:
        name = user.username if isinstance(user, MailUser) else user
        return self.root / "mail" / name / "Maildir"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        if self.running:
            raise RuntimeError("Dovecot is already running")
        if self._port is None:
            self._port = _free_port()
        self._write_config()
        output = (self.root / "dovecot.out").open("ab")
        try:
            self._proc = subprocess.Popen(
                [self.binary, "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            output.close()
        self._proc_finalizer = weakref.finalize(self, _kill_at_exit, self._proc)
        try:
            self._wait_until_ready(time.monotonic() + self.start_timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server (it closes its clients' connections); start() runs it again on the same port."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        # The master is gone; make sure no imap or login process of its outlives it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        if self._proc_finalizer is not None:
            self._proc_finalizer.detach()
            self._proc_finalizer = None

    def close(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        self._cleanup()

    def log_tail(self, lines: int = 40) -> str:
        parts = []
        for path in (self.root / "dovecot.out", self.log_path):
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path.name} ---\n" + "\n".join(text))
        return "\n".join(parts) or "(no output)"

    def _wait_until_ready(self, deadline: float) -> None:
        while True:
            if self._proc is None or self._proc.poll() is not None:
                raise DovecotStartError(f"dovecot exited while starting\n{self.log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), timeout=1) as sock:
                sock.settimeout(2)
                if sock.recv(512).startswith(b"* OK"):
                    return
            if time.monotonic() > deadline:
                raise DovecotStartError(f"dovecot did not greet on {self.host}:{self.port}\n{self.log_tail()}")
            time.sleep(0.05)

    def _write_config(self) -> None:
        root = self.root
        capability = "" if self.idle else f"imap_capability = {_CAPABILITY_WITHOUT_IDLE}\n"
        # chroot needs root: unprivileged, the login and anvil processes run without one.
        chroot = "  chroot =\n" if os.geteuid() != 0 else ""
        # Dovecot slows down logins from an IP after failed ones (2 s, doubling up to 15 s): off unless asked for.
        penalty = "" if self.auth_penalty else "  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n"
        config = f"""\
# Written by tests/fakes/dovecot.py for one test run.
base_dir = {root}/run
state_dir = {root}/state
log_path = {self.log_path}
info_log_path = {self.log_path}
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = {self.auth_failure_delay} secs
default_internal_user = {self.internal_user}
default_login_user = {self.login_user}
default_internal_group = {self.internal_group}
first_valid_uid = {min(self.mail_uid, 500)}
first_valid_gid = {min(self.mail_gid, 500)}
mail_location = maildir:{root}/mail/%u/Maildir
{capability}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.passwd_path}
}}
userdb {{
  driver = static
  args = uid={self.mail_uid} gid={self.mail_gid} home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
{chroot}}}
service anvil {{
{chroot}{penalty}}}
{self.extra_config}
"""
        self.config_path.write_text(config)

    def _chown_mail(self, path: Path) -> None:
        if os.geteuid() == 0:
            os.chown(path, self.mail_uid, self.mail_gid)

    # ----------------------------------------------------------------------------- users and mail

    def add_user(self, username: str | None = None, password: str | None = None) -> MailUser:
        """A new account with an empty INBOX.

        Without arguments it is one of the ``spare_users`` written into the password file before the server
        started: Dovecot checks that file at most once a second, so a user added to it later can take a
        second to be able to log in, and this waits for that.
        """
        if username is None and password is None and self._spares:
            user = self._spares.pop(0)
        else:
            self._counter += 1
            user = MailUser(username or f"user{self._counter}", password or secrets.token_urlsafe(12))
            self._register(user)
            if self.running:
                self._wait_for_login(user)
        home = self.root / "mail" / user.username
        home.mkdir(exist_ok=True)
        self._chown_mail(home)
        return user

    def _register(self, user: MailUser) -> None:
        if not re.fullmatch(r"[A-Za-z0-9._-]+", user.username) or re.search(r"[:\n]", user.password):
            raise ValueError("username must be [A-Za-z0-9._-]+ and the password must not hold ':' or a newline")
        self._users[user.username] = user.password
        lines = "".join(f"{name}:{{PLAIN}}{secret}::::::\n" for name, secret in self._users.items())
        tmp = self.passwd_path.with_suffix(".tmp")
        tmp.write_text(lines)
        tmp.chmod(0o644)
        # Dovecot rereads the file when its mtime (whole seconds) or size changed: make sure the mtime does.
        self._passwd_stamp = max(self._passwd_stamp + 1, int(time.time()))
        os.utime(tmp, (self._passwd_stamp, self._passwd_stamp))
        tmp.replace(self.passwd_path)

    def _wait_for_login(self, user: MailUser, within: float = 5.0) -> None:
        deadline = time.monotonic() + within
        while True:
            client = imaplib.IMAP4(self.host, self.port, timeout=5)
            try:
                client.login(user.username, user.password)
                return
            except imaplib.IMAP4.error:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
            finally:
                with contextlib.suppress(Exception):
                    client.logout()

    @contextlib.contextmanager
    def imap(self, user: MailUser, mailbox: str = "INBOX") -> Any:
        """A logged-in imaplib.IMAP4 client with ``mailbox`` selected."""
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        try:
            client.login(user.username, user.password)
            typ, data = client.select(mailbox)
            if typ != "OK":
                raise RuntimeError(f"SELECT {mailbox} failed: {data!r}")
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def append(self, user: MailUser, raw: bytes, *, flags: str = "", mailbox: str = "INBOX") -> int:
        """APPEND ``raw`` to the mailbox; returns its UID (from Dovecot's APPENDUID)."""
        with self.imap(user, mailbox) as client:
            typ, data = client.append(mailbox, f"({flags})" if flags else None, None, raw)
            if typ != "OK":
                raise RuntimeError(f"APPEND failed: {data!r}")
            text = b" ".join(d for d in data if isinstance(d, bytes)).decode()
            match = re.search(r"APPENDUID \d+ (\d+)", text)
            if match is None:
                raise RuntimeError(f"no APPENDUID in {text!r}")
            return int(match.group(1))

    def deliver_to_maildir(self, user: MailUser, raw: bytes) -> Path:
        """Drop ``raw`` into the user's Maildir ``new/`` as a local delivery agent would; Dovecot picks it up."""
        maildir = self.maildir(user)
        for sub in ("tmp", "new", "cur"):
            (maildir / sub).mkdir(parents=True, exist_ok=True)
        for path in (maildir, maildir / "tmp", maildir / "new", maildir / "cur"):
            self._chown_mail(path)
        name = f"{time.time_ns()}.{secrets.token_hex(4)}.floorbridge-tests"
        tmp = maildir / "tmp" / name
        tmp.write_bytes(raw)
        tmp.chmod(0o644)
        self._chown_mail(tmp)
        return tmp.rename(maildir / "new" / name)

    def flags(self, user: MailUser, uid: int, mailbox: str = "INBOX") -> set[str]:
        with self.imap(user, mailbox) as client:
            typ, data = client.uid("FETCH", str(uid), "(FLAGS)")
            if typ != "OK" or not data or data[0] is None:
                raise RuntimeError(f"no message with UID {uid}: {data!r}")
            first = data[0][0] if isinstance(data[0], tuple) else data[0]
            match = re.search(rb"FLAGS \(([^)]*)\)", first)
            return set(match.group(1).decode().split()) if match else set()

    def search(self, user: MailUser, criterion: str = "UNSEEN", mailbox: str = "INBOX") -> list[int]:
        with self.imap(user, mailbox) as client:
            typ, data = client.uid("SEARCH", criterion)
            if typ != "OK":
                raise RuntimeError(f"SEARCH failed: {data!r}")
            return [int(n) for n in (data[0] or b"").split()]
