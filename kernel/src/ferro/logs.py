"""Structured logging: one JSON object per line (``text`` for humans), with secrets redacted
from every line, and the access log: one line per request, logger ``ferro.access``.

Level and format come from the config's ``logging`` section; ``LOG_LEVEL`` and
``LOG_FORMAT`` override them (:func:`configure_logging`). ``warn`` means ``warning``.

The formatters :func:`setup_logging` installs scrub each record's final line (message,
exception text, structured fields; see :mod:`ferro.redaction`) of the provider credentials
of every config applied (start-up and every reload), and of anything shaped like a
credential. Every logger's records pass them, the gateway's and its libraries', the access
log's included.

A record's structured fields are the ``fields`` dict it carries: in JSON they are keys of
the line's object, in text a ``key=value`` list after the message.
"""

from __future__ import annotations

import asyncio
import logging
import os
import select
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from ferro.errors import ConfigError
from ferro.redaction import scrub as redact

if TYPE_CHECKING:
    from ferro.config import LoggingConfig
    from ferro.types import Exchange

__all__ = ["ACCESS_LOG", "LEVELS", "configure_logging", "log_request", "redact", "setup_logging"]

#: The level names accepted (config ``logging.level`` and ``LOG_LEVEL``), case-insensitive.
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
          "warning": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL}
FORMATS = ("json", "text")

#: The access log: one INFO line per request, message ``request``.
ACCESS_LOG = logging.getLogger("ferro.access")
#: What every access-log line in JSON says after its time.
_ACCESS_HEAD = orjson.dumps({"level": "info", "logger": ACCESS_LOG.name,
                             "msg": "request"}).decode()[1:-1]


class JSONFormatter(logging.Formatter):
    """A JSON object per record: ``time`` (UTC, milliseconds), ``level``, ``logger``,
    ``msg``, the record's fields, ``error``/``stack`` when it has them; with ``pid``, the
    process that wrote it (several workers share one output)."""

    def __init__(self, *, pid: bool = False) -> None:
        super().__init__()
        self.pid = pid
        self._second = -1
        self._stamp = ""

    def _time(self, created: float) -> str:
        second = int(created)
        if second != self._second:  # one strftime a second, however many lines
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int((created - second) * 1000):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self._time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if self.pid:
            out["pid"] = record.process
        fields = getattr(record, "fields", None)
        if fields:
            out.update(fields)
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return redact(orjson.dumps(out, default=str).decode())

    def access_line(self, created: float, fields: dict[str, Any]) -> str:
        """What :meth:`format` makes of an access-log record carrying ``fields`` (at least
        one), made at ``created``. Credentials are looked for in the fields' text, not in
        the whole line: a third of the time, and a secret JSON would escape is found too."""
        pid = f',"pid":{os.getpid()}' if self.pid else ""
        return (f'{{"time":"{self._time(created)}",{_ACCESS_HEAD}{pid},'
                + orjson.dumps(_redacted(fields), default=str).decode()[1:])


#: Field values that hold no text.
_NOT_TEXT = (int, float, bool, type(None))


def _redacted(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` with credentials hidden in their values as text (``fields`` itself, the
    usual case, when there are none)."""
    texts = [value if type(value) is str else str(value) for value in fields.values()
             if type(value) not in _NOT_TEXT]
    joined = "\n".join(texts)
    if redact(joined) == joined:
        return fields
    return {name: value if type(value) in _NOT_TEXT else redact(str(value))
            for name, value in fields.items()}


class TextFormatter(logging.Formatter):
    """The ``logging`` format given, then the record's fields as ``key=value`` (fields
    without a value left out; a value with spaces or quotes in JSON quotes)."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "fields", None)
        if fields:
            line += "".join(f" {key}={_text(value)}" for key, value in fields.items()
                            if value is not None)
        return redact(line)


def _text(value: Any) -> str:
    text = str(value)
    if not text or any(c in text for c in ' "=\n\t'):
        return orjson.dumps(text).decode()
    return text


#: Seconds a line may wait, on a running event loop, to be written with the others that
#: came meanwhile (one ``write`` per loop turn cost the production set 3-5 % of its CPU).
WRITE_EVERY = 0.1
#: Lines past which the waiting ones are written at once.
MAX_WAITING = 1000
#: Bytes handed to the writer thread and not written yet past which new lines are dropped
#: (and counted): a stderr that stalls neither blocks the event loop nor grows the process.
MAX_UNWRITTEN = 8 << 20
#: Seconds the lines still unwritten may take to go out at exit or before a fork.
DRAIN_TIMEOUT = 5.0


class BatchedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that, on a running event loop, gathers lines and writes them
    together at most :data:`WRITE_EVERY` seconds after the first: one ``write`` per line
    was a visible share of the gateway's CPU. For errors and past :data:`MAX_WAITING`
    lines, the lines go at once.

    On a running loop the lines are written by a thread of the handler's own (see
    :class:`_Writer`), so that a stalled stderr never blocks the loop; elsewhere (no loop,
    at exit, before a fork) they are written in the calling thread, after what the thread
    still has. ``shared``: other processes write to the stream too (the workers of
    ``--workers``); a write then holds whole lines and at most ``PIPE_BUF`` bytes, which a
    pipe writes at once, never in between another's."""

    def __init__(self, stream: Any = None, *, shared: bool = False) -> None:
        super().__init__(stream)
        self.shared = shared
        self._lines: list[str] = []
        #: The write on its way, and the loop it is due on.
        self._due: asyncio.TimerHandle | None = None
        self._due_on: asyncio.AbstractEventLoop | None = None
        self._writer: _Writer | None = None
        _BATCHING.add(self)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self._add(line, at_once=record.levelno >= logging.ERROR)

    def emit_line(self, line: str) -> None:
        """Write ``line`` (formatted already) as :meth:`emit` writes a record's."""
        with self.lock:  # type: ignore[union-attr]
            self._add(line, at_once=False)

    def _add(self, line: str, at_once: bool) -> None:
        self._lines.append(line)
        if at_once or len(self._lines) >= MAX_WAITING:
            self.flush()
            return
        if self._due is not None and not self._due_on.is_closed():  # type: ignore[union-attr]
            return  # a write is on its way
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop running
            self.flush()
            return
        self._due, self._due_on = loop.call_later(WRITE_EVERY, self.flush), loop

    def flush(self) -> None:
        """Write the lines waiting: through the writer thread on a running event loop, in
        this thread elsewhere."""
        with self.lock:  # type: ignore[union-attr]
            self._due = self._due_on = None  # a timer still due finds nothing to write
            if not _loop_running():
                self.write_all()
                return
            lines, self._lines = self._lines, []
            if lines:
                writer = self._writer
                if writer is None or writer.pid != os.getpid():  # none yet, or the parent's
                    writer = self._writer = _Writer(self)
                writer.hand(self._texts(lines), len(lines))

    def write_all(self) -> None:
        """Write every line waiting, in this thread, once the writer thread has written
        what it has. When that takes more than :data:`DRAIN_TIMEOUT` seconds the output
        is stalled: the lines are dropped rather than block an exit or a fork on it."""
        with self.lock:  # type: ignore[union-attr]
            lines, self._lines = self._lines, []
            writer = self._writer
            if writer is not None and writer.pid == os.getpid() and not writer.wait_idle(
                    DRAIN_TIMEOUT):
                return
            if lines:
                self.write(self._texts(lines))

    def close(self) -> None:
        self.write_all()
        writer = self._writer
        if writer is not None and writer.pid == os.getpid():
            writer.stop()
            self._writer = None
        super().close()

    def _texts(self, lines: list[str]) -> list[str]:
        return list(_pieces(lines)) if self.shared else ["\n".join(lines) + "\n"]

    def write(self, texts: list[str]) -> None:
        """Write ``texts`` to the stream now, each at once."""
        try:
            for text in texts:
                self.stream.write(text)
                self.stream.flush()
        except Exception:
            pass  # nowhere left to say it (stderr is gone)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _Writer:
    """The thread that writes a handler's lines while an event loop runs: a stream that
    stalls (a pipe whose reader is stuck) blocks this thread only. Past
    :data:`MAX_UNWRITTEN` bytes handed over and not written, new lines are dropped; their
    number is written once the stream takes lines again. One per process (a forked child
    makes its own)."""

    def __init__(self, handler: BatchedStreamHandler) -> None:
        self.pid = os.getpid()
        self.handler = handler
        self.dropped = 0
        self._ready = threading.Condition(threading.Lock())
        #: Each batch handed over, with its size.
        self._queue: deque[tuple[list[str], int]] = deque()
        self._unwritten = 0
        self._busy = self._stopping = self._stalled = False
        self.thread = threading.Thread(target=self._run, name="ferro-log-writer", daemon=True)
        self.thread.start()

    def hand(self, texts: list[str], lines: int) -> None:
        size = sum(map(len, texts))
        with self._ready:
            if self._unwritten + size > MAX_UNWRITTEN:
                self.dropped += lines
                return
            self._unwritten += size
            self._queue.append((texts, size))
            self._ready.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Until everything handed over is written (True), for at most ``timeout``
        seconds (False); not at all while the last wait ran out and nothing was written
        since (an exit flushes several times)."""
        with self._ready:
            if self._stalled:
                return False
            idle = self._ready.wait_for(lambda: not self._queue and not self._busy, timeout)
            self._stalled = not idle
            return idle

    def stop(self) -> None:
        """End the thread once it has written what it has."""
        with self._ready:
            self._stopping = True
            self._ready.notify_all()

    def _run(self) -> None:
        while True:
            with self._ready:
                self._ready.wait_for(lambda: bool(self._queue) or self._stopping)
                if not self._queue:
                    return
                texts, size = self._queue.popleft()
                self._busy = True
            self.handler.write(texts)
            with self._ready:
                self._unwritten -= size
                dropped, self.dropped = self.dropped, 0
            if dropped:
                self.handler.write([self._dropped_line(dropped)])
            with self._ready:
                self._busy = self._stalled = False
                self._ready.notify_all()

    def _dropped_line(self, count: int) -> str:
        record = logging.LogRecord("ferro.logs", logging.WARNING, __file__, 0,
                                   "%d log lines were dropped: the log output did not take "
                                   "them as fast as they came", (count,), None)
        try:
            return self.handler.format(record) + "\n"
        except Exception:
            return f"{count} log lines were dropped\n"


#: The most bytes a pipe writes at once (POSIX: at least 512; 4096 on Linux).
PIPE_BUF = select.PIPE_BUF


def _pieces(lines: list[str]) -> Iterator[str]:
    """``lines``, each ended, gathered into pieces of at most :data:`PIPE_BUF` bytes (a
    longer line is a piece of its own)."""
    piece: list[str] = []
    size = 0
    for line in lines:
        length = len(line.encode()) + 1
        if piece and size + length > PIPE_BUF:
            yield "\n".join(piece) + "\n"
            piece, size = [], 0
        piece.append(line)
        size += length
    if piece:
        yield "\n".join(piece) + "\n"


#: Every batching handler, flushed before a fork: a forked worker must not write its
#: parent's pending lines again.
_BATCHING: weakref.WeakSet[BatchedStreamHandler] = weakref.WeakSet()


def _flush_before_fork() -> None:
    for handler in list(_BATCHING):
        handler.write_all()  # nothing is being written as the process forks


os.register_at_fork(before=_flush_before_fork)


def setup_logging(level: str = "info", fmt: str = "json", *, pid: bool = False) -> None:
    """Send every logger's records at ``level`` (a name of :data:`LEVELS`) and above to
    stderr, as JSON, or as text when ``fmt`` is ``text``; ``pid``: each line names the
    process that wrote it, and the processes share stderr (see :class:`BatchedStreamHandler`)."""
    handler = BatchedStreamHandler(sys.stderr, shared=pid)
    if fmt == "text":
        process = "[%(process)d]" if pid else ""
        handler.setFormatter(TextFormatter(
            f"%(asctime)s %(levelname)s %(name)s{process}: %(message)s"))
    else:
        handler.setFormatter(JSONFormatter(pid=pid))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level.lower()])
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    _record_only_what_is_printed()


def _record_only_what_is_printed() -> None:
    """Spare each record the attributes no format here prints, its thread and process
    names (the ``logging`` HOWTO's optimisations; part of the access log's cost)."""
    logging.logThreads = False
    logging.logMultiprocessing = False


def configure_logging(config: LoggingConfig, env: Mapping[str, str] = os.environ, *,
                      pid: bool = False) -> None:
    """:func:`setup_logging` with the config's level and format, ``LOG_LEVEL`` and
    ``LOG_FORMAT`` overriding them. Raises ConfigError for a variable's value that is not
    a level or format (the config's own are checked when it loads)."""
    level = (env.get("LOG_LEVEL") or config.level).strip().lower()
    fmt = (env.get("LOG_FORMAT") or config.format).strip().lower()
    if level not in LEVELS:
        raise ConfigError(f"LOG_LEVEL={env.get('LOG_LEVEL')!r} is not a log level: use one "
                          f"of {', '.join(LEVELS)}")
    if fmt not in FORMATS:
        raise ConfigError(f"LOG_FORMAT={env.get('LOG_FORMAT')!r} is not a log format: use "
                          f"{' or '.join(FORMATS)}")
    setup_logging(level, fmt, pid=pid)


def log_request(exchange: Exchange) -> None:
    """The access-log line of ``exchange``: an ``exchange_completed`` listener of the
    kernel's own. Nothing is built unless ``ferro.access`` logs at INFO."""
    if not ACCESS_LOG.isEnabledFor(logging.INFO):
        return
    usage, trace, error = exchange.usage, exchange.trace, exchange.error
    fields: dict[str, Any] = {
        "request_id": exchange.request_id,
        "trace_id": trace.trace_id if trace is not None else None,
        "key_id": exchange.key_id,
        "operation": exchange.operation,
        "provider": exchange.provider or None,
        "model": exchange.model or None,
        "upstream_model": exchange.upstream_model or None,
        "status": exchange.status,
        "latency_ms": round(exchange.duration * 1000, 3),
        "ttfb_ms": round(exchange.ttfb * 1000, 3) if exchange.ttfb is not None else None,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "cost": exchange.cost,
        "attempts": exchange.attempts,
        "stream": exchange.stream,
        "cache": exchange.metadata.get("cache"),
        "client_ip": exchange.client_ip or None,
    }
    if error is not None:
        fields["error_type"] = error.type
        fields["error_code"] = error.code
    handler = _only_handler()
    if handler is not None:
        handler.emit_line(handler.formatter.access_line(time.time(), fields))  # type: ignore[union-attr]
    else:
        ACCESS_LOG.handle(_access_record(fields))


def _only_handler() -> BatchedStreamHandler | None:
    """The handler an access-log record goes to, when it is the only one, is the gateway's
    own with its JSON format, and no filter is on the way: the usual case, where the line
    is made directly, without a ``LogRecord`` nor the ``logging`` machinery's calls (a
    third of the line's cost). None otherwise: the record then goes through ``logging``."""
    logger: logging.Logger | None = ACCESS_LOG
    if ACCESS_LOG.disabled:
        return None
    found = None
    while logger is not None:
        if logger.filters:
            return None
        for handler in logger.handlers:
            if (found is not None or type(handler) is not BatchedStreamHandler
                    or type(handler.formatter) is not JSONFormatter or handler.filters
                    or handler.level > logging.INFO):
                return None
            found = handler
        logger = logger.parent if logger.propagate else None
    return found


def _record_template() -> dict[str, Any]:
    """The attributes every access-log record shares (logger, level, message, where it is
    made): one record's, made once."""
    return vars(logging.LogRecord(ACCESS_LOG.name, logging.INFO, __file__, 0, "request", (),
                                  None))


_TEMPLATE = _record_template()
#: When ``logging`` started counting ``relativeCreated`` (seconds since the epoch).
_LOGGING_STARTED = _TEMPLATE["created"] - _TEMPLATE["relativeCreated"] / 1000


def _access_record(fields: dict[str, Any]) -> logging.LogRecord:
    """An access-log record carrying ``fields``: a ``LogRecord`` with every attribute
    ``LogRecord()`` gives, without working out again what is the same for every line (a
    handler never sees the difference; made directly, no caller's frame is looked up)."""
    record = logging.LogRecord.__new__(logging.LogRecord)
    attributes = record.__dict__
    attributes.update(_TEMPLATE)
    now = time.time()
    attributes["created"] = now
    attributes["msecs"] = int((now - int(now)) * 1000) + 0.0
    attributes["relativeCreated"] = (now - _LOGGING_STARTED) * 1000
    attributes["fields"] = fields
    if logging.logThreads:
        attributes["thread"] = threading.get_ident()
        attributes["threadName"] = threading.current_thread().name
    if logging.logProcesses:
        attributes["process"] = os.getpid()
    if logging.logMultiprocessing and "multiprocessing" in sys.modules:
        attributes["processName"] = sys.modules["multiprocessing"].current_process().name
    if getattr(logging, "logAsyncioTasks", False):  # Python 3.12+
        task = _current_task()
        attributes["taskName"] = task.get_name() if task is not None else None
    return record


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no loop running
        return None
