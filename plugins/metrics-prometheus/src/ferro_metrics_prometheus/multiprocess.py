"""Several gateway processes serving one port (``ferrogw serve --workers N``):
prometheus-client's multiprocess mode.

With ``PROMETHEUS_MULTIPROC_DIR`` set in every process's environment, each process writes
its metrics to files of its own in that directory, and a scrape of any of them collects all
the files, so one scrape is the whole gateway's. The directory must exist and be emptied
before the processes start (files a previous run left are counted too). ``ferrogw serve
--workers N`` sets a new temporary one for its workers when none is set; as its workers
are forked after this package was imported, :func:`values_in_files` switches
prometheus-client to files as each app is configured. When a worker exits, its parent
marks it dead (prometheus-client's ``mark_process_dead``, as :func:`mark_process_dead`
does), which drops its circuit-breaker series (its counters and histograms are kept, so
totals never fall).
"""

from __future__ import annotations

import os

from ferro import ConfigError
from prometheus_client import multiprocess, values

__all__ = ["ENV_VAR", "mark_process_dead", "multiprocess_dir", "values_in_files"]

ENV_VAR = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The directory of multiprocess mode, or None when it is off. Raises ConfigError when
    the variable names no directory."""
    path = os.environ.get(ENV_VAR)
    if not path:
        return None
    if not os.path.isdir(path):
        raise ConfigError(f"{ENV_VAR}={path} is not a directory: create it (empty) before "
                          "the gateway starts, or unset it to serve one process's metrics")
    return path


def values_in_files() -> None:
    """Keep this process's metric values in the directory's files, from its next metric
    on. prometheus-client chooses where values live when it is imported; a process whose
    variable was set later (a forked worker) switches here, once only (a second switch
    would open the same files twice)."""
    if values.ValueClass is values.MutexValue:
        values.ValueClass = values.get_value_class()


def mark_process_dead(pid: int) -> None:
    """Forget the live-only series of gateway process ``pid``, which has exited (nothing to
    do outside multiprocess mode)."""
    path = multiprocess_dir()
    if path is not None:
        multiprocess.mark_process_dead(pid, path)
