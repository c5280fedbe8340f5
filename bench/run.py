#!/usr/bin/env python3
"""Ferro's benchmark (`make bench`): what the gateway costs on top of a bare aiohttp proxy.

Matrix: {direct, floor, gateway, keys, production, workers} x {nonstream, stream, embeddings} x
{--conns} x {--runs}.

* direct:     the load generator talks straight to the fake upstream (the baseline).
* floor:      bench/floor_proxy.py, a bare aiohttp pass-through proxy (the least a Python
              proxy costs per request).
* gateway:    `ferrogw serve` with the openai provider pointed at the fake upstream
              (single strategy, no plugins, no access log).
* keys:       the bare gateway with a stored API key (SQLite key store) that every request
              sends: what key authentication costs.
* production: the same with the production set on: a stored API key, the request log
              (SQLite), the Redis rate limit, the metrics plugin and the JSON access log.
* workers:    the bare gateway served by `--workers` processes (default 2).

The fake upstream is nginx + Lua when installed, else bench/upstream.py. The load generator
is wrk + bench/chat.lua when installed, else bench/loadgen.py; both check every response
body. With 2+ CPUs the load generator and upstream are pinned to the first CPU and the proxy
under test to the second. Only 127.0.0.1 is used. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import upstream as fake  # noqa: E402
from loadgen import MODES, request_for  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
EXPECT = {"nonstream": fake.CHECK_CHAT, "stream": fake.CHECK_STREAM,
          "embeddings": fake.CHECK_EMBEDDINGS}
TARGETS = ("direct", "floor", "gateway", "keys", "production", "workers")
#: The targets that are the gateway, each compared with the floor.
GATEWAYS = ("gateway", "keys", "production", "workers")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- processes --------------------------------------------------------------------------------


class Procs:
    """The processes this run started; all of them are stopped, by pid, on exit."""

    def __init__(self, load_cpu: int | None, proxy_cpu: int | None) -> None:
        self.load_cpu, self.proxy_cpu = load_cpu, proxy_cpu
        self.live: list[subprocess.Popen] = []
        self.taskset = shutil.which("taskset")

    def pinned(self, cmd: list[str], cpu: int | None) -> tuple[list[str], Any]:
        """The command (under taskset when installed) or a preexec_fn pinning it to ``cpu``."""
        if cpu is None:
            return cmd, None
        if self.taskset:
            return [self.taskset, "-c", str(cpu), *cmd], None
        return cmd, lambda: os.sched_setaffinity(0, {cpu})

    def start(self, cmd: list[str], cpu: int | None, logfile: Path,
              env: dict[str, str] | None = None) -> subprocess.Popen:
        cmd, pre = self.pinned(cmd, cpu)
        with open(logfile, "ab") as out:
            p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 env=env, preexec_fn=pre, cwd=logfile.parent)
        self.live.append(p)
        return p

    def stop(self, p: subprocess.Popen) -> None:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        if p in self.live:
            self.live.remove(p)

    def stop_all(self) -> None:
        for p in reversed(list(self.live)):
            with contextlib.suppress(Exception):
                self.stop(p)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, n: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def wait_ready(url: str, proc: subprocess.Popen, logfile: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args} exited with {proc.returncode}:\n{tail(logfile)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = repr(exc)
        time.sleep(0.1)
    raise SystemExit(f"{url} not ready after {timeout:.0f}s ({last}):\n{tail(logfile)}")


def tree(root: int) -> list[int]:
    """``root`` and all its descendants."""
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_seconds(root: int) -> float:
    """utime + stime of ``root``'s process tree, in seconds."""
    total = 0
    for p in tree(root):
        with contextlib.suppress(OSError, IndexError, ValueError):
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / TICK


def memory_kb(root: int) -> tuple[int, int]:
    """(sum of VmRSS, sum of VmHWM) over ``root``'s process tree, in KiB."""
    rss = hwm = 0
    for p in tree(root):
        with contextlib.suppress(OSError, ValueError, IndexError), open(f"/proc/{p}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm += int(line.split()[1])
    return rss, hwm


def io_calls(root: int) -> tuple[int, int]:
    """(read, write) system calls of ``root``'s process tree, from /proc/<pid>/io."""
    r = w = 0
    for p in tree(root):
        with contextlib.suppress(OSError, ValueError, IndexError), open(f"/proc/{p}/io") as f:
            for line in f:
                if line.startswith("syscr:"):
                    r += int(line.split()[1])
                elif line.startswith("syscw:"):
                    w += int(line.split()[1])
    return r, w


def cpu_ticks() -> dict[str, tuple[int, int]]:
    """Per CPU line of /proc/stat ("cpu", "cpu0", ...): (user+nice+system ticks, steal ticks)."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if not line.startswith("cpu"):
                break
            name, *v = line.split()
            out[name] = (int(v[0]) + int(v[1]) + int(v[2]), int(v[7]) if len(v) > 7 else 0)
    return out


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


# --- load -------------------------------------------------------------------------------------


class Load:
    """Runs one closed-loop load cell with wrk or bench/loadgen.py; returns its BENCHJSON dict."""

    def __init__(self, kind: str, procs: Procs, timeout: float) -> None:
        self.kind, self.procs, self.timeout = kind, procs, timeout

    def run(self, url: str, mode: str, conns: int, duration: float,
            auth: str = "") -> dict[str, Any]:
        """``auth``: the ``Authorization`` header every request sends (none when empty)."""
        expect = EXPECT[mode]
        if self.kind == "wrk":
            secs = max(1, round(duration))
            cmd = ["wrk", "-t1", f"-c{conns}", f"-d{secs}s", f"--timeout={self.timeout:g}s",
                   "--latency", "-s", str(HERE / "chat.lua"), url]
            path, body = request_for(mode)
            env = dict(os.environ, BENCH_PATH=path, BENCH_BODY=body.decode(),
                       BENCH_EXPECT="|".join(expect), BENCH_AUTH=auth)
        else:
            cmd = [sys.executable, str(HERE / "loadgen.py"), "--url", url, "--conns", str(conns),
                   "--duration", str(duration), "--timeout", str(self.timeout), "--mode", mode,
                   "--auth", auth]
            for e in expect:
                cmd += ["--expect", e]
            env = None
        cmd, pre = self.procs.pinned(cmd, self.procs.load_cpu)
        c0 = children_cpu()
        p = subprocess.run(cmd, env=env, preexec_fn=pre, capture_output=True, text=True,
                           timeout=duration + self.timeout + 30)
        load_cpu = children_cpu() - c0
        for line in p.stdout.splitlines():
            if line.startswith("BENCHJSON "):
                res = json.loads(line[10:])
                res["rps"] = res["requests"] / max(res["duration_us"] / 1e6, 1e-9)
                res["load_cpu_s"] = load_cpu
                return res
        raise SystemExit(f"{self.kind} failed (rc={p.returncode}):\n{p.stdout[-1500:]}\n"
                         f"{p.stderr[-1500:]}")


def preflight(base: str, mode: str, auth: str = "") -> None:
    """One request per mode before any load: abort when the reply is not what the load
    generators expect (a broken config would otherwise show up as a cell of errors)."""
    path, body = request_for(mode)
    headers = {"Content-Type": "application/json", **({"Authorization": auth} if auth else {})}
    req = urllib.request.Request(base + path, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            status, body = r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as exc:
        status, body = -1, repr(exc)
    missing = [e for e in EXPECT[mode] if e not in body]
    if not 200 <= status <= 299 or missing:
        raise SystemExit(f"preflight {base} {mode}: status {status}, missing {missing}: "
                         f"{body[:400]!r}")


# --- the servers ------------------------------------------------------------------------------


def start_upstream(kind: str, procs: Procs, work: Path) -> tuple[str, subprocess.Popen, str]:
    port = free_port()
    logfile = work / "upstream.log"
    if kind == "nginx":
        modules = fake.lua_modules()
        ndir = work / "nginx"
        ndir.mkdir()
        # readable by the worker, which runs as "nobody" when nginx is started as root
        work.chmod(0o755)
        ndir.chmod(0o755)
        (ndir / "nginx.conf").write_text(fake.nginx_conf(str(ndir), port, modules or []))
        p = procs.start(["nginx", "-p", str(ndir), "-c", str(ndir / "nginx.conf"),
                         "-e", str(ndir / "nginx-error.log")], procs.load_cpu, logfile)
        label = "nginx+lua (1 worker)"
    else:
        p = procs.start([sys.executable, str(HERE / "upstream.py"), "--port", str(port)],
                        procs.load_cpu, logfile)
        label = "bench/upstream.py (asyncio Protocol" + (", uvloop)" if has("uvloop") else ")")
    url = f"http://127.0.0.1:{port}"
    wait_ready(url + "/v1/models", p, logfile)
    return url, p, label


#: The response cache each ``--cache`` choice serves with.
CACHES = {
    "memory": {"backend": "memory", "ttl": "1h"},
    "redis": {"backend": "redis", "ttl": "1h",
              "options": {"url": "redis://127.0.0.1:6379/0", "prefix": "ferro-bench:"}},
}


#: The stored API key of the keys and production cells (made at start-up as the bootstrap
#: key), which the load generator sends.
BENCH_KEY = "fgw_bench-key-0123456789abcdefghijklmnopqrstuv"
#: Where those cells keep it: SQLite in the run's work directory, no other store.
KEY_STORE = {"keys": {"backend": "sqlite", "dsn": "${BENCH_WORK}/keys.db"},
             "config": {"backend": "none"}, "request_logs": {"backend": "none"}}
#: What the production cells add to the bare config: every request needs the stored key,
#: is written to the request log (SQLite) and passes a Redis rate limit generous enough to
#: refuse none; the access log is on (JSON, into the server's log file).
PRODUCTION = {
    "storage": {**KEY_STORE,
                "request_logs": {"backend": "sqlite", "dsn": "${BENCH_WORK}/requests.db"}},
    "plugins": [{"name": "ratelimit", "stage": "before_request", "config": {
        "per_key": {"requests_per_second": 1_000_000, "burst": 1_000_000},
        "backend": "redis",
        "redis": {"url": "redis://127.0.0.1:6379/0", "prefix": "ferro-bench:ratelimit:"}}}],
    "logging": {"format": "json", "requests": True},
}
#: The plugins the generated configs load (FERRO_LOAD_PLUGINS): the bare gateway's, and
#: what the production cells add (the metrics plugin serves /metrics from being loaded).
BARE_PLUGINS = ("openai", "single")
PRODUCTION_PLUGINS = ("metrics-prometheus", "ratelimit", "storage-sqlite")
KEYED = ("keys", "production")


def auth_for(target: str) -> str:
    """The ``Authorization`` header the load generator sends to ``target``."""
    return f"Bearer {BENCH_KEY}" if target in KEYED else ""


def gateway_config(work: Path, upstream: str, a: argparse.Namespace,
                   target: str = "gateway") -> Path:
    if a.gateway_config:
        return Path(a.gateway_config).resolve()  # may use ${BENCH_UPSTREAM}
    path = work / f"{target}.json"
    config: dict[str, Any] = {
        "providers": {"openai": {"type": "openai", "api_key": "bench",
                                 "base_url": upstream + "/v1"}},
        "targets": [{"virtual_key": "openai"}],
        "strategy": {"mode": "single"},
        "logging": {"requests": False},
    }
    if a.cache:
        config["cache"] = CACHES[a.cache]
    if target == "keys":
        config["storage"] = KEY_STORE
    if target == "production":
        config.update(PRODUCTION)
    path.write_text(json.dumps(config, indent=1))
    return path


def gateway_plugins(target: str, a: argparse.Namespace) -> str:
    """FERRO_LOAD_PLUGINS for ``target`` with a generated config."""
    plugins = [*BARE_PLUGINS, *([f"cache-{a.cache}"] if a.cache else [])]
    if target == "keys":
        plugins.append("storage-sqlite")
    if target == "production":
        plugins += PRODUCTION_PLUGINS
    return ",".join(plugins)


def start_proxy(target: str, procs: Procs, work: Path, upstream: str,
                a: argparse.Namespace) -> tuple[str, subprocess.Popen]:
    port = free_port()
    logfile = work / f"{target}.log"
    env = dict(os.environ, BENCH_UPSTREAM=upstream + "/v1", BENCH_WORK=str(work),
               ADMIN_BOOTSTRAP_KEY=BENCH_KEY)
    if target == "floor":
        cmd = [sys.executable, str(HERE / "floor_proxy.py"), "--port", str(port),
               "--upstream", upstream]
        ready = "/v1/models"
    else:
        launcher = ([sys.executable, str(HERE / "gateway_with_listener.py")]
                    if a.with_listener else [a.ferrogw])
        cmd = [*launcher, "serve", "--config",
               str(gateway_config(work, upstream, a, target)),
               "--host", "127.0.0.1", "--port", str(port)]
        if target == "workers":
            cmd += ["--workers", str(a.workers)]
        if not a.gateway_config:
            env["FERRO_LOAD_PLUGINS"] = gateway_plugins(target, a)
        ready = "/health/ready"
    p = procs.start(cmd, procs.proxy_cpu, logfile, env)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url + ready, p, logfile)
    return url, p


# --- environment ------------------------------------------------------------------------------


def has(module: str) -> bool:
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def version_of(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def tool_version(cmd: list[str]) -> str | None:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = (p.stdout + p.stderr).strip().splitlines()
    if not out:
        return None
    return out[0].split(" [", 1)[0].split(" Copyright", 1)[0].removeprefix("nginx version: ")


def environment(a: argparse.Namespace, procs: Procs, upstream_label: str) -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    commit = None
    with contextlib.suppress(Exception):
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=5).stdout.strip() or None
    return {
        "cpu": cpu, "nproc": os.cpu_count(), "kernel": platform.release(),
        "python": platform.python_version(), "commit": commit,
        "ferro": version_of("ferro") or version_of("ferro-kernel"),
        "aiohttp": version_of("aiohttp"), "uvloop": version_of("uvloop"),
        "loadgen": a.loadgen, "upstream": upstream_label,
        "wrk": tool_version(["wrk", "--version"]) if a.loadgen == "wrk" else None,
        "nginx": tool_version(["nginx", "-v"]) if a.upstream == "nginx" else None,
        "load_cpu": procs.load_cpu, "proxy_cpu": procs.proxy_cpu,
        "pinning": ("taskset" if procs.taskset else "sched_setaffinity")
        if procs.proxy_cpu is not None else "none",
    }


# --- report -----------------------------------------------------------------------------------


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def aggregate(rows: list[dict[str, Any]]) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Mean over runs of each (target, mode, conns) cell; errors are summed."""
    cells: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for r in rows:
        cells.setdefault((r["target"], r["mode"], r["conns"]), []).append(r)
    out = {}
    for key, rs in cells.items():
        agg: dict[str, Any] = {"runs": len(rs)}
        for f in ("rps", "p50_us", "p90_us", "p99_us", "load_util", "other_util", "steal_util"):
            agg[f] = mean([r[f] for r in rs])
        for f in ("cpu_us_per_req", "cpu_util", "reads_per_req", "writes_per_req"):
            vals = [r[f] for r in rs if r.get(f) is not None]
            agg[f] = mean(vals) if vals else None
        agg["sock"] = sum(r["err_connect"] + r["err_read"] + r["err_write"] + r["err_timeout"]
                          for r in rs)
        agg["non2xx"] = sum(r["non2xx"] for r in rs)
        agg["bad"] = sum(r["bad_body"] for r in rs)
        agg["sample"] = next((r["bad_sample"] for r in rs if r["bad_sample"]), "")
        out[key] = agg
    return out


def ms(us: float) -> str:
    return f"{us / 1000:.3f}" if us < 10_000 else f"{us / 1000:.1f}"


def report(result: dict[str, Any]) -> tuple[str, list[str]]:
    a, env = result["args"], result["env"]
    cells = aggregate(result["rows"])
    warnings: list[str] = []
    pin = (f"load+upstream on cpu{env['load_cpu']}, proxy on cpu{env['proxy_cpu']} "
           f"({env['pinning']})" if env["proxy_cpu"] is not None else "not pinned")
    lines = [
        f"Ferro bench {result['started']}  commit {env['commit']}  {env['nproc']} CPU "
        f"({env['cpu'] or '?'})",
        f"load: {env['loadgen']}{' (' + env['wrk'] + ')' if env.get('wrk') else ''}; "
        f"upstream: {env['upstream']}"
        f"{' (' + env['nginx'] + ')' if env.get('nginx') else ''}; {pin}",
        f"{a['duration']:g} s per cell, {a['runs']} run(s) (mean shown), {a['warmup']:g} s warmup "
        f"per mode; errors = socket / non-2xx / bad body",
        *(["gateway: with one exchange_completed listener reading status and usage"]
          if a.get("with_listener") else []),
        *([f"gateway: {a['cache']} response cache on (all but a cell's first request are hits)"]
          if a.get("cache") else []),
        *(["keys: a stored API key (SQLite key store) on every request"]
          if "keys" in a["targets"] else []),
        *(["production: stored API key, request log (SQLite), Redis rate limit (refusing "
           "none), metrics plugin, JSON access log (to a file)"]
          if "production" in a["targets"] else []),
        *([f"workers: the bare gateway with --workers {a['workers']}, all on the proxy CPU"]
          if "workers" in a["targets"] else []),
        "",
        "| target | mode | c | RPS | p50 ms | p90 ms | p99 ms | +p50 vs direct @c=1 ms "
        "| proxy CPU us/req | proxy util | proxy syscalls/req r/w | load util | other util "
        "| errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for (target, mode, c), x in sorted(cells.items(), key=lambda kv: (
            TARGETS.index(kv[0][0]), MODES.index(kv[0][1]), kv[0][2])):
        base = cells.get(("direct", mode, c))
        added = (f"{(x['p50_us'] - base['p50_us']) / 1000:+.3f}"
                 if c == 1 and target != "direct" and base else "-")
        cpu = f"{x['cpu_us_per_req']:.0f}" if x["cpu_us_per_req"] is not None else "-"
        util = f"{x['cpu_util']:.2f}" if x["cpu_util"] is not None else "-"
        calls = (f"{x['reads_per_req']:.1f}/{x['writes_per_req']:.1f}"
                 if x["reads_per_req"] is not None else "-")
        lines.append(f"| {target} | {mode} | {c} | {x['rps']:.0f} | {ms(x['p50_us'])} | "
                     f"{ms(x['p90_us'])} | {ms(x['p99_us'])} | {added} | {cpu} | {util} | {calls} | "
                     f"{x['load_util']:.2f} | {x['other_util'] + x['steal_util']:.2f} | "
                     f"{x['sock']}/{x['non2xx']}/{x['bad']} |")
        if x["other_util"] + x["steal_util"] > 0.1:
            warnings.append(f"{target} {mode} c={c}: other processes used "
                            f"{x['other_util']:.2f} cores and the hypervisor stole "
                            f"{x['steal_util']:.2f}: this cell is noisy")
        if x["sock"] or x["non2xx"] or x["bad"]:
            warnings.append(f"{target} {mode} c={c}: errors {x['sock']}/{x['non2xx']}/{x['bad']}"
                            + (f", first bad reply: {x['sample'][:160]!r}" if x["sample"] else ""))
        if target != "direct" and c >= 32 and x["cpu_util"] is not None and x["cpu_util"] < 0.9:
            warnings.append(f"{target} {mode} c={c}: proxy only {x['cpu_util']:.0%} busy "
                            f"(load side {x['load_util']:.0%}): the load side or noise may be the limit")
        if target != "direct" and c >= 32 and x["load_util"] > 0.8:
            warnings.append(f"{target} {mode} c={c}: the load generator and upstream used "
                            f"{x['load_util']:.0%} of their CPU: they may be the limit")
    ratio = [(t, m, c) for t in GATEWAYS for m in MODES for c in a["conns"]
             if ("floor", m, c) in cells and (t, m, c) in cells]
    if ratio:
        lines += ["", "| target | mode | c | RPS / floor's | CPU per request / floor's |",
                  "|---|---|---:|---:|---:|"]
        for t, m, c in ratio:
            f, g = cells[("floor", m, c)], cells[(t, m, c)]
            rps = g["rps"] / f["rps"] if f["rps"] else float("nan")
            cpu = (g["cpu_us_per_req"] / f["cpu_us_per_req"]
                   if f["cpu_us_per_req"] and g["cpu_us_per_req"] else float("nan"))
            lines.append(f"| {t} | {m} | {c} | {rps:.2f} | {cpu:.2f} |")
    mem = result.get("memory", {})
    if mem:
        lines.append("")
        lines.append("peak RSS (VmHWM): " + ", ".join(
            f"{t} {v['peak_hwm_kb'] / 1024:.0f} MiB" for t, v in mem.items()))
    return "\n".join(lines), warnings


# --- main -------------------------------------------------------------------------------------


def cell(label: str, load: Load, url: str, proc: subprocess.Popen | None,
         up_proc: subprocess.Popen, mode: str, c: int, duration: float,
         auth: str = "") -> dict[str, Any]:
    """One measured cell: load on ``url`` (each request with ``auth``, when set) plus the
    CPU, system calls and noise around it."""
    time.sleep(0.5)
    cpu0 = cpu_seconds(proc.pid) if proc else 0.0
    io0 = io_calls(proc.pid) if proc else (0, 0)
    up0 = cpu_seconds(up_proc.pid)
    t0, w0 = cpu_ticks(), time.monotonic()
    res = load.run(url, mode, c, duration, auth)
    t1, wall = cpu_ticks(), time.monotonic() - w0
    secs = res["duration_us"] / 1e6
    # the load generator's CPU includes its start and exit: divide by the wall time of the
    # whole call, as for the machine-wide figures below
    load_s = res.pop("load_cpu_s") + cpu_seconds(up_proc.pid) - up0
    res["load_util"] = load_s / wall
    cpu = cpu_seconds(proc.pid) - cpu0 if proc else 0.0
    n = max(res["requests"], 1)
    if proc:
        io1 = io_calls(proc.pid)
        res["cpu_s"] = cpu
        res["cpu_us_per_req"] = 1e6 * cpu / n
        res["cpu_util"] = cpu / secs
        res["reads_per_req"] = (io1[0] - io0[0]) / n
        res["writes_per_req"] = (io1[1] - io0[1]) / n
    else:
        res["cpu_us_per_req"] = res["cpu_util"] = None
        res["reads_per_req"] = res["writes_per_req"] = None
    # CPU used by anything but this benchmark, and CPU time stolen by the hypervisor: both
    # make a cell noisy
    busy = (t1["cpu"][0] - t0["cpu"][0]) / TICK
    res["other_util"] = max(0.0, busy - load_s - cpu) / wall
    res["steal_util"] = (t1["cpu"][1] - t0["cpu"][1]) / TICK / wall
    errs = (res["err_connect"] + res["err_read"] + res["err_write"] + res["err_timeout"],
            res["non2xx"], res["bad_body"])
    log(f"[bench] {label} {mode:9} c={c:<4} rps={res['rps']:9.1f} p50={ms(res['p50_us'])}ms "
        f"p99={ms(res['p99_us'])}ms errors={'/'.join(map(str, errs))}"
        + (f" cpu={res['cpu_us_per_req']:.0f}us/req util={res['cpu_util']:.2f} syscalls/req "
           f"r={res['reads_per_req']:.1f} w={res['writes_per_req']:.1f}" if proc else ""))
    return res


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=5, help="seconds per cell (default 5)")
    ap.add_argument("--runs", type=int, default=1, help="repeat the matrix N times (default 1)")
    ap.add_argument("--conns", default="1,32", help="concurrency levels (default 1,32; "
                    "e.g. 1,32,128)")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--workers", type=int, default=2,
                    help="worker processes of the `workers` target (default 2)")
    ap.add_argument("--warmup", type=float, default=1, help="seconds of c=8 load per mode "
                    "before measuring a target (default 1; 0 = none)")
    ap.add_argument("--timeout", type=float, default=10, help="per-request timeout, s")
    ap.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    ap.add_argument("--upstream", choices=("auto", "nginx", "python"), default="auto")
    ap.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    ap.add_argument("--gateway-config", help="gateway config to use instead of the generated "
                    "one; ${BENCH_UPSTREAM} expands to the fake upstream's /v1 URL")
    ap.add_argument("--ferrogw", default=str(Path(sys.executable).parent / "ferrogw"),
                    help="the gateway executable (default: next to this Python)")
    ap.add_argument("--cache", choices=sorted(CACHES),
                    help="serve the gateway with this response cache: a cell sends one "
                         "request over and over, so all but the first are cache hits")
    ap.add_argument("--with-listener", action="store_true",
                    help="serve the gateway with one exchange_completed listener that reads "
                         "status and usage (bench/gateway_with_listener.py)")
    ap.add_argument("--out", default=str(HERE / "results"), help="where the JSON/MD results go")
    ap.add_argument("--keep-work", action="store_true",
                    help="keep the temp folder with configs and server logs")
    a = ap.parse_args()
    a.conns = [int(c) for c in a.conns.split(",") if c.strip()]
    a.modes = [m.strip() for m in a.modes.split(",") if m.strip()]
    a.targets = [t.strip() for t in a.targets.split(",") if t.strip()]
    for m in a.modes:
        if m not in MODES:
            ap.error(f"unknown mode {m!r}")
    for t in a.targets:
        if t not in TARGETS:
            ap.error(f"unknown target {t!r}")
    a.targets = [t for t in TARGETS if t in a.targets]
    if a.loadgen == "auto":
        a.loadgen = "wrk" if shutil.which("wrk") else "python"
    elif a.loadgen == "wrk" and not shutil.which("wrk"):
        ap.error("wrk is not installed")
    nginx_ok = bool(shutil.which("nginx")) and fake.lua_modules() is not None
    if a.upstream == "auto":
        a.upstream = "nginx" if nginx_ok else "python"
    elif a.upstream == "nginx" and not nginx_ok:
        ap.error("nginx with the Lua module (ngx_http_lua_module.so) is not installed")
    if "production" in a.targets and not a.gateway_config and not redis_answers():
        ap.error("the production target needs Redis on 127.0.0.1:6379 (its rate limit): "
                 "start it, or leave the target out (--targets)")
    if set(GATEWAYS) & set(a.targets) and not os.access(a.ferrogw, os.X_OK):
        found = shutil.which("ferrogw")
        if not found:
            ap.error(f"{a.ferrogw} not found: run `make install` first")
        a.ferrogw = found
    return a


def redis_answers() -> bool:
    """Whether the Redis on 127.0.0.1:6379 answers a PING."""
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def main() -> int:
    a = parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    load_cpu = proxy_cpu = None
    if not a.no_pin and len(cpus) >= 2:
        load_cpu, proxy_cpu = cpus[0], cpus[1]
    procs = Procs(load_cpu, proxy_cpu)
    work = Path(tempfile.mkdtemp(prefix="ferro-bench-"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    rows: list[dict[str, Any]] = []
    memory: dict[str, Any] = {}
    try:
        up_url, up_proc, up_label = start_upstream(a.upstream, procs, work)
        env = environment(a, procs, up_label)
        log(f"[bench] upstream {up_label} at {up_url}; load: {a.loadgen}; work dir {work}")
        load = Load(a.loadgen, procs, a.timeout)
        for run in range(1, a.runs + 1):
            # All targets are up at once (the idle one costs nothing) and the cells alternate
            # between them, so that each gateway cell is measured right after the matching
            # floor cell and slow drifts of the machine's speed do not bias the ratios.
            live: dict[str, tuple[str, subprocess.Popen | None]] = {}
            for target in a.targets:
                live[target] = ((up_url, None) if target == "direct"
                                else start_proxy(target, procs, work, up_url, a))
            for target, (url, _proc) in live.items():
                for mode in a.modes:
                    preflight(url, mode, auth_for(target))
                    if a.warmup > 0:
                        load.run(url, mode, 8, a.warmup, auth_for(target))
            for mode in a.modes:
                for c in a.conns:
                    for target, (url, proc) in live.items():
                        res = cell(f"run {run} {target:10}", load, url, proc, up_proc, mode,
                                   c, a.duration, auth_for(target))
                        res.update(target=target, mode=mode, conns=c, run=run)
                        rows.append(res)
            for target, (_url, proc) in live.items():
                if proc:
                    rss, hwm = memory_kb(proc.pid)
                    prev = memory.get(target, {"peak_hwm_kb": 0})
                    memory[target] = {"peak_hwm_kb": max(prev["peak_hwm_kb"], hwm),
                                      "end_rss_kb": rss}
                    procs.stop(proc)
    except KeyboardInterrupt:
        log("[bench] interrupted")
        return 130
    finally:
        procs.stop_all()
        if a.keep_work:
            log(f"[bench] work dir kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    result = {"started": started, "args": vars(a), "env": env, "rows": rows, "memory": memory}
    table, warnings = report(result)
    print(table)
    for w in warnings:
        print(f"warning: {w}")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / ("bench-" + time.strftime("%Y%m%d-%H%M%S"))
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1))
    stem.with_suffix(".md").write_text(table + "\n" + "".join(f"\nwarning: {w}" for w in warnings)
                                       + "\n")
    shown = stem.relative_to(ROOT) if stem.is_relative_to(ROOT) else stem
    print(f"\nresults: {shown}.json, {shown}.md")
    errors = any(r["err_connect"] + r["err_read"] + r["err_write"] + r["err_timeout"]
                 + r["non2xx"] + r["bad_body"] for r in rows)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
