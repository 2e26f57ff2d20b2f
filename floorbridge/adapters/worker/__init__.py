"""The web process and its chat worker: `serve --role all` runs the web server (feeds, API, pages,
console and the lists of speakers) in its own process and starts the chat platforms, their delivery,
the reminders and the mail receivers in a second one, which it supervises.

A burst of chat traffic costs the Python libraries of the platforms seconds of CPU (parsing
updates, gateway events and sync responses, answering interactions); in one process, with one
event loop and one interpreter lock, the web requests arriving meanwhile were answered behind it
(a web acknowledgement's p99 of 1.6 s under 900 chat commands, against 45 ms without them). The
two talk over Unix sockets in a private directory:

- the worker hands its lists-of-speakers commands to the web process, which keeps the lists and
  stores them (one writer, one group commit, receipt order kept across platforms): `floor_host`
  and `remote_floor`;
- the web process tells the worker when it wrote outbox rows (a "you have the floor" notice, a
  slot decision, an announcement), so they are sent at once: the wake stream of `floor_host`;
- the web process reads the worker's delivery figures for /metrics and hands it Telegram's webhook
  calls: `worker_host`.
"""

from .floor_host import FloorHost
from .process import WorkerProcess, lower_priority, tie_to_parent, until_parent_gone
from .remote_floor import RemoteFloor, WakeListener
from .worker_host import WorkerClient, WorkerHost

PARENT_SOCKET = "web.sock"
WORKER_SOCKET = "worker.sock"

__all__ = ["PARENT_SOCKET", "WORKER_SOCKET", "FloorHost", "RemoteFloor", "WakeListener", "WorkerClient",
           "WorkerHost", "WorkerProcess", "lower_priority", "tie_to_parent", "until_parent_gone"]
