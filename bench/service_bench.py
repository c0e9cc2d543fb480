"""Benchmark the HTTP service over loopback (not a test): requests/s and p50/p99 latency with concurrent clients.

    python bench/service_bench.py [--requests 400] [--clients 4]

Starts `notecheck serve` on a free loopback port, sends ~400-word operative notes (the corpus and sample notes cut or
padded to 400 words, as bench/speed.py does; each client cycles through them from its own offset, so the server sees
different notes, not one note again and again) from N client threads over keep-alive connections, and prints the
figures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def typical_notes(words: int = 400) -> list[str]:
    sys.path.insert(0, str(ROOT / "bench"))
    from speed import notes_of

    return notes_of(words)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2, help="server processes")
    args = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "notecheck", "serve", "--port", str(port), "--log-level",
                               "warning", "--workers", str(args.workers)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        notes = typical_notes()
        bodies = [json.dumps({"text": note}).encode() for note in notes]
        latencies: list[float] = []
        failures = 0
        lock = threading.Lock()
        per_client = args.requests // args.clients

        def client(offset: int) -> None:
            nonlocal failures
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            for k in range(per_client):
                body = bodies[(offset + k) % len(bodies)]
                t0 = time.perf_counter()
                conn.request("POST", "/v1/check", body=body, headers={"content-type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                dt = time.perf_counter() - t0
                with lock:
                    latencies.append(dt)
                    failures += resp.status != 200
            conn.close()

        for body in bodies[:20]:  # warm-up
            urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/v1/check", data=body,
                                                          headers={"content-type": "application/json"}))
        start = time.perf_counter()
        threads = [threading.Thread(target=client, args=(c * len(bodies) // args.clients,))
                   for c in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
    finally:
        server.terminate()
        server.wait()
    lat = sorted(latencies)
    p = lambda q: 1000 * lat[min(len(lat) - 1, int(q * len(lat)))]  # noqa: E731
    words = statistics.mean(len(n.split()) for n in notes)
    print(f"{len(notes)} different notes of ~{words:.0f} words; {len(lat)} requests from {args.clients} clients to "
          f"{args.workers} server process(es) in {wall:.2f} s")
    print(f"requests/s {len(lat) / wall:.1f}   p50 {p(0.50):.1f} ms   p99 {p(0.99):.1f} ms   "
          f"mean {1000 * statistics.mean(lat):.1f} ms   failed {failures}")


if __name__ == "__main__":
    main()
