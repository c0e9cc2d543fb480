"""Benchmark the HTTP service over loopback (not a test): requests/s and p50/p99 latency with concurrent clients.

    python bench/service_bench.py [--requests 400] [--clients 4]

Starts `notecheck serve` on a free loopback port, sends a typical ~400-word operative note (a sample note padded to
400 words with its own description) from N client threads over keep-alive connections, and prints the figures.
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


def typical_note(words: int = 400) -> str:
    text = (ROOT / "sample_notes" / "27252_closed_general.txt").read_text(encoding="utf-8")
    while len(text.split()) < words:
        text += "\nADDENDUM: " + " ".join(text.split()[200:260])
    return text


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
                               "warning", "--workers", str(args.workers)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        note = typical_note()
        body = json.dumps({"text": note}).encode()
        latencies: list[float] = []
        failures = 0
        lock = threading.Lock()
        per_client = args.requests // args.clients

        def client() -> None:
            nonlocal failures
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            for _ in range(per_client):
                t0 = time.perf_counter()
                conn.request("POST", "/v1/check", body=body, headers={"content-type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                dt = time.perf_counter() - t0
                with lock:
                    latencies.append(dt)
                    failures += resp.status != 200
            conn.close()

        for _ in range(20):  # warm-up
            urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/v1/check", data=body,
                                                          headers={"content-type": "application/json"}))
        start = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
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
    print(f"note: {len(note.split())} words; {len(lat)} requests from {args.clients} clients to {args.workers} "
          f"server process(es) in {wall:.2f} s")
    print(f"requests/s {len(lat) / wall:.1f}   p50 {p(0.50):.1f} ms   p99 {p(0.99):.1f} ms   "
          f"mean {1000 * statistics.mean(lat):.1f} ms   failed {failures}")


if __name__ == "__main__":
    main()
