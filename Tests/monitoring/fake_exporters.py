#!/usr/bin/env python3
"""Stand-ins for the Paredão metrics endpoints, for the monitoring tests.

Serves, in Prometheus text format, the metric names of the backend contract
(swift-prometheus 2.x style) on three ports: the vote API, the consumer and
RabbitMQ's rabbitmq_prometheus plugin. Counters grow at steady rates so that
rate() and histogram_quantile() have data.

A broker outage can be switched on and off:
    GET http://127.0.0.1:API_PORT/control?broker=down   (or =up)
While the broker is "down": votes answer 503 (reason broker), /readyz 503,
paredao_broker_up and paredao_consumer_broker_up are 0, reconnects grow, and
the RabbitMQ endpoint answers HTTP 503 (so up{job="rabbitmq"} == 0).

With --http-api, a fourth port serves a tiny stand-in of the vote API
(healthz, readyz, poll, challenges, sessions, votes) that answers 202 or
503 broker_unavailable by the same switch, counts into the metrics above and
writes JSON log lines to --log-dir/api.log: enough to rehearse
e2e_broker_outage.sh without the backend. The switch as a command:
    fake_exporters.py --ctl http://127.0.0.1:API_PORT stop|start

Prints one JSON line with the ports ({"api": N, "consumer": N, "rabbitmq": N,
"http": N}) once all listen. Stops on SIGTERM/SIGINT or after --max-seconds.
Standard library only.
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import math
import random
import signal
import sys
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
           0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]
BATCH_BUCKETS = [1, 10, 50, 100, 250, 500, 1000, 2000]
TICK = 0.1


class Histogram:
    def __init__(self, buckets):
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.sum = 0.0
        self.count = 0

    def observe(self, value):
        self.sum += value
        self.count += 1
        for i, b in enumerate(self.buckets):
            if value <= b:
                self.counts[i] += 1

    def lines(self, name, labels):
        out = []
        for b, c in zip(self.buckets, self.counts):
            out.append(f'{name}_bucket{fmt_labels(labels, le=fmt_float(b))} {c}')
        out.append(f'{name}_bucket{fmt_labels(labels, le="+Inf")} {self.count}')
        out.append(f'{name}_sum{fmt_labels(labels)} {self.sum!r}')
        out.append(f'{name}_count{fmt_labels(labels)} {self.count}')
        return out


def fmt_float(v):
    return repr(float(v))


def fmt_labels(labels, **extra):
    items = list(labels) + list(extra.items())
    if not items:
        return ""
    return "{" + ",".join(f'{k}="{v}"' for k, v in items) + "}"


class Simulation:
    """Traffic per second while the broker is up (route, method, status, reason)."""

    TRAFFIC = [
        ("/api/v1/votes", "POST", "202", None, 200.0),
        ("/api/v1/votes", "POST", "429", "rate", 5.0),
        ("/api/v1/votes", "POST", "401", "token", 2.0),
        ("/api/v1/votes", "POST", "422", "participant", 1.0),
        ("/api/v1/votes", "POST", "400", "invalid", 0.5),
        ("/api/v1/votes", "POST", "401", "budget", 0.5),
        ("/api/v1/votes", "POST", "503", "broker", 0.5),
        ("/api/v1/totals", "GET", "200", None, 20.0),
        ("/api/v1/challenges", "POST", "201", None, 3.0),
        ("/api/v1/sessions", "POST", "201", None, 3.0),
        ("/healthz", "GET", "200", None, 1.0),
        ("/readyz", "GET", "200", None, 1.0),
        ("unmatched", "GET", "404", None, 0.5),
    ]

    def __init__(self, seed=7):
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.broker_up = True
        self.acc = {}
        self.requests = {}          # (route, method, status) -> count
        self.durations = {}         # (route, method) -> Histogram
        self.accepted = 0
        self.rejected = {r: 0 for r in ("token", "rate", "budget", "participant", "broker", "invalid")}
        self.sessions_rejected = {r: 0 for r in ("solution_wrong", "challenge_expired")}
        self.confirm = Histogram(BUCKETS)
        self.reconnects = 0
        self.batch = Histogram(BATCH_BUCKETS)
        self.commit = Histogram(BUCKETS)
        self.counted = 0
        self.duplicates = 0
        self.dead = 0
        self.pending = 0.0
        for route, method, status, _, _ in self.TRAFFIC:
            self.requests[(route, method, status)] = 0
            self.durations.setdefault((route, method), Histogram(BUCKETS))
        self.requests[("/readyz", "GET", "503")] = 0

    def record(self, route, method, status, reason, seconds):
        """Count one request served by the stand-in HTTP API."""
        with self.lock:
            key = (route, method, status)
            self.requests[key] = self.requests.get(key, 0) + 1
            self.durations.setdefault((route, method), Histogram(BUCKETS)).observe(seconds)
            if status == "202":
                self.accepted += 1
                self.pending += 1
                self.confirm.observe(seconds * 0.7)
            if reason:
                self.rejected[reason] += 1

    def _take(self, key, rate):
        self.acc[key] = self.acc.get(key, 0.0) + rate * TICK
        n = int(self.acc[key])
        self.acc[key] -= n
        return n

    def tick(self):
        with self.lock:
            for route, method, status, reason, rate in self.TRAFFIC:
                if not self.broker_up and route == "/api/v1/votes" and status == "202":
                    status, reason = "503", "broker"
                if not self.broker_up and route == "/readyz":
                    status = "503"
                n = self._take((route, method, status, reason), rate)
                for _ in range(n):
                    self.requests[(route, method, status)] += 1
                    if status == "202":
                        d = self.rng.lognormvariate(math.log(0.003), 0.6)
                        self.confirm.observe(d * 0.7)
                        self.accepted += 1
                        self.pending += 1
                    elif status == "503":
                        d = self.rng.uniform(0.0002, 0.0006)
                    else:
                        d = self.rng.lognormvariate(math.log(0.0008), 0.5)
                    self.durations[(route, method)].observe(d)
                    if reason:
                        self.rejected[reason] += 1
            if not self.broker_up:
                self.reconnects += self._take("reconnect", 1.0)
                return
            self.sessions_rejected["solution_wrong"] += self._take("pow", 0.3)
            # The consumer drains what the API accepted, in batches.
            if self.pending >= 1:
                size = int(self.pending)
                self.pending -= size
                self.batch.observe(size)
                self.commit.observe(self.rng.lognormvariate(math.log(0.004), 0.4))
                dups = self._take("dup", 1.0)
                dead = self._take("dead", 0.0)
                self.duplicates += dups
                self.dead += dead
                self.counted += max(size - dups - dead, 0)

    def api_metrics(self):
        with self.lock:
            out = ["# HELP paredao_http_requests_total HTTP requests.",
                   "# TYPE paredao_http_requests_total counter"]
            for (route, method, status), c in sorted(self.requests.items()):
                out.append(f'paredao_http_requests_total{fmt_labels([("route", route), ("method", method), ("status", status)])} {c}')
            out += ["# TYPE paredao_http_request_duration_seconds histogram"]
            for (route, method), h in sorted(self.durations.items()):
                out += h.lines("paredao_http_request_duration_seconds", [("route", route), ("method", method)])
            out += ["# TYPE paredao_votes_accepted_total counter",
                    f"paredao_votes_accepted_total {self.accepted}",
                    "# TYPE paredao_votes_rejected_total counter"]
            for reason, c in sorted(self.rejected.items()):
                out.append(f'paredao_votes_rejected_total{{reason="{reason}"}} {c}')
            out += ["# TYPE paredao_sessions_rejected_total counter"]
            for reason, c in sorted(self.sessions_rejected.items()):
                out.append(f'paredao_sessions_rejected_total{{reason="{reason}"}} {c}')
            out += ["# TYPE paredao_publish_confirm_seconds histogram"]
            out += self.confirm.lines("paredao_publish_confirm_seconds", [])
            out += ["# TYPE paredao_broker_reconnects_total counter",
                    f"paredao_broker_reconnects_total {self.reconnects}",
                    "# TYPE paredao_broker_up gauge",
                    f"paredao_broker_up {1 if self.broker_up else 0}"]
            return "\n".join(out) + "\n"

    def consumer_metrics(self):
        with self.lock:
            out = ["# TYPE paredao_consumer_batch_size histogram"]
            out += self.batch.lines("paredao_consumer_batch_size", [])
            out += ["# TYPE paredao_consumer_commit_seconds histogram"]
            out += self.commit.lines("paredao_consumer_commit_seconds", [])
            out += ["# TYPE paredao_consumer_votes_counted_total counter",
                    f"paredao_consumer_votes_counted_total {self.counted}",
                    "# TYPE paredao_consumer_duplicates_total counter",
                    f"paredao_consumer_duplicates_total {self.duplicates}",
                    "# TYPE paredao_consumer_dead_lettered_total counter",
                    f"paredao_consumer_dead_lettered_total {self.dead}",
                    "# TYPE paredao_consumer_broker_up gauge",
                    f"paredao_consumer_broker_up {1 if self.broker_up else 0}"]
            return "\n".join(out) + "\n"

    def supervisor_metrics(self):
        """What supervisord's restart listener serves: nothing restarted."""
        lines = ["# TYPE paredao_process_restarts_total counter"]
        lines += [f'paredao_process_restarts_total{{program="{p}"}} 0' for p in ("consumer", "api", "nginx")]
        return "\n".join(lines) + "\n"

    def rabbitmq_metrics(self):
        with self.lock:
            if not self.broker_up:
                return None
            ready = self.rng.randint(0, 50)
            return ("# TYPE rabbitmq_queue_messages_ready gauge\n"
                    f"rabbitmq_queue_messages_ready {ready}\n"
                    "# TYPE rabbitmq_queues gauge\n"
                    "rabbitmq_queues 2\n")


def make_handler(sim, kind):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, code, body, ctype="text/plain; version=0.0.4; charset=utf-8"):
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urlparse(self.path)
            if kind == "api" and url.path == "/control":
                state = parse_qs(url.query).get("broker", [""])[0]
                if state not in ("up", "down"):
                    self._send(400, "broker=up|down\n")
                    return
                with sim.lock:
                    sim.broker_up = state == "up"
                self._send(200, f"broker {state}\n")
                return
            if url.path != "/metrics":
                self._send(404, "not found\n")
                return
            body = {"api": sim.api_metrics, "consumer": sim.consumer_metrics,
                    "rabbitmq": sim.rabbitmq_metrics, "supervisor": sim.supervisor_metrics}[kind]()
            if body is None:
                self._send(503, "broker down\n")
            else:
                self._send(200, body)

    return Handler


def log_line(log_dir, level, message, **meta):
    now = datetime.datetime.now(datetime.timezone.utc)
    rec = {"ts": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
           "level": level, "logger": "VoteAPI", "message": message}
    rec.update({k: str(v) for k, v in meta.items()})
    with open(os.path.join(log_dir, "api.log"), "a") as f:
        f.write(json.dumps(rec, separators=(",", ":")) + "\n")


def make_api_handler(sim, log_dir, difficulty=8):
    tokens = set()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _json(self, code, obj, route, reason=None, level="INFO", message="Request"):
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if code == 503:
                self.send_header("Retry-After", "1")
            self.end_headers()
            self.wfile.write(data)
            seconds = time.monotonic() - self.t0
            sim.record(route, self.command, str(code), reason, seconds)
            if log_dir:
                log_line(log_dir, level, message, request_id=uuid.uuid4().hex[:12], route=route,
                         status=code, duration_ms=f"{seconds * 1000:.3f}")

        def _body(self):
            n = int(self.headers.get("Content-Length") or 0)
            try:
                return json.loads(self.rfile.read(n) or b"{}")
            except ValueError:
                return None

        def do_GET(self):
            self.t0 = time.monotonic()
            path = urlparse(self.path).path
            if path == "/healthz":
                self._json(200, {"status": "ok"}, "/healthz")
            elif path == "/readyz":
                if sim.broker_up:
                    self._json(200, {"status": "ready"}, "/readyz")
                else:
                    self._json(503, {"error": {"code": "not_ready", "message": "broker"}}, "/readyz",
                               level="WARNING", message="Not ready")
            elif path == "/api/v1/poll":
                self._json(200, {"poll": {"id": "test", "title": "Test", "participants": [
                    {"id": "aline", "name": "Aline", "photoUrl": "/img/aline.svg"}]}}, "/api/v1/poll")
            else:
                self._json(404, {"error": {"code": "not_found", "message": "no"}}, "unmatched")

        def do_POST(self):
            self.t0 = time.monotonic()
            path = urlparse(self.path).path
            if path == "/api/v1/challenges":
                self._body()
                ch = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
                self._json(201, {"challenge": ch, "difficulty": difficulty, "algorithm": "SHA-256",
                                 "expiresAt": "2099-01-01T00:00:00Z"}, "/api/v1/challenges")
            elif path == "/api/v1/sessions":
                b = self._body() or {}
                try:
                    raw = base64.urlsafe_b64decode(b["challenge"] + "=" * (-len(b["challenge"]) % 4))
                    h = hashlib.sha256(raw + int(b["counter"]).to_bytes(8, "big")).digest()
                    ok = int.from_bytes(h, "big") >> (256 - difficulty) == 0
                except (KeyError, ValueError, TypeError):
                    ok = False
                if not ok:
                    with sim.lock:
                        sim.sessions_rejected["solution_wrong"] += 1
                    self._json(401, {"error": {"code": "solution_wrong", "message": "no"}}, "/api/v1/sessions")
                    return
                token = uuid.uuid4().hex
                with lock:
                    tokens.add(token)
                self._json(201, {"token": token, "expiresAt": "2099-01-01T00:00:00Z",
                                 "votesRemaining": 200}, "/api/v1/sessions")
            elif path == "/api/v1/votes":
                auth = self.headers.get("Authorization", "")
                b = self._body()
                if b is None:
                    self._json(400, {"error": {"code": "invalid_json", "message": "no"}}, "/api/v1/votes", "invalid")
                elif not auth.startswith("Bearer ") or auth[7:] not in tokens:
                    self._json(401, {"error": {"code": "token_invalid", "message": "no"}}, "/api/v1/votes", "token")
                elif not sim.broker_up:
                    self._json(503, {"error": {"code": "broker_unavailable", "message": "Broker unavailable"}},
                               "/api/v1/votes", "broker", level="ERROR", message="Broker unavailable")
                else:
                    self._json(202, {"vote": {"id": b.get("voteId") or uuid.uuid4().hex,
                                              "participant": b.get("participant")}}, "/api/v1/votes",
                               message="Vote accepted")
            else:
                self._json(404, {"error": {"code": "not_found", "message": "no"}}, "unmatched")

    return Handler


def ctl(url, action):
    state = {"stop": "down", "start": "up"}[action]
    with urllib.request.urlopen(f"{url.rstrip('/')}/control?broker={state}", timeout=5) as r:
        print(r.read().decode().strip())
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--api-port", type=int, default=0)
    ap.add_argument("--consumer-port", type=int, default=0)
    ap.add_argument("--rabbitmq-port", type=int, default=0)
    ap.add_argument("--supervisor-port", type=int, default=0)
    ap.add_argument("--max-seconds", type=float, default=900,
                    help="exit by itself after this long (default 900)")
    ap.add_argument("--http-api", action="store_true", help="also serve the stand-in vote API")
    ap.add_argument("--http-port", type=int, default=0)
    ap.add_argument("--log-dir", default=None, help="write api.log here (with --http-api)")
    ap.add_argument("--ctl", metavar="URL", help="switch the broker of a running instance (API metrics URL)")
    ap.add_argument("action", nargs="?", choices=["stop", "start"])
    args = ap.parse_args()
    if args.ctl:
        return ctl(args.ctl, args.action)

    sim = Simulation()
    servers = {}
    for kind, port in (("api", args.api_port), ("consumer", args.consumer_port),
                       ("rabbitmq", args.rabbitmq_port), ("supervisor", args.supervisor_port)):
        srv = ThreadingHTTPServer(("127.0.0.1", port), make_handler(sim, kind))
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers[kind] = srv

    if args.http_api:
        if args.log_dir:
            os.makedirs(args.log_dir, exist_ok=True)
        srv = ThreadingHTTPServer(("127.0.0.1", args.http_port), make_api_handler(sim, args.log_dir))
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers["http"] = srv

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    print(json.dumps({k: s.server_address[1] for k, s in servers.items()}), flush=True)
    deadline = time.monotonic() + args.max_seconds
    while not stop.is_set() and time.monotonic() < deadline:
        sim.tick()
        stop.wait(TICK)
    for srv in servers.values():
        srv.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
