#!/usr/bin/env python3
"""Cluster failover suite: ballot-like load while the vote queue's leader node is killed.

Started by Tests/cluster/run.sh (./run.sh test --only cluster), which starts a 3-node
RabbitMQ cluster, VoteConsumer and VoteAPI (both given the list of the three nodes, the
queue leader's first) and passes everything through the environment:

  CLUSTER_API_URL                      the API (tokens, votes, /total)
  CLUSTER_API_METRICS_URL              the API's /metrics (paredao_amqp_failovers_total)
  CLUSTER_CONSUMER_METRICS_URL         the consumer's /metrics (failovers, duplicates skipped)
  CLUSTER_CTL                          scripts/rabbitmq-cluster.sh with the suite's settings
  CLUSTER_SQLITE_PATH, CLUSTER_QUEUE   the store and the vote queue
  CLUSTER_TOKEN_TOOL                   paredao-token
  CLUSTER_RATE (300 votes/s), CLUSTER_CLIENTS (30), CLUSTER_SECONDS (45 s of load),
  CLUSTER_KILL_AT (15 s into the load), CLUSTER_DOWN_SECONDS (10: then the node restarts),
  CLUSTER_MAX_503_SECONDS (8: the longest time the API may answer only 503)

Each client is one ballot: one session, one vote at a time at its share of the rate; each
vote has its own voteId and is sent again with the same id on 503, 429, 502/504, a
time-out or a connection error (backoff 50 ms doubling to 1 s) until it gets 202 or 60 s
passed (it "gave up"). Mid-run the node that leads the vote queue gets SIGKILL; it is
started again DOWN seconds later. After the load the suite waits until the queue is empty
and the store stops changing, then checks that every id that got a 202 is counted exactly
once (the SQLite vote_ids and hourly_counts, per participant, and /total), that nothing
else was counted, that no vote gave up, that a new leader was elected, that the API and
the consumer failed over (they were connected to the killed node), and that the longest
stretch of only-503 answers stayed under the limit. Prints the leader before and after,
the timings and the counts; exits 1 when a check failed.
"""

import json
import os
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from ballot import (http_get, logger, mint_tokens, now, read_store, samples_sum, totals_problem,  # noqa: E402
                    votes_per_participant)
import ballot  # noqa: E402

ENV = os.environ
API_URL = ENV["CLUSTER_API_URL"]
API_METRICS = ENV["CLUSTER_API_METRICS_URL"]
CONSUMER_METRICS = ENV["CLUSTER_CONSUMER_METRICS_URL"]
CTL = ENV["CLUSTER_CTL"]
SQLITE_PATH = ENV["CLUSTER_SQLITE_PATH"]
QUEUE = ENV.get("CLUSTER_QUEUE", "votes")
TOKEN_TOOL = ENV["CLUSTER_TOKEN_TOOL"]
RATE = float(ENV.get("CLUSTER_RATE", "300"))
CLIENTS = int(ENV.get("CLUSTER_CLIENTS", "30"))
LOAD_SECONDS = float(ENV.get("CLUSTER_SECONDS", "45"))
KILL_AT = float(ENV.get("CLUSTER_KILL_AT", "15"))
DOWN_SECONDS = float(ENV.get("CLUSTER_DOWN_SECONDS", "10"))
MAX_503_SECONDS = float(ENV.get("CLUSTER_MAX_503_SECONDS", "8"))
VOTE_DEADLINE = 60.0
SETTLE_DEADLINE = 90.0

log = logger("cluster")


def metric_sum(url, name):
    """The sum of every sample of NAME (all label sets) on a /metrics page, or None."""
    try:
        text = http_get(url).decode()
    except OSError:
        return None
    return samples_sum(text, name)


def ctl(*args, timeout=120):
    result = subprocess.run([CTL, *args], capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"rabbitmq-cluster.sh {' '.join(args)} failed: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout.strip()


def leader():
    try:
        return ctl("leader", timeout=30) or None
    except (RuntimeError, subprocess.TimeoutExpired):
        return None


def queue_depth():
    """Messages (ready and unacknowledged) in the vote queue, or None when no node answers."""
    try:
        out = ctl("ctl", "list_queues", "name", "messages", timeout=30)
    except (RuntimeError, subprocess.TimeoutExpired):
        return None
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 2 and parts[0] == QUEUE and parts[1].isdigit():
            return int(parts[1])
    return None


def store_read():
    """(set of counted ids, {participant: votes}, sum of every counter)."""
    ids, rows = read_store(SQLITE_PATH)
    per_participant = {}
    for _poll, _hour, participant, votes in rows:
        per_participant[participant] = per_participant.get(participant, 0) + votes
    return ids, per_participant, sum(per_participant.values())


class Load(ballot.Load):
    """Ballot-like clients straight to the API; every answer is kept on one timeline (time,
    status), and the API's error code of every 503. A refusal other than 429/502/503/504
    ends the vote (a retry cannot change it)."""

    def __init__(self, tokens, participants):
        super().__init__(tokens, participants, API_URL, RATE, VOTE_DEADLINE, retry_refusals=False)
        self.answers = []        # (monotonic time, status) of every attempt
        self.codes_503 = {}      # the API's error code of each 503 (broker_unavailable, …)

    def answered(self, status, answer, at):
        code = None
        if status == 503:
            try:
                code = json.loads(answer)["error"]["code"]
            except (ValueError, KeyError, TypeError):
                code = "?"
        with self.lock:
            self.answers.append((at, status))
            if code is not None:
                self.codes_503[code] = self.codes_503.get(code, 0) + 1


def unavailable_windows(answers, since):
    """From `since` on: (longest stretch in which every answer was a 503 — from the first 503
    after a 202 to the next 202 —, time from the first to the last 503, number of 503s)."""
    longest = 0.0
    first_503 = last_503 = None
    streak_start = None
    count = 0
    for at, status in sorted(answers):
        if at < since:
            continue
        if status == 503:
            count += 1
            first_503 = at if first_503 is None else first_503
            last_503 = at
            if streak_start is None:
                streak_start = at
        elif status == 202 and streak_start is not None:
            longest = max(longest, at - streak_start)
            streak_start = None
    if streak_start is not None and last_503 is not None:
        longest = max(longest, last_503 - streak_start)
    span = 0.0 if first_503 is None else last_503 - first_503
    return longest, span, count


class Suite:
    def __init__(self):
        poll = json.loads(http_get(API_URL + "/api/v1/poll"))["poll"]
        self.participants = [p["id"] for p in poll["participants"]]
        log(f"minting {CLIENTS} session tokens")
        self.load = Load(mint_tokens(TOKEN_TOOL, API_URL, CLIENTS), self.participants)
        self.problems = []
        self.report = {}

    def expect(self, condition, problem):
        if not condition:
            self.problems.append(problem)

    def run(self):
        failovers_before = (metric_sum(API_METRICS, "paredao_amqp_failovers_total") or 0.0,
                            metric_sum(CONSUMER_METRICS, "paredao_amqp_failovers_total") or 0.0)
        leader_before = leader()
        self.expect(leader_before is not None, "the vote queue has no leader before the kill")
        log(f"leader before: {leader_before}; load {RATE:.0f} votes/s from {CLIENTS} clients for {LOAD_SECONDS:.0f} s")
        started = now()
        self.load.start()
        time.sleep(max(0.0, started + KILL_AT - now()))

        killed_at = now()
        killed = ctl("kill-leader")
        log(f"SIGKILL {killed} at {killed_at - started:.1f} s")
        killed_node = killed.split()[0]
        node_index = killed_node.split("@")[0].rsplit("-", 1)[1]
        new_leader, elected_at = None, None
        while now() < killed_at + 60:
            current = leader()
            if current and current != killed_node:
                new_leader, elected_at = current, now()
                break
            time.sleep(0.2)
        self.expect(new_leader is not None, "no new leader within 60 s of the kill")
        if elected_at is not None:
            log(f"new leader {new_leader} {elected_at - killed_at:.1f} s after the kill (as rabbitmqctl sees it)")

        time.sleep(max(0.0, killed_at + DOWN_SECONDS - now()))
        restart_at = now()
        log(f"starting {killed_node} again")
        try:
            ctl("restart-node", node_index, timeout=180)
            restarted_at = now()
            log(f"{killed_node} is back as a member {restarted_at - restart_at:.1f} s later")
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            restarted_at = None
            self.problems.append(f"restarting {killed_node} failed: {error}")

        time.sleep(max(0.0, started + LOAD_SECONDS - now()))
        log("load stops; waiting for the votes in flight")
        self.load.stop()
        self.expect(self.load.join(VOTE_DEADLINE + 15), "some clients did not finish within the vote deadline")
        load_ended = now()
        leader_after = leader()

        settled_after = self.wait_settled()
        self.check()
        longest, span, count_503 = unavailable_windows(self.load.answers, killed_at)
        self.expect(longest <= MAX_503_SECONDS,
                    f"the API answered only 503 for {longest:.1f} s (limit {MAX_503_SECONDS:.0f} s)")
        failovers_after = (metric_sum(API_METRICS, "paredao_amqp_failovers_total") or 0.0,
                           metric_sum(CONSUMER_METRICS, "paredao_amqp_failovers_total") or 0.0)
        api_failovers = failovers_after[0] - failovers_before[0]
        consumer_failovers = failovers_after[1] - failovers_before[1]
        self.expect(failovers_before == (0.0, 0.0), f"failovers before the kill (API, consumer): {failovers_before}")
        self.expect(api_failovers >= 1, "the API did not fail over (paredao_amqp_failovers_total did not rise)")
        self.expect(consumer_failovers >= 1, "the consumer did not fail over (paredao_amqp_failovers_total did not rise)")
        self.expect(leader_after is not None, "the vote queue has no leader after the run")

        first_202_after = next((at for at, status in sorted(self.load.answers) if at > killed_at and status == 202), None)
        rows = [
            ("leader before", leader_before),
            ("killed (SIGKILL)", f"{killed} at {killed_at - started:.1f} s into the load"),
            ("new leader", f"{new_leader} after {elected_at - killed_at:.1f} s" if elected_at else "none"),
            ("first 202 after the kill", f"{first_202_after - killed_at:.2f} s" if first_202_after else "none"),
            ("longest only-503 stretch", f"{longest:.2f} s (limit {MAX_503_SECONDS:.0f} s)"),
            ("first to last 503", f"{span:.2f} s, {count_503} answers 503 {self.load.codes_503}"),
            ("node restarted", f"{restart_at - killed_at:.1f} s after the kill, member again after {restarted_at - restart_at:.1f} s" if restarted_at else "failed"),
            ("leader after", leader_after),
            ("failovers (API, consumer)", f"{api_failovers:.0f}, {consumer_failovers:.0f}"),
            ("votes sent / 202 / retries / gave up", f"{self.load.tally.sent} / {len(self.load.accepted)} / {self.load.tally.retries} / {self.load.tally.gave_up}"),
            ("rate achieved", f"{len(self.load.accepted) / (load_ended - started):.0f} votes/s (202s over {load_ended - started:.0f} s)"),
            ("counted in the store", f"{self.report.get('counted')} ids, counters {self.report.get('counters')}, duplicates skipped {self.report.get('duplicates')}"),
            ("settled", f"{settled_after:.1f} s after the load" if settled_after is not None else "no"),
        ]
        print()
        width = max(len(name) for name, _ in rows)
        for name, value in rows:
            print(f"  {name.ljust(width)}  {value}")
        print("  answers per second after the kill (202 / 503 / other):")
        print("   " + " ".join(self.timeline(killed_at)))
        print()
        if self.load.tally.unexpected:
            log(f"other answers (retried): {self.load.tally.unexpected}")
        for problem in self.problems:
            print(f"FAIL {problem}")
        print("cluster failover: " + ("FAILED" if self.problems else "passed"))
        return not self.problems

    def timeline(self, since, seconds=16):
        buckets = [[0, 0, 0] for _ in range(seconds)]
        for at, status in self.load.answers:
            second = int(at - since)
            if 0 <= second < seconds:
                buckets[second][0 if status == 202 else 1 if status == 503 else 2] += 1
        return [f"{i}s:{a}/{b}/{c}" for i, (a, b, c) in enumerate(buckets)]

    def wait_settled(self):
        """Seconds until the queue is empty and the store holds every 202, or None."""
        settled = ballot.wait_settled(queue_depth, SQLITE_PATH, self.load.accepted, SETTLE_DEADLINE)
        if settled is not None:
            return settled
        self.problems.append(f"the stack did not settle (queue empty, every 202 counted) within {SETTLE_DEADLINE:.0f} s")
        return None

    def check(self):
        try:
            ids, per_participant, counters = store_read()
        except sqlite3.Error as error:
            self.problems.append(f"cannot read the store: {error}")
            return
        accepted = dict(self.load.accepted)
        self.report.update(counted=len(ids), counters=counters,
                           duplicates=f"{metric_sum(CONSUMER_METRICS, 'paredao_consumer_duplicates_total') or 0:.0f}")
        missing = [vote_id for vote_id in accepted if vote_id not in ids]
        extra = ids - set(accepted)
        self.expect(len(accepted) > 0, "no vote got 202")
        self.expect(not missing, f"{len(missing)} ids that got 202 are not counted")
        self.expect(not extra, f"{len(extra)} ids counted that never got 202")
        self.expect(counters == len(ids), f"store counters {counters} != counted ids {len(ids)} (a vote counted twice)")
        want = votes_per_participant(self.participants, accepted)
        have = {p: per_participant.get(p, 0) for p in self.participants}
        self.expect(have == want, f"store per participant {have} != 202s {want}")
        self.problems.extend(self.load.tally.problems())
        totals = totals_problem(API_URL, want)
        if totals:
            self.problems.append(totals)


def main():
    sys.exit(0 if Suite().run() else 1)


if __name__ == "__main__":
    main()
