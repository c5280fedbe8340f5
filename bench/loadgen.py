"""Closed-loop HTTP/1.1 load generator, used by run.py when wrk is not installed.

Like ``wrk -s chat.lua`` it keeps ``--conns`` keep-alive connections busy for ``--duration``
seconds, each sending the next request as soon as the previous answer is complete, and checks
every response: a 2xx whose body (de-chunked) contains each ``--expect`` string. It is a raw
asyncio ``Protocol`` client (uvloop when installed) so that it costs little CPU per request.
It prints one ``BENCHJSON {...}`` line with the same fields as chat.lua's.

    python bench/loadgen.py --url http://127.0.0.1:4100 --conns 32 --duration 5 --mode stream \\
        --expect 'Hello!' --expect '[DONE]'
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import time
from urllib.parse import urlsplit

MODES = ("nonstream", "stream", "embeddings")
#: What the embeddings request embeds: 8 chunks of a document, as an indexing job sends them.
EMBED_TEXTS = [f"Chunk {i} of the Ferro bench document: a paragraph of plain text to index."
               for i in range(1, 9)]


def request_for(mode: str) -> tuple[str, bytes]:
    """The path and body every load generator sends for ``mode`` (run.py hands the same
    bytes to chat.lua)."""
    if mode == "embeddings":
        body = json.dumps({"model": "text-embedding-3-small", "input": EMBED_TEXTS,
                           "encoding_format": "float", "dimensions": 256},
                          separators=(",", ":"))
        return "/v1/embeddings", body.encode()
    return "/v1/chat/completions", (
        b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello in one '
        b'sentence."}]' + (b',"stream":true' if mode == "stream" else b"")
        + b',"max_tokens":64}')


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.non2xx = self.bad_body = 0
        self.err_connect = self.err_read = self.err_write = self.err_timeout = 0
        self.sample = ""


class Conn(asyncio.Protocol):
    __slots__ = ("body_parts", "buf", "chunked", "close_after", "gen", "inflight", "length",
                 "pos", "state", "status", "t0", "transport")

    def __init__(self, gen: LoadGen) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.inflight = False
        self.t0 = 0.0

    # --- sending --------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.gen.conns.add(self)
        if self.gen.running:
            self.send()
        else:
            transport.close()

    def send(self) -> None:
        self.buf = bytearray()
        self.state = 0
        self.pos = 0
        self.body_parts: list[bytes] = []
        self.inflight = True
        self.t0 = time.perf_counter()
        self.transport.write(self.gen.request)  # type: ignore[union-attr]

    # --- receiving ------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if not self.inflight:
            return
        self.buf += data
        buf = self.buf
        if self.state == 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            try:
                self.status = int(head[9:12])
            except ValueError:
                self.status = 0
            self.chunked = b"transfer-encoding: chunked" in head
            self.close_after = b"connection: close" in head
            i = head.find(b"\r\ncontent-length:")
            if i >= 0:
                j = head.find(b"\r\n", i + 2)
                self.length = int(head[i + 17:j if j > 0 else len(head)])
            else:
                self.length = -1  # chunked, or until the connection closes
            self.pos = end + 4
            self.state = 1
        if self.chunked:
            pos = self.pos
            while True:
                nl = buf.find(b"\r\n", pos)
                if nl < 0:
                    break
                size = int(bytes(buf[pos:nl]).split(b";", 1)[0], 16)
                if size == 0:
                    if len(buf) < nl + 4:
                        break
                    if buf[nl + 2:nl + 4] != b"\r\n" and buf.find(b"\r\n\r\n", nl) < 0:
                        break  # trailers not complete yet
                    self.pos = pos
                    self.finish(b"".join(self.body_parts))
                    return
                if len(buf) < nl + 2 + size + 2:
                    break
                self.body_parts.append(bytes(buf[nl + 2:nl + 2 + size]))
                pos = nl + 2 + size + 2
            self.pos = pos
        elif self.length >= 0 and len(buf) - self.pos >= self.length:
            self.finish(bytes(buf[self.pos:self.pos + self.length]))

    def finish(self, body: bytes) -> None:
        gen = self.gen
        now = time.perf_counter()
        self.inflight = False
        if now < gen.deadline:  # only answers completed within the duration count
            gen.record(self.status, body, now - self.t0)
            if self.close_after:
                self.transport.close()  # type: ignore[union-attr]
            else:
                self.send()
        elif not gen.conns_inflight():
            gen.drained.set()

    def connection_lost(self, exc: Exception | None) -> None:
        gen = self.gen
        gen.conns.discard(self)
        if self.inflight:
            self.inflight = False
            if self.state == 1 and self.length < 0 and not self.chunked:
                self.finish(bytes(self.buf[self.pos:]))  # body delimited by close
                return
            if time.perf_counter() < gen.deadline:
                gen.stats.err_read += 1
        if gen.running:
            gen.spawn_connect()
        elif not gen.conns_inflight():
            gen.drained.set()


class LoadGen:
    def __init__(self, host: str, port: int, conns: int, duration: float, timeout: float,
                 mode: str, expect: list[bytes], auth: str) -> None:
        self.host, self.port = host, port
        self.nconns, self.duration, self.timeout = conns, duration, timeout
        self.expect = expect
        path, body = request_for(mode)
        head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n")
        if auth:
            head += f"Authorization: {auth}\r\n"
        self.request = (head + "\r\n").encode() + body
        self.stats = Stats()
        self.conns: set[Conn] = set()
        self.running = False
        self.deadline = math.inf
        self.drained = asyncio.Event()

    def conns_inflight(self) -> bool:
        return any(c.inflight for c in self.conns)

    def record(self, status: int, body: bytes, elapsed: float) -> None:
        st = self.stats
        st.latencies.append(elapsed)
        if not 200 <= status <= 299:
            st.non2xx += 1
        elif all(e in body for e in self.expect):
            return
        else:
            st.bad_body += 1
        if not st.sample:
            st.sample = f"{status} {body[:200].decode('utf-8', 'replace')}"

    def spawn_connect(self) -> None:
        asyncio.get_running_loop().create_task(self.connect())

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        while self.running:
            try:
                await loop.create_connection(lambda: Conn(self), self.host, self.port)
                return
            except OSError:
                self.stats.err_connect += 1
                await asyncio.sleep(0.05)

    async def run(self) -> dict:
        self.running = True
        start = time.perf_counter()
        self.deadline = start + self.duration
        for _ in range(self.nconns):
            self.spawn_connect()
        while True:  # per-request timeouts, checked 10 times a second
            now = time.perf_counter()
            if now >= self.deadline:
                break
            for c in list(self.conns):
                if c.inflight and now - c.t0 > self.timeout:
                    c.inflight = False
                    self.stats.err_timeout += 1
                    c.transport.abort()  # type: ignore[union-attr]
            await asyncio.sleep(min(0.1, self.deadline - now))
        self.running = False
        elapsed = time.perf_counter() - start
        # let requests in flight finish (not counted) so the server sees no resets, then close
        if self.conns_inflight():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.drained.wait(), min(self.timeout, 5.0))
        for c in list(self.conns):
            if c.transport is not None:
                c.transport.close()
        await asyncio.sleep(0)
        return self.summary(elapsed)

    def summary(self, elapsed: float) -> dict:
        st = self.stats
        lat = sorted(st.latencies)
        n = len(lat)

        def pct(p: float) -> int:
            if not n:
                return 0
            return round(lat[min(n - 1, max(0, math.ceil(p / 100 * n) - 1))] * 1e6)

        return {
            "requests": n, "duration_us": round(elapsed * 1e6),
            "p50_us": pct(50), "p90_us": pct(90), "p99_us": pct(99),
            "max_us": round(lat[-1] * 1e6) if n else 0,
            "mean_us": round(sum(lat) / n * 1e6, 1) if n else 0.0,
            "err_connect": st.err_connect, "err_read": st.err_read, "err_write": st.err_write,
            "err_timeout": st.err_timeout, "non2xx": st.non2xx, "bad_body": st.bad_body,
            "bad_sample": st.sample,
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="base URL, e.g. http://127.0.0.1:4100")
    ap.add_argument("--conns", type=int, default=1)
    ap.add_argument("--duration", type=float, default=5.0, help="seconds")
    ap.add_argument("--timeout", type=float, default=10.0, help="per-request timeout, seconds")
    ap.add_argument("--mode", choices=MODES, default="nonstream",
                    help="chat (nonstream, stream) or embeddings")
    ap.add_argument("--expect", action="append", default=[],
                    help="string every 2xx body must contain (repeatable)")
    ap.add_argument("--auth", default="", help="Authorization header value")
    ap.add_argument("--no-uvloop", action="store_true")
    a = ap.parse_args()
    url = urlsplit(a.url)
    if url.scheme != "http" or not url.hostname:
        ap.error("--url must be http://HOST:PORT")

    async def go() -> dict:
        gen = LoadGen(url.hostname, url.port or 80, a.conns, a.duration, a.timeout, a.mode,
                      [e.encode() for e in a.expect], a.auth)
        return await gen.run()

    run = asyncio.run
    if not a.no_uvloop:
        try:
            import uvloop
            run = uvloop.run
        except (ImportError, AttributeError):
            pass
    print("BENCHJSON " + json.dumps(run(go())), flush=True)


if __name__ == "__main__":
    main()
