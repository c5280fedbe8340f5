#!/usr/bin/env python3
"""Where does the gateway's CPU go? Sample it with py-spy under the same load as run.py.

Starts the fake upstream and the gateway (or the floor proxy) exactly as run.py does,
drives closed-loop load at --conns for each mode and, meanwhile, records the proxy with
``py-spy record --format raw``. Idle frames are left out, so samples are roughly CPU time.
py-spy pauses the process for each sample: with ``--nonblocking`` about 40 % of the stacks
came out cut off under uvloop, so it is not used. It prints, per mode, the self samples by
package and by function and the inclusive samples of ferro's functions, and saves the raw
collapsed stacks to bench/results/ (flamegraph.pl or speedscope.app draw them).

Needs py-spy (``.venv/bin/pip install py-spy``) and the right to ptrace the proxy (root,
or kernel.yama.ptrace_scope=0).

    .venv/bin/python bench/profile.py [--target gateway] [--conns 32] [--duration 10]
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as bench  # noqa: E402

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def parse_raw(path: Path) -> list[tuple[list[str], int]]:
    """py-spy's raw (collapsed) output: ``frame;frame;... count`` per line, root first."""
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def frame_key(frame: str) -> tuple[str, str]:
    m = FRAME.match(frame)
    if not m:
        return frame, ""
    return m.group("func"), m.group("file")


def package_of(file: str) -> str:
    """The top-level package of a py-spy file name (py-spy shortens them to the import path,
    e.g. ``aiohttp/web_protocol.py``, ``ferro/app.py``, ``uuid.py``)."""
    f = file.replace("\\", "/")
    if "/site-packages/" in f:
        f = f.split("/site-packages/", 1)[1]
    elif "/lib/python3" in f:
        f = f.split("/lib/python3", 1)[1].split("/", 2)[-1]
    if not f:
        return "?"
    return f.split("/", 1)[0].removesuffix(".py")


def short(func: str, file: str) -> str:
    return f"{func} ({file})"


def summarize(stacks: list[tuple[list[str], int]], top: int) -> str:
    total = sum(c for _, c in stacks)
    if not total:
        return "no samples (is the proxy busy? can py-spy attach?)"
    self_fn: collections.Counter = collections.Counter()
    incl_fn: collections.Counter = collections.Counter()
    self_pkg: collections.Counter = collections.Counter()
    for frames, count in stacks:
        keys = [frame_key(f) for f in frames]
        if keys:
            self_fn[keys[-1]] += count
            self_pkg[package_of(keys[-1][1])] += count
        for k in set(keys):
            incl_fn[k] += count

    def pct(n: int) -> str:
        return f"{100 * n / total:5.1f}%"

    out = [f"{total} samples"]
    out.append("\nself time by package (C code, e.g. uvloop's loop and socket calls, orjson, "
               "counts for the Python frame that called it):")
    out += [f"  {pct(n)}  {pkg}" for pkg, n in self_pkg.most_common(top)]
    out.append("\nself time by function:")
    out += [f"  {pct(n)}  {short(*k)}" for k, n in self_fn.most_common(top)]
    out.append("\ninclusive time, ferro code (frames in every stack left out):")
    ferro = [(k, n) for k, n in incl_fn.most_common()
             if package_of(k[1]).startswith("ferro") and n < 0.995 * total][:top]
    out += [f"  {pct(n)}  {short(*k)}" for k, n in ferro]
    out.append("\ninclusive time, everything (frames in every stack left out):")
    out += [f"  {pct(n)}  {short(*k)}" for k, n in incl_fn.most_common()
            if n < 0.995 * total][:top]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", choices=("gateway", "production", "floor"), default="gateway",
                    help="as run.py's targets (production: with the production set on)")
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--duration", type=float, default=10, help="seconds sampled per mode")
    ap.add_argument("--modes", default="nonstream,stream")
    ap.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    ap.add_argument("--upstream", choices=("auto", "nginx", "python"), default="auto")
    ap.add_argument("--gateway-config")
    ap.add_argument("--ferrogw", default=str(Path(sys.executable).parent / "ferrogw"))
    ap.add_argument("--with-listener", action="store_true",
                    help="as run.py's: one exchange_completed listener reading status and usage")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.set_defaults(cache=None)  # run.py's gateway config reads it
    a = ap.parse_args()
    auth = bench.auth_for(a.target)
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not os.access(pyspy, os.X_OK):
        sys.exit("py-spy is not installed: .venv/bin/pip install py-spy")
    if a.loadgen == "auto":
        a.loadgen = "wrk" if shutil.which("wrk") else "python"
    if a.upstream == "auto":
        a.upstream = ("nginx" if shutil.which("nginx") and bench.fake.lua_modules() is not None
                      else "python")
    cpus = sorted(os.sched_getaffinity(0))
    procs = bench.Procs(*(cpus[:2] if len(cpus) >= 2 else (None, None)))
    work = Path(tempfile.mkdtemp(prefix="ferro-profile-"))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        up_url, _up, label = bench.start_upstream(a.upstream, procs, work)
        url, proc = bench.start_proxy(a.target, procs, work, up_url, a)
        load = bench.Load(a.loadgen, procs, 10)
        print(f"{a.target} pid {proc.pid} on cpu{procs.proxy_cpu}; upstream {label}; "
              f"load {a.loadgen} c={a.conns}", flush=True)
        for mode in [m.strip() for m in a.modes.split(",") if m.strip()]:
            bench.preflight(url, mode, auth)
            load.run(url, mode, 8, 2, auth)  # warmup
            raw = out / f"profile-{a.target}-{mode}-c{a.conns}-{stamp}.txt"
            spy = subprocess.Popen(
                [pyspy, "record", "--pid", str(proc.pid), "--duration", str(round(a.duration)),
                 "--rate", str(a.rate), "--format", "raw", "--output",
                 str(raw)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            time.sleep(0.5)  # let py-spy attach before the load starts
            cpu0 = bench.cpu_seconds(proc.pid)
            res = load.run(url, mode, a.conns, a.duration, auth)
            cpu = bench.cpu_seconds(proc.pid) - cpu0
            try:
                _, err = spy.communicate(timeout=a.duration + 30)
            except subprocess.TimeoutExpired:
                spy.kill()
                _, err = spy.communicate()
            if spy.returncode != 0 or not raw.exists():
                print(f"py-spy failed (rc={spy.returncode}): {err[-800:]}")
                return 1
            errors = (res["err_connect"] + res["err_read"] + res["err_write"]
                      + res["err_timeout"] + res["non2xx"] + res["bad_body"])
            print(f"\n=== {a.target} {mode} c={a.conns}: {res['rps']:.0f} rps, "
                  f"{1e6 * cpu / max(res['requests'], 1):.0f} us CPU/req while sampled, "
                  f"errors {errors}; raw stacks: {raw}")
            print(summarize(parse_raw(raw), a.top), flush=True)
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
