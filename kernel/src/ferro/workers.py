"""Several gateway processes on one listening socket (``ferrogw serve --workers N``).

The parent binds the socket once, then forks the workers before any event loop starts.
Each worker serves the gateway on the inherited socket (its own app, event loop,
connections, circuit breakers and caches); the OS hands each new connection to a worker
that is waiting to accept. The parent serves nothing; it:

- forwards SIGTERM and SIGINT to every worker, each of which drains as a single process
  does (see :mod:`ferro.server`), closes its own copy of the socket so that new
  connections are refused, and exits once every worker has: 0 when each exited 0. A
  second signal is forwarded too (it ends the workers at once);
- forwards SIGHUP: each worker reloads the config file, and a worker started later
  applies the file as it starts;
- replaces a worker that exits while the gateway is not shutting down, after
  :data:`BACKOFF` seconds, doubled for each replacement in a row that died within
  :data:`YOUNG` seconds, up to :data:`MAX_BACKOFF`;
- stops the gateway when a worker cannot start (its error is logged; the parent exits
  with a ConfigError): every worker would fail the same way.

On Linux a worker is sent SIGTERM when the parent dies, so none outlives it.

Metrics: prometheus-client's multiprocess mode keeps each process's metrics in files of a
shared directory, ``PROMETHEUS_MULTIPROC_DIR``. When it is not set, the parent sets it to
a new temporary directory for the workers and removes it at exit; when a worker exits, its
live-only series are dropped (``multiprocess.mark_process_dead``) and its counts kept.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import NoReturn

import attrs

from ferro.errors import ConfigError

__all__ = ["BACKOFF", "EX_CONFIG", "MAX_BACKOFF", "METRICS_DIR", "YOUNG", "Supervisor"]

log = logging.getLogger("ferro.workers")

#: Seconds before a worker that exited is replaced, at first.
BACKOFF = 0.5
#: The longest wait before a replacement.
MAX_BACKOFF = 30.0
#: A worker that exits sooner than this after it started makes the next wait longer.
YOUNG = 10.0
#: A worker's exit code when it cannot start (sysexits' "configuration error").
EX_CONFIG = 78
#: The directory of prometheus-client's multiprocess mode.
METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"
#: The longest the parent sleeps between looks at its workers.
POLL = 1.0

_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD}
_PR_SET_PDEATHSIG = 1


@attrs.define
class _Worker:
    slot: int
    pid: int
    started: float


class Supervisor:
    """``count`` workers, each running ``work(reload_first)`` on the listening ``sock``
    (``reload_first``: apply the config file once started, as the others did on SIGHUP).
    :meth:`run` runs them until the gateway shuts down."""

    def __init__(self, sock: socket.socket, count: int, work: Callable[[bool], None]) -> None:
        self.sock = sock
        self.count = count
        self.work = work
        self.workers: dict[int, _Worker] = {}
        #: Slots waiting for a replacement worker, and when it starts.
        self.pending: dict[int, float] = {}
        #: Per slot, how many workers in a row died young.
        self._young: dict[int, int] = {}
        self.stopping = False
        self.reloaded = False
        self.failed: str | None = None
        self.code = 0
        self._mask: set[signal.Signals] = set()

    def run(self) -> int:
        """Start the workers and look after them until they have all exited after a
        SIGTERM or SIGINT; the exit code. Raises ConfigError when a worker cannot start."""
        with _metrics_dir():
            self._mask = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
            try:
                for slot in range(self.count):
                    self._start(slot)
                while self.workers or self.pending:
                    received = signal.sigtimedwait(_SIGNALS, self._wait())
                    if received is not None:
                        self._signalled(received.si_signo)
                    self._reap()
                    self._replace()
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)
        if self.failed:
            raise ConfigError(self.failed)
        log.info("all workers stopped")
        return self.code

    def _wait(self) -> float:
        """Seconds until the next replacement is due, at most :data:`POLL`."""
        due = min(self.pending.values(), default=None)
        if due is None:
            return POLL
        return min(POLL, max(0.0, due - time.monotonic()))

    def _start(self, slot: int) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            self._be_worker(parent)
        self.workers[pid] = _Worker(slot, pid, time.monotonic())
        log.info("worker %d started (pid %d)", slot, pid)

    def _be_worker(self, parent: int) -> NoReturn:
        """The forked child: serve, then exit (never back into the parent's code)."""
        code = 1
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)
            if _die_with(parent):
                self.work(self.reloaded)
                code = 0
        except ConfigError as exc:
            log.error("worker cannot start: %s", exc.message)
            code = EX_CONFIG
        except KeyboardInterrupt:  # a second SIGINT while draining
            code = 128 + signal.SIGINT
        except BaseException:
            log.exception("worker failed")
        finally:
            logging.shutdown()  # flushes the handlers (the lines waiting to be written)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def _signalled(self, signo: int) -> None:
        if signo in (signal.SIGTERM, signal.SIGINT):
            self._stop(signo)
        elif signo == signal.SIGHUP and not self.stopping:
            self.reloaded = True
            self._tell(signal.SIGHUP)

    def _stop(self, signo: int) -> None:
        """Shut the gateway down: no new connection, no new worker, each worker drains."""
        if not self.stopping:
            self.stopping = True
            self.pending.clear()
            self.sock.close()
            log.info("shutting down: %d workers finish what they are serving",
                     len(self.workers))
        self._tell(signo)

    def _tell(self, signo: int) -> None:
        for pid in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signo)

    def _reap(self) -> None:
        """Collect every worker that has exited."""
        while self.workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self.workers.pop(pid, None)
            if worker is not None:
                _forget_metrics(pid)
                self._exited(worker, os.waitstatus_to_exitcode(status))

    def _exited(self, worker: _Worker, code: int) -> None:
        how = f"exit code {code}" if code >= 0 else signal.Signals(-code).name
        if self.stopping:
            if code != 0:
                self.code = 1
                log.warning("worker %d (pid %d) stopped with %s", worker.slot, worker.pid,
                            how)
            return
        if code == EX_CONFIG:
            self.failed = (f"worker {worker.slot} could not start (its error is logged "
                           "above); the gateway stopped")
            self.code = 1
            self._stop(signal.SIGTERM)
            return
        young = time.monotonic() - worker.started < YOUNG
        in_a_row = self._young.get(worker.slot, 0) + 1 if young else 1
        self._young[worker.slot] = in_a_row
        delay = min(MAX_BACKOFF, BACKOFF * 2 ** (in_a_row - 1))
        log.error("worker %d (pid %d) exited unexpectedly (%s); a new one starts in %gs",
                  worker.slot, worker.pid, how, delay)
        self.pending[worker.slot] = time.monotonic() + delay

    def _replace(self) -> None:
        """Start the replacements that are due."""
        now = time.monotonic()
        for slot, when in list(self.pending.items()):
            if when <= now:
                del self.pending[slot]
                self._start(slot)


def _die_with(parent: int) -> bool:
    """Have the OS send this worker SIGTERM when ``parent`` dies (Linux); False when it
    already has."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
    return os.getppid() == parent


@contextlib.contextmanager
def _metrics_dir() -> Iterator[None]:
    """``PROMETHEUS_MULTIPROC_DIR`` set for the workers: the one the environment names, or
    a new temporary directory, removed at the end."""
    if os.environ.get(METRICS_DIR):
        yield
        return
    path = tempfile.mkdtemp(prefix="ferro-metrics-")
    os.environ[METRICS_DIR] = path
    try:
        yield
    finally:
        os.environ.pop(METRICS_DIR, None)
        shutil.rmtree(path, ignore_errors=True)


def _forget_metrics(pid: int) -> None:
    """Drop the live-only series of worker ``pid``, which has exited (prometheus-client's
    multiprocess mode, when it is installed)."""
    path = os.environ.get(METRICS_DIR)
    if not path:
        return
    try:
        from prometheus_client import multiprocess
    except ImportError:
        return
    multiprocess.mark_process_dead(pid, path)
