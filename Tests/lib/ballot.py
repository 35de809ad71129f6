"""What the Python suites that drive the stack share: ballot-like load, the vote message's
wire format, reading the SQLite store, /metrics and /total.

Standard library only (the cluster suite runs on the bare python3). A suite imports it
after putting this folder on its path:

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
    import ballot
"""

import http.client
import json
import random
import sqlite3
import struct
import subprocess
import threading
import time
import urllib.parse
import urllib.request
import uuid

RETRY_STATUSES = frozenset({429, 502, 503, 504})


def now():
    return time.monotonic()


def logger(prefix):
    """A `log(message)` that prints `[PREFIX HH:MM:SS] message` at once."""
    def log(message):
        print(f"[{prefix} {time.strftime('%H:%M:%S')}] {message}", flush=True)
    return log


def uuid7():
    """A time-ordered UUID, as the ballot makes them."""
    millis = int(time.time() * 1000)
    value = (millis << 80) | (0x7 << 76) | (random.getrandbits(12) << 64) | (0b10 << 62) | random.getrandbits(62)
    return uuid.UUID(int=value)


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


# ---- Prometheus text pages --------------------------------------------------------------

def sample(text, name, labels=""):
    """The value of the first sample of `name` with exactly `labels` (or, without labels,
    with any) on a Prometheus text page, or None."""
    for line in text.splitlines():
        if line.startswith(name + labels + " ") or (not labels and line.startswith(name + "{")):
            return float(line.rsplit(" ", 1)[1])
    return None


def samples_sum(text, name, labels=""):
    """The sum of the samples of `name` whose label sets contain `labels` (all of them
    without it) on a Prometheus text page."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or (line.startswith(name + "{") and labels in line):
            total += float(line.rsplit(" ", 1)[1])
    return total


# ---- the vote message (Sources/VoteShared/Wire/VoteMessage.swift, version 1) ------------

def vote_message(vote_id, accepted_at_millis, poll, participant):
    poll_bytes, participant_bytes = poll.encode(), participant.encode()
    return (b"PV" + bytes([1]) + struct.pack(">H", 1) + vote_id.bytes + struct.pack(">q", accepted_at_millis)
            + bytes([len(poll_bytes)]) + poll_bytes + bytes([len(participant_bytes)]) + participant_bytes)


def hour_start(millis):
    """HourBucket.start(ofMillis:) (Sources/VoteShared/Model/Vote.swift)."""
    seconds = millis // 1000
    return seconds - seconds % 3600


# ---- the stack: tokens, store, totals ---------------------------------------------------

def mint_tokens(tool, api_url, count):
    """`count` session tokens from paredao-token (`tool`) against the API at `api_url`."""
    out = subprocess.run([tool, "--url", api_url, "--count", str(count)],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def read_store(sqlite_path):
    """(set of counted ids as UUIDs, rows (poll, hour, participant, votes) of hourly_counts)."""
    connection = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True, timeout=10)
    try:
        ids = {uuid.UUID(bytes=bytes(row[0])) for row in connection.execute("SELECT id FROM vote_ids")}
        rows = connection.execute("SELECT poll, hour, participant, votes FROM hourly_counts").fetchall()
    finally:
        connection.close()
    return ids, rows


def wait_settled(queue_depth, sqlite_path, accepted, seconds):
    """Seconds until `queue_depth()` is 0 and the store holds every id of `accepted` and
    stopped changing, or None when that did not happen within `seconds`."""
    start = now()
    previous = None
    while now() < start + seconds:
        depth = queue_depth()
        try:
            ids, _ = read_store(sqlite_path)
        except sqlite3.Error:
            ids = None
        if depth == 0 and ids is not None:
            if set(accepted) <= ids and previous == len(ids):
                return now() - start
            previous = len(ids)
        time.sleep(0.5)
    return None


def votes_per_participant(participants, accepted):
    """{participant: how many ids of `accepted` (id -> participant) are theirs}."""
    want = {p: 0 for p in participants}
    for participant in accepted.values():
        want[participant] += 1
    return want


def totals_problem(api_url, want, seconds=10):
    """None once the API's /total shows `want` per participant and their sum as the total
    (within `seconds`), else what it showed last."""
    deadline = now() + seconds
    seen = None
    while now() < deadline:
        try:
            snapshot = json.loads(http_get(api_url + "/total"))
            seen = {p["id"]: p["votes"] for p in snapshot["participants"]}
            if seen == want and snapshot["total"] == sum(want.values()):
                return None
        except (OSError, ValueError, KeyError) as error:
            seen = f"error {error}"
        time.sleep(0.5)
    return f"/total {seen} != 202s {want}"


# ---- the ballot-like load ---------------------------------------------------------------

def vote_request(participant, vote_id, token):
    """(body, headers) of POST /api/v1/votes."""
    body = json.dumps({"participant": participant, "voteId": str(vote_id)})
    return body, {"Content-Type": "application/json", "Authorization": "Bearer " + token}


def post_vote(connection, address, body, headers):
    """Sends one vote on `connection` (a new one to `address`, a urlsplit result, when None).
    Returns (the connection to use next or None, the status or the error's type name, the
    answer's body)."""
    try:
        if connection is None:
            connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
        connection.request("POST", "/api/v1/votes", body=body, headers=headers)
        response = connection.getresponse()
        answer = response.read()
        if response.getheader("Connection", "").lower() == "close":
            connection.close()
            connection = None
        return connection, response.status, answer
    except (OSError, http.client.HTTPException) as error:
        if connection is not None:
            connection.close()
        return None, type(error).__name__, b""


class Tally:
    """Counts of a stretch of load; a vote counts in the tally that was current when it was
    first sent."""

    def __init__(self):
        self.sent = 0
        self.accepted = 0
        self.unavailable = 0     # 503 answers
        self.retries = 0         # sends after the first
        self.gave_up = 0
        self.unexpected = {}     # other statuses or errors -> how many
        self.ids = []            # the ids that got 202

    def counts(self):
        return {"sent": self.sent, "accepted": self.accepted, "retries": self.retries, "gave_up": self.gave_up}

    def problems(self):
        """A vote that gave up, or a status a ballot does not expect, is a failure."""
        problems = []
        if self.gave_up:
            problems.append(f"{self.gave_up} votes gave up")
        unexpected = {k: v for k, v in self.unexpected.items() if isinstance(k, int)}
        if unexpected:
            problems.append(f"unexpected statuses {unexpected}")
        return problems


class Load:
    """Ballot-like clients: one thread per session token, one vote at a time at its share of
    `rate` (votes/s). Each vote has its own id and is sent again with the same id (backoff
    50 ms doubling to 1 s) until it gets 202 or `vote_deadline` seconds passed (it gave up):
    on 429/502/503/504 and connection errors, and on any other status too unless
    `retry_refusals` is False. Every id that got 202 is kept in `accepted` with its
    participant. Subclasses see every answer through `answered`."""

    def __init__(self, tokens, participants, url, rate, vote_deadline=60.0, retry_refusals=True):
        self.tokens = tokens
        self.participants = participants
        self.address = urllib.parse.urlsplit(url)
        self.rate = rate
        self.vote_deadline = vote_deadline
        self.retry_refusals = retry_refusals
        self.lock = threading.Lock()
        self.accepted = {}       # vote id (UUID) -> participant, for every 202
        self.tally = Tally()
        self.running = threading.Event()
        self.stopping = False
        self.busy = 0
        self.threads = [threading.Thread(target=self.client, args=(token,), daemon=True) for token in tokens]

    def start(self, paused=False):
        if not paused:
            self.running.set()
        for thread in self.threads:
            thread.start()

    def resume(self):
        self.running.set()

    def pause(self, timeout=None):
        """Stops starting votes and waits until every vote in flight ended (202 or gave up)."""
        self.running.clear()
        deadline = now() + (self.vote_deadline + 10 if timeout is None else timeout)
        while now() < deadline:
            with self.lock:
                if self.busy == 0:
                    return True
            time.sleep(0.05)
        return False

    def stop(self):
        self.stopping = True
        self.running.set()

    def join(self, timeout):
        """After stop: whether every client ended within `timeout` (each)."""
        for thread in self.threads:
            thread.join(max(0.0, timeout))
        return not any(thread.is_alive() for thread in self.threads)

    def answered(self, status, answer, at):
        """Called for every attempt of every vote (the status or the error's type name)."""

    def count(self, tally, field):
        with self.lock:
            setattr(tally, field, getattr(tally, field) + 1)

    def client(self, token):
        interval = len(self.tokens) / self.rate
        connection = None
        next_at = now() + random.random() * interval
        while True:
            self.running.wait()
            if self.stopping:
                break
            delay = next_at - now()
            if delay > 0:
                time.sleep(delay)
            next_at = max(next_at + interval, now() - interval)
            if not self.running.is_set() or self.stopping:
                continue
            with self.lock:
                self.busy += 1
                tally = self.tally
            try:
                connection = self.vote(connection, token, tally)
            finally:
                with self.lock:
                    self.busy -= 1
        if connection is not None:
            connection.close()

    def vote(self, connection, token, tally):
        vote_id = uuid7()
        participant = random.choice(self.participants)
        body, headers = vote_request(participant, vote_id, token)
        self.count(tally, "sent")
        deadline = now() + self.vote_deadline
        backoff = 0.05
        attempt = 0
        while True:
            if attempt:
                self.count(tally, "retries")
            attempt += 1
            connection, status, answer = post_vote(connection, self.address, body, headers)
            at = now()
            with self.lock:
                if status == 202:
                    self.accepted[vote_id] = participant
                    tally.accepted += 1
                    tally.ids.append(vote_id)
                elif status == 503:
                    tally.unavailable += 1
                elif status not in RETRY_STATUSES:
                    tally.unexpected[status] = tally.unexpected.get(status, 0) + 1
            self.answered(status, answer, at)
            if status == 202:
                return connection
            if not self.retry_refusals and isinstance(status, int) and status not in RETRY_STATUSES:
                return connection   # a refusal a retry cannot change (counted as unexpected)
            if now() + backoff > deadline:
                self.count(tally, "gave_up")
                return connection
            time.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, 1.0)
