#!/usr/bin/env python3
"""Fault suite: ballot-like load through nginx while the stack is hurt, one fault at a time.

Started by Tests/faults/run.sh (./run.sh test --only faults), which starts the broker and
the supervised stack and passes everything through the environment:

  FAULTS_WEB_URL, FAULTS_API_URL       nginx and the API (direct: tokens, readiness)
  FAULTS_CONSUMER_METRICS_URL          the consumer's /metrics (duplicates skipped)
  FAULTS_SUPERVISOR_METRICS_URL        paredao_process_restarts_total
  FAULTS_SUPERVISOR_CONF               supervisord.conf (supervisorctl pid NAME, start NAME)
  FAULTS_SQLITE_PATH, FAULTS_QUEUE     the store and the vote queue (dead letters: QUEUE.dead)
  FAULTS_BROKER_CTL                    scripts/rabbitmq.sh with the suite's broker settings
  FAULTS_TOKEN_TOOL                    .build/debug/paredao-token
  PAREDAO_AMQP_URL                     the broker, for the raw AMQP client (pika)
  FAULTS_RATE (300), FAULTS_CLIENTS (30), FAULTS_ONLY (comma-separated scenario names)

Each client is one ballot: one session, one vote at a time at its share of the rate; each
vote has its own voteId and is sent again with the same id on 503, 429, 502/504 or a
connection error (short backoff) until it gets 202 or its deadline passes (it "gave up").
After each scenario the load pauses, the suite waits until the queue is empty and the
store stops changing, and checks that every id that got a 202 is counted exactly once,
overall and per participant, in the store and in /total. Prints one table row per
scenario and ends with "N passed, N failed"; exits 1 when any scenario failed.
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid

import pika

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from ballot import (Tally, hour_start, http_get, logger, mint_tokens, now, read_store,  # noqa: E402
                    sample, totals_problem, vote_message, votes_per_participant)
import ballot  # noqa: E402

ENV = os.environ
WEB_URL = ENV["FAULTS_WEB_URL"]
API_URL = ENV["FAULTS_API_URL"]
CONSUMER_METRICS = ENV["FAULTS_CONSUMER_METRICS_URL"]
SUPERVISOR_METRICS = ENV["FAULTS_SUPERVISOR_METRICS_URL"]
SUPERVISOR_CONF = ENV["FAULTS_SUPERVISOR_CONF"]
SQLITE_PATH = ENV["FAULTS_SQLITE_PATH"]
QUEUE = ENV["FAULTS_QUEUE"]
DEAD_QUEUE = QUEUE + ".dead"
BROKER_CTL = ENV["FAULTS_BROKER_CTL"]
TOKEN_TOOL = ENV["FAULTS_TOKEN_TOOL"]
AMQP_URL = ENV["PAREDAO_AMQP_URL"]
RATE = float(ENV.get("FAULTS_RATE", "300"))
CLIENTS = int(ENV.get("FAULTS_CLIENTS", "30"))
VOTE_DEADLINE = 60.0          # a vote still without 202 after this long gave up
FAULT_SECONDS = 10.0          # store lock, slow consumer, memory alarm
QUIET_DEADLINE = 60.0         # how long the stack may take to settle after a scenario
DEBUG = bool(ENV.get("FAULTS_DEBUG"))
DRAINED_DEPTH = 50            # ready messages in the queue when the consumer keeps up

log = logger("faults")


# ---- the ballot-like load -------------------------------------------------------------

class Load(ballot.Load):
    """The ballot-like load, counted per scenario; a vote belongs to the scenario in which
    it was first sent. Notes the first 202 after a given moment (the fault's end)."""

    def __init__(self, tokens, participants):
        super().__init__(tokens, participants, WEB_URL, RATE, VOTE_DEADLINE)
        self.first_202_after = None
        self.watch_from = None
        self.stats = {}          # scenario -> Tally

    def begin(self, scenario):
        with self.lock:
            self.tally = self.stats[scenario] = Tally()
            self.watch_from = None
            self.first_202_after = None
        self.running.set()

    def watch_for_202(self, since):
        with self.lock:
            self.watch_from = since
            self.first_202_after = None

    def answered(self, status, answer, at):
        if status == 202:
            with self.lock:
                if self.watch_from is not None and self.first_202_after is None and at >= self.watch_from:
                    self.first_202_after = at


# ---- the stack: broker, store, supervisor -----------------------------------------------

def amqp():
    params = pika.URLParameters(AMQP_URL)
    params.socket_timeout = 5
    params.blocked_connection_timeout = 5
    params.connection_attempts = 1
    return pika.BlockingConnection(params)


def queue_depths():
    """(ready messages in the vote queue, messages in its dead-letter queue), or None."""
    try:
        connection = amqp()
        try:
            channel = connection.channel()
            votes = channel.queue_declare(QUEUE, passive=True).method.message_count
            dead = channel.queue_declare(DEAD_QUEUE, passive=True).method.message_count
            return votes, dead
        finally:
            connection.close()
    except Exception:
        return None


def ready_messages():
    """Ready messages in the vote queue, or None."""
    depths = queue_depths()
    return None if depths is None else depths[0]


def publish_raw(body):
    connection = amqp()
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish("", QUEUE, body, pika.BasicProperties(delivery_mode=2), mandatory=True)
    finally:
        connection.close()


def supervisorctl(*args):
    return subprocess.run(["/usr/bin/supervisorctl", "-c", SUPERVISOR_CONF, *args],
                          capture_output=True, text=True, timeout=30)


def program_pid(name):
    out = supervisorctl("pid", name).stdout.strip()
    return int(out) if out.isdigit() and int(out) > 0 else None


def program_state(name):
    parts = supervisorctl("status", name).stdout.split()
    return parts[1] if len(parts) > 1 else "UNKNOWN"


def restarts():
    try:
        text = http_get(SUPERVISOR_METRICS).decode()
    except OSError:
        return {}
    counts = {}
    for line in text.splitlines():
        if line.startswith("paredao_process_restarts_total{"):
            name = line.split('"')[1]
            counts[name] = int(float(line.rsplit(" ", 1)[1]))
    return counts


def broker(*args, timeout=120):
    result = subprocess.run([BROKER_CTL, *args], capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"broker {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


class Monitor(threading.Thread):
    """Samples queue depth and the consumer's duplicates counter (reset-aware increase)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.lock = threading.Lock()
        self.depth = None
        self.depth_at = 0.0
        self.duplicates = 0.0
        self.last_duplicates = None
        self.last_counted = None
        self.counted_at = []     # when the consumer's counted votes went up
        self.stopped = False

    def run(self):
        while not self.stopped:
            depths = queue_depths()
            if depths is not None:
                with self.lock:
                    self.depth, self.depth_at = depths[0], now()
            try:
                text = http_get(CONSUMER_METRICS, timeout=2).decode()
                value = sample(text, "paredao_consumer_duplicates_total") or 0.0
                counted = sample(text, "paredao_consumer_votes_counted_total") or 0.0
                with self.lock:
                    if self.last_duplicates is not None:
                        self.duplicates += value - self.last_duplicates if value >= self.last_duplicates else value
                    self.last_duplicates = value
                    if self.last_counted is not None and counted != self.last_counted and counted > 0:
                        self.counted_at.append(now())
                    self.last_counted = counted
                if DEBUG:
                    log(f"monitor: depth {self.depth} counted {counted} duplicates {value}")
            except OSError as error:
                if DEBUG:
                    log(f"monitor: depth {self.depth} consumer metrics: {error}")
            time.sleep(0.25)

    def snapshot(self):
        with self.lock:
            return self.depth, self.depth_at, self.duplicates

    def counting_since(self, since):
        """When the consumer first counted votes after `since`, or None."""
        with self.lock:
            return next((t for t in self.counted_at if t > since), None)


# ---- poison messages (Sources/VoteShared/Wire/VoteMessage.swift, version 1) ------------

def days_from_civil(year, month, day):
    """Days since 1970-01-01 of a proleptic Gregorian date (any year)."""
    year -= month <= 2
    era = (year if year >= 0 else year - 399) // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def poison_kinds(poll, participant):
    """Each kind: vote id -> (message body, the (poll, hour, participant) it would count in)."""
    now_millis = int(time.time() * 1000)

    def vote(millis, poll_id=poll, participant_id=participant):
        return lambda vid: (vote_message(vid, millis, poll_id, participant_id),
                            (poll_id, hour_start(millis), participant_id))

    return {
        "undecodable bytes": lambda vid: (b"\xde\xad\xbe\xef not a vote " + vid.bytes, None),
        "accepted-at Int64.min": vote(-(2 ** 63)),
        "year -1200": vote(days_from_civil(-1200, 6, 1) * 86_400_000),
        "accepted-at Int64.max": vote(2 ** 63 - 1),
        "year 10000": vote(days_from_civil(10000, 6, 1) * 86_400_000),
        "unknown poll": vote(now_millis, poll_id="no-such-poll"),
        "unknown participant": vote(now_millis, participant_id="no-such-participant"),
    }


# ---- scenarios --------------------------------------------------------------------------

class Suite:
    def __init__(self):
        poll = json.loads(http_get(API_URL + "/api/v1/poll"))["poll"]
        self.poll = poll["id"]
        self.participants = [p["id"] for p in poll["participants"]]
        log(f"minting {CLIENTS} session tokens")
        self.load = Load(mint_tokens(TOKEN_TOOL, API_URL, CLIENTS), self.participants)
        self.monitor = Monitor()
        self.rows = []
        self.poison_ids = set()
        self.failures = 0
        self.started_at = time.time()

    # Fault actions: each returns when the fault is over (the moment recovery starts).
    def kill(self, program, sig):
        def action(scenario):
            pid = program_pid(program)
            if pid is None:
                raise RuntimeError(f"{program} is not running")
            before = restarts().get(program, 0)
            os.kill(pid, sig)
            scenario["restarts_before"] = (program, before)
        return action

    def broker_restart(self, scenario):
        broker("stop")
        broker("start")

    def memory_alarm(self, scenario):
        broker("ctl", "set_vm_memory_high_watermark", "0.0000001")
        time.sleep(FAULT_SECONDS)
        broker("ctl", "set_vm_memory_high_watermark", "0.4")

    def store_locked(self, scenario):
        connection = sqlite3.connect(SQLITE_PATH, timeout=30, isolation_level=None)
        try:
            connection.execute("BEGIN EXCLUSIVE")
            time.sleep(FAULT_SECONDS)
            connection.execute("ROLLBACK")
        finally:
            connection.close()

    def slow_consumer(self, scenario):
        pid = program_pid("consumer")
        if pid is None:
            raise RuntimeError("consumer is not running")
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(FAULT_SECONDS)
            scenario["depth_at_peak"] = self.monitor.snapshot()[0]
        finally:
            os.kill(pid, signal.SIGCONT)

    def poison(self, kind, make):
        """Publishes one poison message and waits for the consumer to dead-letter it. When it
        does not (it crashed, counted the vote, or the API fell over on what was counted),
        the problems are noted and the stack is put right by hand (rescue), so that the next
        scenario tests its own case."""
        def action(scenario):
            vote_id = uuid.uuid4()
            body, bucket = make(vote_id)
            self.poison_ids.add(vote_id)
            scenario.update(poison_id=vote_id, bucket=bucket, problems=[])
            consumer_pid = program_pid("consumer")
            baseline = restarts()
            before = baseline.get("consumer", 0)
            _, dead_before = queue_depths() or (0, 0)
            publish_raw(body)
            deadline = now() + 15
            dead = dead_before
            while now() < deadline:
                dead = (queue_depths() or (0, dead))[1]
                if (dead > dead_before or restarts().get("consumer", 0) != before
                        or self.poison_in_store(vote_id, bucket)):
                    break
                time.sleep(0.25)
            time.sleep(2.5)                        # what the consumer and the API do next (totals refresh 0.5 s)
            problems = scenario["problems"]
            scenario["dead_by_consumer"] = dead - dead_before
            if dead <= dead_before:
                problems.append("not dead-lettered")
            after = restarts().get("consumer", 0)
            if after != before or program_pid("consumer") != consumer_pid:
                problems.append(f"the consumer crashed on the message (restarts {before} -> {after})")
            if self.poison_in_store(vote_id, bucket):
                problems.append("the poison vote was counted in the store")
            for program in ("api", "nginx"):
                if program_state(program) != "RUNNING" or restarts().get(program, 0) != baseline.get(program, 0):
                    problems.append(f"{program} crashed after the message ({program_state(program)}, "
                                    f"restarts {baseline.get(program, 0)} -> {restarts().get(program, 0)})")
            if problems:
                self.rescue(vote_id, bucket, dead <= dead_before, problems)
        return action

    def poison_in_store(self, vote_id, bucket):
        connection = sqlite3.connect(f"file:{SQLITE_PATH}?mode=ro", uri=True, timeout=10)
        try:
            counted_id = connection.execute("SELECT 1 FROM vote_ids WHERE id = ?", (vote_id.bytes,)).fetchone()
            counted_bucket = bucket is not None and connection.execute(
                "SELECT votes FROM hourly_counts WHERE poll = ? AND hour = ? AND participant = ?", bucket).fetchone()
        finally:
            connection.close()
        return bool(counted_id or counted_bucket)

    def rescue(self, vote_id, bucket, still_queued, problems):
        """Stops the consumer, dead-letters the poison message by hand when it is still in the
        queue, takes back what it counted, and starts the stopped or crashed programs again."""
        log("  rescue: consumer stopped, poison message and its count removed by hand")
        supervisorctl("stop", "consumer")
        try:
            if still_queued:
                connection = amqp()
                channel = connection.channel()
                while True:
                    method, _, body = channel.basic_get(QUEUE, auto_ack=False)
                    if method is None:
                        break
                    if vote_id.bytes in body:
                        channel.basic_reject(method.delivery_tag, requeue=False)
                        break
                connection.close()                 # the valid votes read go back to the queue
            connection = sqlite3.connect(SQLITE_PATH, timeout=30, isolation_level=None)
            try:
                connection.execute("BEGIN IMMEDIATE")
                connection.execute("DELETE FROM vote_ids WHERE id = ?", (vote_id.bytes,))
                if bucket is not None:
                    connection.execute("UPDATE hourly_counts SET votes = votes - 1 "
                                       "WHERE poll = ? AND hour = ? AND participant = ? AND votes > 0", bucket)
                    connection.execute("DELETE FROM hourly_counts WHERE votes <= 0")
                connection.execute("COMMIT")
            finally:
                connection.close()
        except Exception as error:
            problems.append(f"rescue failed: {error}")
        for program in ("consumer", "api", "nginx"):
            if program_state(program) != "RUNNING":
                supervisorctl("start", program)

    def scenarios(self):
        kinds = poison_kinds(self.poll, self.participants[0])
        listed = [
            ("consumer SIGKILL", self.kill("consumer", signal.SIGKILL)),
            ("API SIGKILL", self.kill("api", signal.SIGKILL)),
            ("broker stop+start", self.broker_restart),
            ("broker memory alarm", self.memory_alarm),
            ("store locked 10s", self.store_locked),
            ("slow consumer 10s", self.slow_consumer),
            ("API SIGTERM", self.kill("api", signal.SIGTERM)),
            ("consumer SIGTERM", self.kill("consumer", signal.SIGTERM)),
        ] + [(f"poison: {kind}", self.poison(kind, make)) for kind, make in kinds.items()]
        only = [name.strip() for name in ENV.get("FAULTS_ONLY", "").split(",") if name.strip()]
        return [(name, action) for name, action in listed if not only or any(o in name for o in only)]

    def run(self):
        started = now()
        self.monitor.start()
        self.load.start(paused=True)
        for name, action in self.scenarios():
            self.run_scenario(name, action)
        self.load.stop()
        self.monitor.stopped = True
        self.print_table()
        passed = len(self.rows) - self.failures
        log(f"suite time {now() - started:.0f} s")
        print(f"{passed} passed, {self.failures} failed", flush=True)
        return self.failures == 0

    def run_scenario(self, name, action):
        log(f"scenario: {name}")
        problems = []
        scenario = {}
        _, dead_before = queue_depths() or (0, 0)
        _, _, duplicates_before = self.monitor.snapshot()
        self.load.begin(name)
        time.sleep(3)                                  # the load is steady before the fault
        fault_started = now()
        try:
            action(scenario)
        except Exception as error:
            problems.append(f"fault action failed: {error}")
        fault_ended = now()
        self.load.watch_for_202(fault_ended)
        recovered = self.wait_recovered(fault_ended, problems)
        time.sleep(2)                                  # load keeps running after recovery
        if not self.load.pause():
            problems.append("votes still in flight after their deadline")
        problems.extend(scenario.get("problems", []))
        self.wait_settled(problems)
        stats = self.load.stats[name]
        self.check(name, scenario, stats, problems)
        depths = queue_depths() or (0, dead_before)
        _, _, duplicates_after = self.monitor.snapshot()
        row = {
            "scenario": name, "sent": stats.sent, "202": stats.accepted, "503": stats.unavailable,
            "retries": stats.retries, "counted": scenario.get("counted", 0),
            "duplicates": int(duplicates_after - duplicates_before),
            "dead": scenario.get("dead_by_consumer", depths[1] - dead_before),
            "recover": recovered, "fault": fault_ended - fault_started, "problems": problems,
        }
        if not name.startswith("poison") and row["dead"] != 0:
            problems.append(f"{row['dead']} messages dead-lettered, expected 0")
        if problems:
            self.failures += 1
            for problem in problems:
                log(f"  FAIL {name}: {problem}")
        self.rows.append(row)

    def wait_recovered(self, fault_ended, problems):
        """Seconds from the fault's end until a vote got 202 again, the consumer counted
        again and then the queue was back to its usual depth (a few batches)."""
        deadline = fault_ended + QUIET_DEADLINE
        got_202 = drained = None
        while now() < deadline:
            with self.load.lock:
                first = self.load.first_202_after
            if got_202 is None and first is not None:
                got_202 = first
            depth, depth_at, _ = self.monitor.snapshot()
            counting = self.monitor.counting_since(fault_ended)
            if (drained is None and depth is not None and counting is not None
                    and depth_at > counting and depth <= DRAINED_DEPTH):
                drained = depth_at
            if got_202 is not None and drained is not None:
                return max(got_202, drained) - fault_ended
            time.sleep(0.1)
        problems.append("no recovery within %.0f s (202 again: %s, queue drained: %s)"
                        % (QUIET_DEADLINE, got_202 is not None, drained is not None))
        return None

    def wait_settled(self, problems):
        """The queue is empty and the store holds as many counted ids as votes got 202."""
        if ballot.wait_settled(ready_messages, SQLITE_PATH, self.load.accepted, QUIET_DEADLINE) is not None:
            return True
        problems.append("the stack did not settle (queue empty, every 202 counted) within %.0f s" % QUIET_DEADLINE)
        return False

    def check(self, name, scenario, stats, problems):
        try:
            ids, rows = read_store(SQLITE_PATH)
        except sqlite3.Error as error:
            problems.append(f"cannot read the store: {error}")
            return
        accepted = dict(self.load.accepted)
        missing = [vid for vid in accepted if vid not in ids]
        extra = ids - set(accepted)
        if missing:
            problems.append(f"{len(missing)} ids that got 202 are not counted")
        poison_counted = extra & self.poison_ids
        if poison_counted:
            problems.append(f"{len(poison_counted)} poison votes counted")
        if extra - self.poison_ids:
            problems.append(f"{len(extra - self.poison_ids)} ids counted that never got 202")
        want = votes_per_participant(self.participants, accepted)
        have = {p: 0 for p in self.participants}
        others = 0
        earliest, latest = hour_start(int(self.started_at * 1000)) - 3600, time.time() + 3600
        for poll, hour, participant, votes in rows:
            if poll == self.poll and participant in have and earliest <= hour <= latest:
                have[participant] += votes
            else:
                others += votes
        if have != want:
            problems.append(f"store per participant {have} != 202s {want} (a vote counted twice or lost)")
        if others:
            problems.append(f"{others} votes counted for an unknown poll or participant or an hour outside the run")
        if sum(votes for *_, votes in rows) != len(ids):
            problems.append(f"store counters {sum(votes for *_, votes in rows)} != counted ids {len(ids)}")
        totals = totals_problem(API_URL, want)
        if totals:
            problems.append(totals)
        scenario["counted"] = sum(1 for vid in list(stats.ids) if vid in ids)
        if stats.unexpected:
            log(f"  {name}: other answers (retried): {stats.unexpected}")
        problems.extend(stats.problems())
        if "restarts_before" in scenario:
            program, before = scenario["restarts_before"]
            after = restarts().get(program, 0)
            if after <= before:
                problems.append(f"supervisord did not restart {program} (restarts {before} -> {after})")
            if program_state(program) != "RUNNING":
                problems.append(f"{program} is {program_state(program)}")

    def print_table(self):
        header = ("scenario", "sent", "202", "503", "retries", "counted", "dup skipped", "dead-lettered", "recover s", "result")
        lines = []
        for row in self.rows:
            recover = "-" if row["recover"] is None else f"{row['recover']:.1f}"
            lines.append((row["scenario"], row["sent"], row["202"], row["503"], row["retries"], row["counted"],
                          row["duplicates"], row["dead"], recover, "FAIL" if row["problems"] else "ok"))
        widths = [max(len(str(x)) for x in column) for column in zip(header, *lines)]
        print()
        print("| " + " | ".join(str(h).ljust(w) for h, w in zip(header, widths)) + " |")
        print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        for line in lines:
            print("| " + " | ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w)
                                    for i, (v, w) in enumerate(zip(line, widths))) + " |")
        print()
        for row in self.rows:
            for problem in row["problems"]:
                print(f"FAIL {row['scenario']}: {problem}")


def main():
    suite = Suite()
    ok = suite.run()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
