"""Starting, supervising and stopping the chat worker (in the web process), and tying the worker's
life to its parent's (in the worker).

The worker dies with the web process however that one ends: a SIGKILLed web process must not leave
a worker sending on while a restarted service starts another (each message would go twice). On
Linux the kernel sends the worker SIGKILL when its parent dies (PR_SET_PDEATHSIG); everywhere, the
worker also stops when its standard input, a pipe from the parent, reaches its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from floorbridge.core.tasks import cancel_and_wait

log = logging.getLogger("floorbridge.worker")

PR_SET_PDEATHSIG = 1


class WorkerProcess:
    """`argv` run as a child with a pipe as its standard input (its output is the parent's). When it
    stops on its own it is started again after `first_delay` seconds, doubling up to `max_delay`
    while it keeps failing; `stop` asks it to stop (SIGTERM) and kills it after `stop_seconds`."""

    def __init__(self, argv: Sequence[str], *, first_delay: float = 1.0, max_delay: float = 30.0,
                 stop_seconds: float = 20.0) -> None:
        self._argv = list(argv)
        self._first_delay = first_delay
        self._max_delay = max_delay
        self._stop_seconds = stop_seconds
        self._process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._process.returncode is None else None

    async def start(self) -> None:
        self._stopping = False
        self._process = await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(), name="chat-worker")

    async def _spawn(self) -> asyncio.subprocess.Process:
        # A session of its own: where Linux groups processes by session (autogroup, on by default), a
        # nice value only orders the processes of one session, and the worker's lower priority (see
        # lower_priority) must hold against everything else on the machine too. A terminal's Ctrl-C
        # now reaches only this process, which stops the worker (stop) on its way out.
        process = await asyncio.create_subprocess_exec(*self._argv, stdin=asyncio.subprocess.PIPE,
                                                       start_new_session=True)
        log.info("chat worker started", extra={"pid": process.pid})
        return process

    async def _supervise(self) -> None:
        delay = self._first_delay
        while True:
            assert self._process is not None
            started = time.monotonic()
            code = await self._process.wait()
            if self._stopping:
                return
            if time.monotonic() - started > 60:
                delay = self._first_delay  # it ran for a while: this is a new failure, not a loop
            log.error("the chat worker stopped; starting it again",
                      extra={"exit_code": code, "restart_in_seconds": delay})
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_delay)
            if self._stopping:
                return
            self.restarts += 1
            self._process = await self._spawn()

    async def stop(self) -> None:
        self._stopping = True
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                async with asyncio.timeout(self._stop_seconds):
                    await process.wait()
            except TimeoutError:
                log.warning("the chat worker did not stop in time; killing it", extra={"pid": process.pid})
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        await cancel_and_wait(self._supervisor)
        self._supervisor = None


def lower_priority(nice: int) -> None:
    """In the worker: yield the CPU to the web process (and to the rest of the machine) by `nice`.

    On Linux with autogroup scheduling the CPU is shared between sessions first and a process's nice
    value only counts within its session; the worker is in a session of its own (WorkerProcess), so
    that session's nice is set as well. Where there is no autogroup the process's nice is what counts:
    no file, or an empty one (the process is in the root group, whose nice the kernel does not let
    be set: autogroup scheduling turned off when the session was made)."""
    os.nice(nice)
    autogroup = Path("/proc/self/autogroup")
    if nice and _in_autogroup(autogroup):
        try:
            autogroup.write_text(str(nice))
        except OSError as exc:
            log.warning("cannot lower the chat worker's session priority", extra={"error": str(exc)})


def _in_autogroup(autogroup: Path) -> bool:
    try:
        return bool(autogroup.read_text().strip())
    except OSError:
        return False


def tie_to_parent(parent_pid: int) -> None:
    """In the worker, first thing: die with the parent (SIGKILL when it dies, on Linux), and stop
    now if it is gone already (it died before the signal was asked for)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            log.warning("cannot ask to die with the web process", extra={"errno": ctypes.get_errno()})
    if os.getppid() != parent_pid:
        raise SystemExit(f"the web process (pid {parent_pid}) is gone")


async def until_parent_gone(stop: asyncio.Event) -> None:
    """In the worker: set `stop` when the pipe from the parent (standard input) ends."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while await reader.read(4096):
            pass
        log.warning("the web process is gone; stopping")
        stop.set()
    finally:
        transport.close()
