#!/usr/bin/env python3
"""Fleet suite: two VoteAPIs behind nginx, two VoteConsumers on one queue, under load.

Started by Tests/fleet/run.sh (./run.sh test --only fleet), which starts the broker, the
four processes and nginx, and passes everything through the environment:

  FLEET_WEB_URL                       nginx (both APIs upstream)
  FLEET_API_URLS                      the two APIs directly, comma-separated (a, b)
  FLEET_API_METRICS_URLS              their /metrics, in the same order
  FLEET_CONSUMER_METRICS_URLS         the two consumers' /metrics
  FLEET_SQLITE_PATH, FLEET_QUEUE      the one store file and the one vote queue
  FLEET_BROKER_CTL                    scripts/rabbitmq.sh for the suite's broker
  FLEET_CTL                           Tests/fleet/run.sh (--stop-api NAME, --start-api NAME)
  FLEET_BUDGET, FLEET_RATE, FLEET_BURST   the APIs' session settings
  FLEET_VOTE_RATE (400/s), FLEET_CLIENTS (80), FLEET_SECONDS (25)

Checks, in order:
  1. load: FLEET_CLIENTS ballot-like clients (each its own session, bought through nginx)
     send FLEET_VOTE_RATE votes/s through nginx for FLEET_SECONDS; each vote has its own
     id and is sent again with that id on 429/502/503/504 or a connection error. Meanwhile
     two "hard" sessions redeem one solved challenge at both APIs directly (same token
     expected; a replay at the same API is challenge_spent) and then vote through nginx as
     fast as they can: their 202s must stay within burst + rate x elapsed and stop at
     exactly the budget, with every votesRemaining value seen once (one counter, one
     instance), then session_exhausted.
  2. after the queue drained: every 202 id counted exactly once in the store (vote_ids,
     hourly_counts per participant), nothing else counted, /total and /api/v1/totals the
     same from both APIs asked directly, both APIs accepted votes, both consumers counted.
  3. restart: the hard session's own instance is stopped (SIGTERM) under load: its votes
     move to the other instance, which keeps its own counters (a fresh budget there), the
     load's votes keep getting 202; the instance starts again and the session's votes come
     back to it, with fresh counters (a restart forgets them). Then the checks of 2 again.
Prints one line per check and ends with "N passed, N failed"; exits 1 when any failed.
"""

import base64
import hashlib
import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from ballot import (logger, now, post_vote, read_store, samples_sum, uuid7, vote_request,  # noqa: E402
                    votes_per_participant)
import ballot  # noqa: E402

ENV = os.environ
WEB_URL = ENV["FLEET_WEB_URL"]
WEB = urllib.parse.urlsplit(WEB_URL)
API_URLS = ENV["FLEET_API_URLS"].split(",")
API_NAMES = ["a", "b"]
API_METRICS = ENV["FLEET_API_METRICS_URLS"].split(",")
CONSUMER_METRICS = ENV["FLEET_CONSUMER_METRICS_URLS"].split(",")
SQLITE_PATH = ENV["FLEET_SQLITE_PATH"]
QUEUE = ENV["FLEET_QUEUE"]
BROKER_CTL = ENV["FLEET_BROKER_CTL"]
CTL = ENV["FLEET_CTL"]
BUDGET = int(ENV["FLEET_BUDGET"])
SESSION_RATE = float(ENV["FLEET_RATE"])
SESSION_BURST = int(ENV["FLEET_BURST"])
VOTE_RATE = float(ENV.get("FLEET_VOTE_RATE", "400"))
CLIENTS = int(ENV.get("FLEET_CLIENTS", "80"))
SECONDS = float(ENV.get("FLEET_SECONDS", "25"))
VOTE_DEADLINE = 60.0
HARD_SESSIONS = 2
HARD_THREADS = 3

log = logger("fleet")


def request(url, method="GET", body=None, headers=None, timeout=10):
    """(status, parsed JSON or None) of one request; errors with a status are answers too."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        try:
            return error.code, json.loads(error.read() or b"null")
        except ValueError:
            return error.code, None


def error_code(body):
    return (body or {}).get("error", {}).get("code") if isinstance(body, dict) else None


def metric_sum(url, name, labels=""):
    """Sum of the samples of `name` (whose labels contain `labels`) on a /metrics page."""
    return samples_sum(ballot.http_get(url).decode(), name, labels)


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def leading_zero_bits(digest):
    bits = 0
    for byte in digest:
        if byte == 0:
            bits += 8
            continue
        return bits + (8 - byte.bit_length())
    return bits


def solve_challenge(challenge, difficulty):
    raw = b64url_decode(challenge)
    counter = 0
    while leading_zero_bits(hashlib.sha256(raw + counter.to_bytes(8, "big")).digest()) < difficulty:
        counter += 1
    return counter


def solved_challenge(base_url):
    status, body = request(base_url + "/api/v1/challenges", "POST")
    if status != 201:
        raise RuntimeError(f"challenge at {base_url}: {status} {body}")
    return {"challenge": body["challenge"], "counter": solve_challenge(body["challenge"], body["difficulty"])}


def new_session(base_url):
    """A session bought through `base_url` (challenge and session may reach different APIs)."""
    solved = solved_challenge(base_url)
    status, body = request(base_url + "/api/v1/sessions", "POST", solved)
    if status != 201:
        raise RuntimeError(f"session at {base_url}: {status} {body}")
    return body["token"]


# ---- load ---------------------------------------------------------------------------------

class HardSession:
    """One session driven through nginx as fast as its limits let it."""

    def __init__(self, token, participants, load):
        self.token = token
        self.participants = participants
        self.load = load           # its 202s are counted with everything else
        self.lock = threading.Lock()
        self.accepted = []         # (seconds since the first send, votesRemaining)
        self.statuses = {}
        self.exhausted = threading.Event()
        self.started = None

    def run(self, seconds):
        self.started = now()
        threads = [threading.Thread(target=self.worker, args=(seconds,), daemon=True) for _ in range(HARD_THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def worker(self, seconds):
        connection = None
        end = self.started + seconds
        while now() < end and not self.exhausted.is_set():
            vote_id = uuid7()
            participant = random.choice(self.participants)
            connection, status, payload = post_vote(connection, WEB, *vote_request(participant, vote_id, self.token))
            if isinstance(status, str):
                time.sleep(0.05)
                continue
            at = now() - self.started
            body = json.loads(payload or b"null")
            code = error_code(body)
            with self.lock:
                key = status if code is None else f"{status} {code}"
                self.statuses[key] = self.statuses.get(key, 0) + 1
                if status == 202:
                    self.accepted.append((at, body["vote"]["votesRemaining"]))
            if status == 202:
                with self.load.lock:
                    self.load.accepted[vote_id] = participant
            elif code == "session_exhausted":
                self.exhausted.set()
            else:
                time.sleep(0.05)

    def problems(self):
        problems = []
        accepted = sorted(self.accepted)
        if len(accepted) != BUDGET:
            problems.append(f"{len(accepted)} votes got 202 for a budget of {BUDGET}")
        # One counter hands out BUDGET-1, BUDGET-2, ... each once; two would repeat values.
        remaining = sorted(r for _, r in accepted)
        if remaining != list(range(BUDGET - len(remaining), BUDGET)):
            problems.append("votesRemaining values repeat or skip (more than one counter served the session)")
        for index, (at, _) in enumerate(accepted, start=1):
            allowed = SESSION_BURST + SESSION_RATE * at + 1
            if index > allowed:
                problems.append(f"202 number {index} after {at:.2f} s: over burst {SESSION_BURST} + {SESSION_RATE:g}/s")
                break
        if not any(str(k).startswith("429 rate_limited") for k in self.statuses):
            problems.append("never rate limited: the limit was not reached")
        if not self.exhausted.is_set():
            problems.append("never got session_exhausted")
        return problems


# ---- the stack ----------------------------------------------------------------------------

def queue_depth():
    result = subprocess.run([BROKER_CTL, "ctl", "list_queues", "name", "messages"], capture_output=True, text=True, timeout=60)
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == QUEUE and parts[1].isdigit():
            return int(parts[1])
    return None


def ctl(*args):
    result = subprocess.run([CTL, *args], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"{CTL} {' '.join(args)}: {result.stderr.strip()}")


def without_as_of(snapshot):
    if isinstance(snapshot, dict):
        return {k: without_as_of(v) for k, v in snapshot.items() if k != "asOf"}
    if isinstance(snapshot, list):
        return [without_as_of(v) for v in snapshot]
    return snapshot


class Suite:
    def __init__(self):
        status, body = request(API_URLS[0] + "/api/v1/poll")
        self.poll = body["poll"]["id"]
        self.participants = [p["id"] for p in body["poll"]["participants"]]
        self.results = []
        self.hard = []
        self.load = None

    def record(self, name, problems):
        self.results.append((name, problems))
        log(f"{'ok  ' if not problems else 'FAIL'} {name}" + "".join(f"\n       - {p}" for p in problems))

    # -- 1. load + hard sessions
    def hard_session(self):
        """A challenge from API a, redeemed at b, at a, and again at a: one token, one spent."""
        problems = []
        solved = solved_challenge(API_URLS[0])
        tokens = []
        for url in (API_URLS[1], API_URLS[0]):
            status, body = request(url + "/api/v1/sessions", "POST", solved)
            if status != 201:
                problems.append(f"redeeming at {url}: {status} {body}")
                continue
            tokens.append(body["token"])
        if len(set(tokens)) != 1:
            problems.append(f"the same solved challenge gave {len(set(tokens))} different tokens at the two APIs")
        status, body = request(API_URLS[0] + "/api/v1/sessions", "POST", solved)
        if (status, error_code(body)) != (401, "challenge_spent"):
            problems.append(f"a replay at the same API got {status} {error_code(body)}, not 401 challenge_spent")
        return (tokens[0] if tokens else None), problems

    def run_load(self):
        log(f"buying {CLIENTS} sessions through nginx")
        tokens = [new_session(WEB_URL) for _ in range(CLIENTS)]
        self.load = ballot.Load(tokens, self.participants, WEB_URL, VOTE_RATE, VOTE_DEADLINE)
        accepted_before = [metric_sum(url, "paredao_votes_accepted_total") for url in API_METRICS]
        log(f"load: {VOTE_RATE:g} votes/s from {CLIENTS} clients for {SECONDS:g} s, {HARD_SESSIONS} hard sessions")
        self.load.start()
        time.sleep(2)
        redeem_problems = []
        for _ in range(HARD_SESSIONS):
            token, problems = self.hard_session()
            redeem_problems += problems
            if token:
                self.hard.append(HardSession(token, self.participants, self.load))
        self.record("a solved challenge redeemed at both APIs is one session (same token; replay spent)", redeem_problems)
        seconds = max(SECONDS - 2, (BUDGET - SESSION_BURST) / SESSION_RATE + 10)
        threads = [threading.Thread(target=h.run, args=(seconds,), daemon=True) for h in self.hard]
        for thread in threads:
            thread.start()
        end = now() + SECONDS - 2
        while now() < end:
            time.sleep(0.2)
        for thread in threads:
            thread.join()
        paused = self.load.pause()
        for index, hard in enumerate(self.hard):
            self.record(f"hard session {index + 1}: {len(hard.accepted)} x 202 through nginx, budget {BUDGET}, "
                        f"{SESSION_RATE:g}/s burst {SESSION_BURST} fleet-wide ({hard.statuses})", hard.problems())
        accepted_after = [metric_sum(url, "paredao_votes_accepted_total") for url in API_METRICS]
        served = [after - before for before, after in zip(accepted_before, accepted_after)]
        problems = [] if paused else ["the load did not pause (votes still in flight)"]
        if min(served) <= 0:
            problems.append(f"an API accepted no votes: {served}")
        tally = self.load.tally
        self.record(f"load: sent {tally.sent}, 202 {tally.accepted}, retries {tally.retries}, "
                    f"accepted by API a/b {served[0]:.0f}/{served[1]:.0f}", problems + tally.problems())

    # -- 2. exactly once, same totals everywhere
    def check_counted(self, label):
        settled = ballot.wait_settled(queue_depth, SQLITE_PATH, self.load.accepted, 90)
        problems = [] if settled is not None else ["the queue did not drain with every 202 counted within 90 s"]
        ids, rows = read_store(SQLITE_PATH)
        accepted = dict(self.load.accepted)
        missing = [vid for vid in accepted if vid not in ids]
        extra = ids - set(accepted)
        if missing:
            problems.append(f"{len(missing)} ids that got 202 are not counted")
        if extra:
            problems.append(f"{len(extra)} ids counted that never got 202")
        want = votes_per_participant(self.participants, accepted)
        have = {p: 0 for p in self.participants}
        for poll, _hour, participant, votes in rows:
            if poll == self.poll and participant in have:
                have[participant] += votes
            else:
                problems.append(f"counted for {poll}/{participant}: {votes}")
        if have != want:
            problems.append(f"store per participant {have} != 202s {want}")
        counted = [metric_sum(url, "paredao_consumer_votes_counted_total") for url in CONSUMER_METRICS]
        duplicates = sum(metric_sum(url, "paredao_consumer_duplicates_total") for url in CONSUMER_METRICS)
        if min(counted) <= 0:
            problems.append(f"a consumer counted nothing: {counted}")
        if sum(counted) != len(ids):
            problems.append(f"the consumers counted {sum(counted):.0f} votes, the store holds {len(ids)} ids")
        self.record(f"{label}: {len(accepted)} ids with 202 = {len(ids)} counted once "
                    f"(consumers {counted[0]:.0f} + {counted[1]:.0f}, duplicates skipped {duplicates:.0f})", problems)
        self.check_totals(label, want)

    def check_totals(self, label, want):
        problems = []
        for path in ("/total", "/api/v1/totals"):
            deadline = now() + 15
            snapshots = None
            while now() < deadline:
                snapshots = [request(url + path)[1] for url in API_URLS]
                seen = [{p["id"]: p["votes"] for p in s["participants"]} for s in snapshots]
                if all(s == want for s in seen) and all(s["total"] == sum(want.values()) for s in snapshots):
                    break
                time.sleep(0.5)
            else:
                problems.append(f"{path} per API {[s.get('total') for s in snapshots]} != {sum(want.values())}")
                continue
            if without_as_of(snapshots[0]) != without_as_of(snapshots[1]):
                problems.append(f"{path} differs between the APIs (besides asOf)")
        self.record(f"{label}: /total and /api/v1/totals identical from API a and b ({sum(want.values())} votes)", problems)

    # -- 3. an instance restarts
    def vote_once(self, token):
        vote_id = uuid7()
        status, body = request(WEB_URL + "/api/v1/votes", "POST",
                               {"participant": self.participants[0], "voteId": str(vote_id)},
                               {"Authorization": "Bearer " + token})
        if status == 202:
            with self.load.lock:
                self.load.accepted[vote_id] = self.participants[0]
        return status, body

    def home_of(self, token):
        """Which API counts `token` now: the one whose budget refusals go up on a vote."""
        before = [metric_sum(url, "paredao_votes_rejected_total", 'reason="budget"') for url in API_METRICS]
        status, body = self.vote_once(token)
        after = [metric_sum(url, "paredao_votes_rejected_total", 'reason="budget"') for url in API_METRICS]
        grew = [i for i in range(len(API_METRICS)) if after[i] > before[i]]
        return (grew[0] if len(grew) == 1 else None), status, body

    def restart(self):
        problems = []
        hard = self.hard[0]
        home, status, body = self.home_of(hard.token)
        if home is None or (status, error_code(body)) != (401, "session_exhausted"):
            self.record("restart: find the exhausted session's instance", [f"vote got {status} {error_code(body)}, home {home}"])
            return
        other = 1 - home
        name = API_NAMES[home]
        log(f"restart: the hard session lives at API {name}; stopping it under load")
        sent_before = self.load.tally.counts()
        self.load.resume()
        time.sleep(1)
        ctl("--stop-api", name)
        # While its instance is down the session's votes go to the next instance on the
        # ring, which has never seen it: a fresh budget there, at the session's rate.
        status, body = self.vote_with_retry(hard.token, deadline=10)
        moved = body["vote"]["votesRemaining"] if status == 202 else None
        if moved != BUDGET - 1:
            problems.append(f"with API {name} down, the session's vote got {status} {error_code(body)} (votesRemaining {moved})")
        time.sleep(2)
        ctl("--start-api", name)
        # Back at its (restarted) instance: counters were in memory, so they start again.
        back = None
        deadline = now() + 20
        while now() < deadline:
            status, body = self.vote_once(hard.token)
            if status == 202 and body["vote"]["votesRemaining"] == BUDGET - 1:
                back = now()
                break
            time.sleep(0.3)
        if back is None:
            problems.append(f"the session's votes did not come back to the restarted API {name} with fresh counters within 20 s")
        time.sleep(1)
        paused = self.load.pause()
        if not paused:
            problems.append("the load did not pause")
        during = {k: v - sent_before[k] for k, v in self.load.tally.counts().items()}
        problems += self.load.tally.problems()
        self.record(f"restart of API {name} under load: its session moved to API {API_NAMES[other]} (fresh budget there), "
                    f"came back to fresh counters; load sent {during['sent']}, 202 {during['accepted']}, retries {during['retries']}",
                    problems)

    def vote_with_retry(self, token, deadline):
        end = now() + deadline
        while True:
            status, body = self.vote_once(token)
            if status == 202 or now() > end:
                return status, body
            time.sleep(0.1)

    def run(self):
        self.run_load()
        self.check_counted("after the load")
        self.restart()
        self.check_counted("after the restart")
        self.load.stop()
        failed = sum(1 for _, problems in self.results if problems)
        print(f"{len(self.results) - failed} passed, {failed} failed", flush=True)
        return 1 if failed else 0


def main():
    try:
        return Suite().run()
    except Exception as error:  # noqa: BLE001 - the suite reports anything as a failure
        log(f"FAIL the suite could not run: {type(error).__name__}: {error}")
        print("0 passed, 1 failed", flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
