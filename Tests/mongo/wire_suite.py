#!/usr/bin/env python3
"""The MongoDB store at the wire level: the real VoteConsumer and VoteAPI processes in front
of mockupdb (MongoDB's own wire-protocol test server), whose every reply is scripted here.

Started by Tests/mongo/run.sh, which passes through the environment:

  WIRE_BIN          folder of the VoteAPI, VoteConsumer and paredao-token binaries
  WIRE_AMQP_URL     the test broker, as paredao-admin
  WIRE_BROKER_CTL   scripts/rabbitmq.sh for that broker (declare-queue, ctl)
  WIRE_LOG_DIR      where the processes' logs go
  WIRE_ONLY         run only the scenarios whose names contain this (comma-separated)

mockupdb stores nothing, so this checks what the store sends and how it reacts to each
answer (command shape, transactions, retries, acks), not what a database would do with it;
the store contract suite (Tests/VoteStoreTests, MONGO_URL=…) checks that on a real server.
Prints one line per scenario and "N passed, N failed"; exits 1 when any failed.
"""

import datetime
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import traceback
import uuid

import pika
from bson import Binary, Int64, ObjectId
from mockupdb import MockupDB

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from ballot import hour_start, logger, vote_message  # noqa: E402

ENV = os.environ
BIN = ENV["WIRE_BIN"]
AMQP_URL = ENV["WIRE_AMQP_URL"]
BROKER_CTL = ENV["WIRE_BROKER_CTL"]
LOG_DIR = ENV["WIRE_LOG_DIR"]
ONLY = [name for name in ENV.get("WIRE_ONLY", "").split(",") if name]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUEUE = "votes-mongo-wire"
API_PORT = 18580
POLL = json.load(open(os.path.join(ROOT, "config", "poll.json")))
POLL_ID = POLL["id"]
PARTICIPANTS = [participant["id"] for participant in POLL["participants"]]
RETENTION_HOURS = 24
MARGIN_SECONDS = 900            # PAREDAO_DEDUP_MARGIN_SECONDS' default
KEPT_SECONDS = RETENTION_HOURS * 3600 + MARGIN_SECONDS
SHARD = 5                       # the scripted consumer's PAREDAO_COUNTER_SHARD
WAIT = 20.0                     # longest wait for any one command or condition


log = logger("mongo-wire")


class Failure(Exception):
    pass


def expect(condition, message):
    if not condition:
        raise Failure(message)


def wait_until(condition, what, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise Failure(f"timed out after {timeout:.0f} s waiting for {what}")


# ---- the mock server --------------------------------------------------------------------

class MockMongo:
    """A mockupdb server that answers the handshake and housekeeping itself (as a replica
    set primary, or a standalone server) and queues everything else for the scenario."""

    def __init__(self, replica_set=True):
        self.server = MockupDB(request_timeout=WAIT)
        self.port = self.server.run()
        self.replica_set = replica_set
        self.aborted = []
        self.on_abort = None        # function(request) of a scenario's conflict model
        self.deletes = []
        self.handlers = {}          # command name (lower case) -> function(request)
        self.lock = threading.Lock()
        self.polls = []             # the polls collection, as the store wrote it
        self.polls_index_ok = None
        self.poll_commands = []
        self.server.autoresponds(self.housekeeping)

    @property
    def url(self):
        options = "serverSelectionTimeoutMS=3000&socketTimeoutMS=8000&heartbeatFrequencyMS=60000"
        if self.replica_set:
            options = "replicaSet=rs0&" + options
        return f"mongodb://127.0.0.1:{self.port}/paredao?{options}"

    def handshake(self):
        me = f"127.0.0.1:{self.port}"
        reply = {
            "ismaster": True, "isWritablePrimary": True, "helloOk": True,
            "minWireVersion": 0, "maxWireVersion": 13, "maxBsonObjectSize": 16777216,
            "maxMessageSizeBytes": 48000000, "maxWriteBatchSize": 100000,
            "localTime": datetime.datetime.now(datetime.timezone.utc), "connectionId": 1,
            "logicalSessionTimeoutMinutes": 30, "ok": 1,
        }
        if self.replica_set:
            reply.update(setName="rs0", setVersion=1, hosts=[me], primary=me, me=me,
                         electionId=ObjectId("7fffffff0000000000000001"))
        return reply

    def housekeeping(self, request):
        name = (request.command_name or "").lower()
        if name in ("ismaster", "hello"):
            return request.replies(self.handshake())
        if name in ("endsessions", "killcursors"):
            return request.replies(ok=1)
        if name == "aborttransaction":
            with self.lock:
                self.aborted.append(request.doc)
            if self.on_abort:
                self.on_abort(request)
            return request.replies(ok=1)
        if name == "delete":
            # The consumer prunes old vote ids once a minute (TTL does it too).
            with self.lock:
                self.deletes.append((time.time(), request.doc))
            return request.replies(ok=1, n=0)
        if self.answer_polls(name, request):
            return True
        if name in self.handlers:
            return self.handlers[name](request)
        return False

    def answer_polls(self, name, request):
        """The polls collection (read every second, seeded once from config/poll.json): kept
        here like a tiny database, so the vote scenarios see the seeded poll open."""
        collection = request.doc.get(request.command_name) if request.command_name else None
        if collection not in ("polls", "audit_log"):
            return False
        with self.lock:
            self.poll_commands.append(request.doc)
            if name == "createindexes":
                index = request.doc["indexes"][0]
                self.polls_index_ok = dict(index["key"]) == {"state": 1} and bool(index.get("unique")) \
                    and dict(index["partialFilterExpression"]) == {"state": "open"}
                request.replies(ok=1)
            elif name == "find":
                documents = self.polls if collection == "polls" else []
                request.replies(cursor={"id": Int64(0), "ns": f"paredao.{collection}", "firstBatch": documents}, ok=1)
            elif name == "insert":
                documents = list(request.doc["documents"])
                if collection == "polls":
                    if any(existing["_id"] == document["_id"] for document in documents for existing in self.polls):
                        request.replies(ok=1, n=0, writeErrors=[{"index": 0, "code": 11000, "errmsg": "E11000 duplicate key"}])
                        return True
                    self.polls.extend(documents)
                request.replies(ok=1, n=len(documents))
            else:
                request.replies(ok=1, n=0)
        return True

    def receives(self, command, collection=None):
        request = self.server.receives(timeout=WAIT)
        expect(request is not None, f"mock stopped while waiting for {command}")
        name = request.command_name
        expect(name == command, f"expected {command}, got {name}: {dict(request.doc)}")
        if collection is not None:
            expect(request.doc[command] == collection, f"{command} on {request.doc[command]}, expected {collection}")
        return request

    def nothing_more(self, seconds):
        """No request but housekeeping for `seconds`."""
        expect(not self.server.got(timeout=seconds), "an unexpected command arrived")

    def stop(self):
        self.server.stop()


# ---- the broker ------------------------------------------------------------------------

def amqp():
    parameters = pika.URLParameters(AMQP_URL)
    parameters.socket_timeout = 5
    parameters.connection_attempts = 1
    return pika.BlockingConnection(parameters)


def publish(votes):
    """Publishes (vote id, participant, accepted-at millis) tuples, one message each, confirmed."""
    connection = amqp()
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for vote_id, participant, millis in votes:
            channel.basic_publish("", QUEUE, vote_message(vote_id, millis, POLL_ID, participant),
                                  pika.BasicProperties(delivery_mode=2), mandatory=True)
    finally:
        connection.close()


def queue_counts():
    """(ready, unacknowledged) messages of the vote queue, from rabbitmqctl."""
    out = subprocess.run([BROKER_CTL, "ctl", "list_queues", "--quiet", "--no-table-headers", "name", "messages_ready", "messages_unacknowledged"],
                         capture_output=True, text=True, timeout=60).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == QUEUE:
            return int(parts[1]), int(parts[2])
    raise Failure(f"queue {QUEUE} not listed: {out!r}")


def ready_count():
    """Ready messages of the vote queue (queue.declare-ok: exact, unlike rabbitmqctl's
    periodic statistics)."""
    connection = amqp()
    try:
        return connection.channel().queue_declare(QUEUE, passive=True).method.message_count
    finally:
        connection.close()


def drained():
    return ready_count() == 0 and queue_counts() == (0, 0)


def dead_lettered():
    """Messages in the vote queue's dead-letter queue."""
    connection = amqp()
    try:
        return connection.channel().queue_declare(QUEUE + ".dead", passive=True).method.message_count
    finally:
        connection.close()


class ConflictModel:
    """What a replica set does with concurrent transactions, reduced to the part that
    matters here: a document an uncommitted transaction wrote stays its own until that
    transaction commits or aborts, and another transaction that writes it gets WriteConflict
    (code 112, label TransientTransactionError) and is aborted, as WiredTiger answers.
    Commits take `commit_delay`, which keeps documents held long enough for consumers to
    overlap. Keeps the ids and counters that committed, to check every vote counted once."""

    def __init__(self, mongo, commit_delay=0.3):
        self.lock = threading.Lock()
        self.commit_delay = commit_delay
        self.owner = {}             # document -> transaction holding it
        self.pending = {}           # transaction -> (ids, {bucket: {participant: n}})
        self.committed_ids = set()
        self.totals = {}            # counter document id -> {participant: n}
        self.conflicts = 0
        self.commits = 0
        mongo.handlers["update"] = self.update
        mongo.handlers["committransaction"] = self.commit
        mongo.handlers["createindexes"] = lambda request: request.replies(ok=1)
        mongo.on_abort = self.abort

    @staticmethod
    def transaction_of(doc):
        return bytes(doc["lsid"]["id"]), int(doc["txnNumber"])

    def release(self, transaction):
        for document in [document for document, owner in self.owner.items() if owner == transaction]:
            del self.owner[document]
        self.pending.pop(transaction, None)

    def update(self, request):
        doc = request.doc
        transaction = self.transaction_of(doc)
        collection = doc["update"]
        with self.lock:
            ids, increments = self.pending.setdefault(transaction, ([], {}))
            documents = [(collection, uuid_of(u["q"]["_id"]).bytes if collection == "vote_ids" else u["q"]["_id"]) for u in doc["updates"]]
            if any(self.owner.get(document, transaction) != transaction for document in documents):
                self.conflicts += 1
                self.release(transaction)
                return request.replies(ok=0, code=112, codeName="WriteConflict", errorLabels=["TransientTransactionError"],
                                       errmsg="WriteConflict error: this operation conflicted with another operation")
            for document in documents:
                self.owner[document] = transaction
            if collection == "vote_ids":
                upserted = []
                for index, (_, vote_id) in enumerate(documents):
                    if vote_id not in self.committed_ids and vote_id not in ids:
                        ids.append(vote_id)
                        upserted.append({"index": index, "_id": doc["updates"][index]["q"]["_id"]})
                return request.replies(ok=1, n=len(documents), nModified=0, upserted=upserted)
            for update in doc["updates"]:
                bucket = increments.setdefault(update["q"]["_id"], {})
                for field, value in update["u"]["$inc"].items():
                    bucket[field[len("votes."):]] = bucket.get(field[len("votes."):], 0) + int(value)
            return request.replies(ok=1, n=len(documents), nModified=0)

    def commit(self, request):
        time.sleep(self.commit_delay)
        transaction = self.transaction_of(request.doc)
        with self.lock:
            if transaction not in self.pending:
                return request.replies(ok=0, code=251, codeName="NoSuchTransaction", errorLabels=["TransientTransactionError"],
                                       errmsg="Transaction has been aborted.")
            ids, increments = self.pending[transaction]
            self.committed_ids.update(ids)
            for bucket, counts in increments.items():
                total = self.totals.setdefault(bucket, {})
                for participant, count in counts.items():
                    total[participant] = total.get(participant, 0) + count
            self.commits += 1
            self.release(transaction)
        return request.replies(ok=1)

    def abort(self, request):
        with self.lock:
            self.release(self.transaction_of(request.doc))

    def counted(self):
        with self.lock:
            return sum(count for counts in self.totals.values() for count in counts.values())


# ---- the processes ---------------------------------------------------------------------

class Process:
    def __init__(self, name, arguments, env):
        self.name = name
        self.log_path = os.path.join(LOG_DIR, f"{name}.log")
        self.log_file = open(self.log_path, "ab")
        full_env = dict(os.environ)
        full_env.update(env)
        self.process = subprocess.Popen(arguments, env=full_env, stdout=self.log_file, stderr=subprocess.STDOUT, cwd=ROOT)
        log(f"started {name} (pid {self.process.pid}), log {self.log_path}")

    def kill(self):
        """SIGKILL: no shutdown, no acks, no goodbye to the broker."""
        self.process.kill()
        self.process.wait(timeout=10)

    def log_text(self):
        with open(self.log_path, "rb") as handle:
            return handle.read().decode(errors="replace")

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.log_file.close()


def service_env(mongo_url):
    return {
        "PAREDAO_AMQP_URL": AMQP_URL, "PAREDAO_QUEUE": QUEUE, "PAREDAO_STORE": "mongodb",
        "PAREDAO_MONGO_URL": mongo_url, "PAREDAO_LOG_LEVEL": "info",
    }


def start_consumer(mongo, name="consumer", shard=SHARD, **extra):
    env = service_env(mongo.url)
    env.update(PAREDAO_CONSUMER_BATCH_SIZE="100", PAREDAO_CONSUMER_BATCH_MS="300", PAREDAO_CONSUMER_METRICS_PORT="0",
               PAREDAO_DEDUP_RETENTION_HOURS=str(RETENTION_HOURS), PAREDAO_COUNTER_SHARD=str(shard))
    env.update(extra)
    return Process(name, [os.path.join(BIN, "VoteConsumer")], env)


def start_api(mongo):
    env = service_env(mongo.url)
    env.update(PAREDAO_API_PORT=str(API_PORT), PAREDAO_API_METRICS_PORT="0", PAREDAO_TOTALS_REFRESH_MS="200")
    return Process("api", [os.path.join(BIN, "VoteAPI")], env)


def api_call(method, path, body=None, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", API_PORT, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def api_ready():
    try:
        return api_call("GET", "/healthz")[0] == 200
    except OSError:
        return False


def token():
    out = subprocess.run([os.path.join(BIN, "paredao-token"), "--url", f"http://127.0.0.1:{API_PORT}", "--count", "1"],
                         capture_output=True, text=True, timeout=120)
    expect(out.returncode == 0, f"paredao-token failed: {out.stderr}")
    return out.stdout.split()[0]


# ---- expectations on commands ----------------------------------------------------------

def uuid_of(value):
    if isinstance(value, uuid.UUID):
        return value
    expect(isinstance(value, Binary) and value.subtype == 4 and len(value) == 16, f"vote id is not a 16-byte UUID binary: {value!r}")
    return uuid.UUID(bytes=bytes(value))


def millis_of(value):
    expect(isinstance(value, datetime.datetime), f"not a BSON date: {value!r}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return round(value.timestamp() * 1000)


def check_id_upserts(request, votes, first_in_transaction=True):
    """The vote_ids `update`: one `$setOnInsert` upsert per vote, unordered, in a transaction."""
    doc = request.doc
    expect(doc.get("ordered") is False, f"ids update is not ordered: false: {doc.get('ordered')!r}")
    expect("lsid" in doc and "txnNumber" in doc, "ids update carries no lsid/txnNumber")
    expect(doc.get("autocommit") is False, "ids update is not autocommit: false")
    if first_in_transaction:
        expect(doc.get("startTransaction") is True, "first command of the transaction lacks startTransaction: true")
        expect((doc.get("readConcern") or {}).get("level") == "snapshot", f"the transaction's read concern is {doc.get('readConcern')}, expected snapshot")
    expect("writeConcern" not in doc, "a command inside a transaction carries its own writeConcern")
    updates = doc["updates"]
    expect(len(updates) == len(votes), f"{len(updates)} id upserts for {len(votes)} votes")
    want = {vote_id: millis for vote_id, _, millis in votes}
    for update in updates:
        expect(set(update["q"]) == {"_id"}, f"id filter is not {{_id}}: {update['q']}")
        vote_id = uuid_of(update["q"]["_id"])
        expect(vote_id in want, f"upsert of an unknown id {vote_id}")
        expect(list(update["u"]) == ["$setOnInsert"], f"id update is not only $setOnInsert: {update['u']}")
        at = millis_of(update["u"]["$setOnInsert"]["at"])
        if want[vote_id] is None:  # accepted by the API: some time in the last minute
            expect(abs(at - time.time() * 1000) < 60_000, f"id's `at` {at} is not the API's accepted-at time")
        else:
            expect(at == want[vote_id], "id's `at` is not its accepted-at time")
        expect(update.get("upsert") is True and update.get("multi") is False, f"id update flags: {update}")
    return [uuid_of(update["q"]["_id"]) for update in updates]


def check_counter_upserts(request, lsid, txn_number, counted, shard=SHARD):
    """The hourly_totals `update`: one `$inc` upsert per (poll, hour) of the counted votes, on
    the consumer's counter shard, its filter naming the whole shard key (poll, hour, shard)."""
    doc = request.doc
    expect(doc.get("lsid") == lsid and doc.get("txnNumber") == txn_number, "counter update is not in the ids' transaction")
    expect("startTransaction" not in doc and doc.get("autocommit") is False, "counter update's transaction fields")
    expect(doc.get("ordered") is False, "counter update is not ordered: false")
    want = {}
    for _, participant, millis in counted:
        bucket = want.setdefault(hour_start(millis), {})
        bucket[participant] = bucket.get(participant, 0) + 1
    got = {}
    for update in doc["updates"]:
        query = update["q"]
        bucket_id = query["_id"]
        poll, hour, bucket_shard = bucket_id.rsplit(":", 2)
        expect(poll == POLL_ID, f"bucket {bucket_id} of another poll")
        expect(int(bucket_shard) == shard, f"bucket {bucket_id} is not on the consumer's shard {shard}")
        expect(set(query) == {"_id", "poll", "hour", "shard"}, f"counter filter {dict(query)} does not name the shard key (poll, hour, shard)")
        expect(query["poll"] == POLL_ID and millis_of(query["hour"]) == int(hour) * 1000 and query["shard"] == shard, f"counter filter {dict(query)}")
        expect(list(update["u"]) == ["$inc"], f"counter update is not only $inc: {update['u']}")
        increments = update["u"]["$inc"]
        for field, value in increments.items():
            expect(field.startswith("votes."), f"$inc of {field}")
            expect(isinstance(value, Int64), f"$inc of {field} is not a 64-bit integer: {value!r}")
        got[int(hour)] = {field[len("votes."):]: int(value) for field, value in increments.items()}
        expect(update.get("upsert") is True and update.get("multi") is False, f"counter update flags: {update}")
    expect(got == want, f"counter increments {got}, expected {want}")


def check_commit(request, lsid, txn_number):
    doc = request.doc
    expect(doc.get("$db") == "admin", "commitTransaction not on admin")
    expect(doc.get("lsid") == lsid and doc.get("txnNumber") == txn_number, "commit of another transaction")
    concern = doc.get("writeConcern") or {}
    expect(concern.get("w") == "majority", f"commit write concern is {concern}, expected w: majority")


def upserted_reply(request, indices):
    request.replies(ok=1, n=len(request.doc["updates"]), nModified=0,
                    upserted=[{"index": index, "_id": request.doc["updates"][index]["q"]["_id"]} for index in indices])


def new_votes(count, participants=None):
    millis = int(time.time() * 1000)
    participants = participants or PARTICIPANTS
    return [(uuid.uuid4(), participants[i % len(participants)], millis - i) for i in range(count)]


def transaction(mongo, votes, counted=None, first=True):
    """Receives one transaction's id upserts (answered: every id new, or the indices of
    `counted`), its counter upserts and its commit (answered ok)."""
    counted = votes if counted is None else counted
    ids = mongo.receives("update", "vote_ids")
    order = check_id_upserts(ids, votes, first_in_transaction=first)
    upserted_reply(ids, [order.index(vote_id) for vote_id, _, _ in counted])
    lsid, txn = ids.doc["lsid"], ids.doc["txnNumber"]
    if counted:
        counters = mongo.receives("update", "hourly_totals")
        check_counter_upserts(counters, lsid, txn, counted)
        counters.replies(ok=1, n=len(counters.doc["updates"]), nModified=0)
    commit = mongo.receives("commitTransaction")
    check_commit(commit, lsid, txn)
    return commit, lsid, txn


def startup(mongo):
    """What a store sends when it is opened for writing: the two indexes."""
    totals = mongo.receives("createIndexes", "hourly_totals")
    index = totals.doc["indexes"][0]
    expect(list(index["key"].items()) == [("poll", 1), ("hour", 1), ("shard", 1)], f"totals index key {index['key']}")
    totals.replies(ok=1)
    ids = mongo.receives("createIndexes", "vote_ids")
    index = ids.doc["indexes"][0]
    expect(dict(index["key"]) == {"at": 1}, f"TTL index key {index['key']}")
    expect(index.get("expireAfterSeconds") == KEPT_SECONDS, f"TTL {index.get('expireAfterSeconds')} s, expected the dedup window and its margin ({KEPT_SECONDS} s)")
    ids.replies(ok=1)


# ---- the scenarios ----------------------------------------------------------------------

class Suite:
    def __init__(self):
        self.consumer_mongo = MockMongo()
        self.api_mongo = MockMongo()
        self.api_docs = []
        self.finds = []
        self.api_mongo.handlers["find"] = self.answer_find
        self.processes = []
        self.results = []

    def answer_find(self, request):
        self.finds.append(request.doc)
        return request.replies(cursor={"id": Int64(0), "ns": "paredao.hourly_totals", "firstBatch": self.api_docs}, ok=1)

    def start(self):
        subprocess.run([BROKER_CTL, "declare-queue", QUEUE], check=True, capture_output=True, timeout=120)
        self.consumer = start_consumer(self.consumer_mongo)
        self.processes.append(self.consumer)
        startup(self.consumer_mongo)
        self.api = start_api(self.api_mongo)
        self.processes.append(self.api)
        wait_until(api_ready, "the API's /healthz")

    def stop(self):
        for process in reversed(self.processes):
            process.stop()
        self.consumer_mongo.stop()
        self.api_mongo.stop()

    def restart_consumer(self):
        self.processes.remove(self.consumer)
        self.consumer.stop()
        self.consumer = start_consumer(self.consumer_mongo)
        self.processes.append(self.consumer)
        startup(self.consumer_mongo)

    def scenario_votes_through_the_api(self):
        """Votes cast through the real API reach the mock as one transaction, acked after the commit."""
        session = token()
        votes = new_votes(5)
        for vote_id, participant, _ in votes:
            status, body = api_call("POST", "/api/v1/votes", json.dumps({"participant": participant, "voteId": str(vote_id)}),
                                {"Content-Type": "application/json", "Authorization": "Bearer " + session})
            expect(status == 202, f"vote answered {status}: {body[:200]!r}")
        ids = self.consumer_mongo.receives("update", "vote_ids")
        order = check_id_upserts(ids, [(vote_id, participant, None) for vote_id, participant, _ in votes])
        accepted = {uuid_of(update["q"]["_id"]): millis_of(update["u"]["$setOnInsert"]["at"]) for update in ids.doc["updates"]}
        counted = [(vote_id, participant, accepted[vote_id]) for vote_id, participant, _ in votes]
        upserted_reply(ids, list(range(len(order))))
        lsid, txn = ids.doc["lsid"], ids.doc["txnNumber"]
        counters = self.consumer_mongo.receives("update", "hourly_totals")
        check_counter_upserts(counters, lsid, txn, counted)
        counters.replies(ok=1, n=len(counters.doc["updates"]), nModified=0)
        commit = self.consumer_mongo.receives("commitTransaction")
        check_commit(commit, lsid, txn)
        # Nothing is acknowledged while the commit is unanswered: kill the consumer now and
        # every vote of the batch is back in the queue, then counted by its successor.
        self.consumer.kill()
        wait_until(lambda: ready_count() == 5, "the 5 unacknowledged votes back in the queue")
        self.restart_consumer()
        again, _, _ = transaction(self.consumer_mongo, counted)
        again.replies(ok=1)
        wait_until(drained, "the batch's acks after the commit")

    def scenario_redelivered_batch_counts_nothing(self):
        """The server reports every id as matched (not upserted): no $inc is sent, the batch is acked."""
        votes = new_votes(4, participants=PARTICIPANTS[:1])
        publish(votes)
        commit, _, _ = transaction(self.consumer_mongo, votes)
        commit.replies(ok=1)
        wait_until(drained, "the first delivery's acks")
        publish(votes)
        commit, _, _ = transaction(self.consumer_mongo, votes, counted=[])
        commit.replies(ok=1)
        wait_until(drained, "the redelivery's acks")
        # A batch mixing old and new ids counts only the new: the repeats come first and are
        # all of one participant, the new ones of the others, so a store that counted every
        # vote, or the first N, sends other increments than these.
        fresh = new_votes(2, participants=PARTICIPANTS[1:])
        publish(votes[:2] + fresh)
        commit, _, _ = transaction(self.consumer_mongo, votes[:2] + fresh, counted=fresh)
        commit.replies(ok=1)
        wait_until(drained, "the mixed batch's acks")

    def scenario_network_error_mid_batch(self):
        """The connection drops on the counter update: the transaction is aborted and run again, whole."""
        votes = new_votes(3)
        publish(votes)
        ids = self.consumer_mongo.receives("update", "vote_ids")
        check_id_upserts(ids, votes)
        first_txn = ids.doc["txnNumber"]
        upserted_reply(ids, [0, 1, 2])
        self.consumer_mongo.receives("update", "hourly_totals").hangup()
        commit, _, txn = transaction(self.consumer_mongo, votes)
        expect(txn != first_txn or commit.doc["lsid"] != ids.doc["lsid"], "the retry reused the failed transaction")
        commit.replies(ok=1)
        wait_until(drained, "the retried batch's acks")

    def scenario_not_primary(self):
        """`not primary` (the code alone, no label) on the first write: the store runs the
        transaction again in this process (no new start-up, no redelivery)."""
        votes = new_votes(2)
        publish(votes)
        ids = self.consumer_mongo.receives("update", "vote_ids")
        check_id_upserts(ids, votes)
        ids.replies(ok=0, code=10107, codeName="NotWritablePrimary", errmsg="not primary")
        commit, _, _ = transaction(self.consumer_mongo, votes)
        commit.replies(ok=1)
        wait_until(drained, "the batch's acks after the retry")

    def scenario_transient_label_alone(self):
        """The TransientTransactionError label on a code no rule names: run again in this process."""
        votes = new_votes(2)
        publish(votes)
        ids = self.consumer_mongo.receives("update", "vote_ids")
        check_id_upserts(ids, votes)
        ids.replies(ok=0, code=251, codeName="NoSuchTransaction", errmsg="transaction aborted", errorLabels=["TransientTransactionError"])
        commit, _, _ = transaction(self.consumer_mongo, votes)
        commit.replies(ok=1)
        wait_until(drained, "the batch's acks after the retry")

    def scenario_write_conflict(self):
        """Another transaction wrote the counter document first: WriteConflict with the
        TransientTransactionError label on the counter update. The store aborts, runs the
        whole transaction again in this process and the votes count once."""
        votes = new_votes(3)
        publish(votes)
        ids = self.consumer_mongo.receives("update", "vote_ids")
        check_id_upserts(ids, votes)
        upserted_reply(ids, [0, 1, 2])
        counters = self.consumer_mongo.receives("update", "hourly_totals")
        counters.replies(ok=0, code=112, codeName="WriteConflict", errmsg="WriteConflict error", errorLabels=["TransientTransactionError"])
        lsid, txn = ids.doc["lsid"], ids.doc["txnNumber"]
        wait_until(lambda: any(a.get("lsid") == lsid and a.get("txnNumber") == txn for a in list(self.consumer_mongo.aborted)),
                   "the conflicted transaction's abortTransaction")
        commit, _, again = transaction(self.consumer_mongo, votes)
        expect(again != txn or commit.doc["lsid"] != lsid, "the retry reused the aborted transaction")
        commit.replies(ok=1)
        wait_until(drained, "the batch's acks after the retry")

    def scenario_retry_budget_spent(self):
        """Transient errors on every attempt: the store retries for its budget
        (PAREDAO_STORE_RETRY_SECONDS=2 here), with pauses between, then the consumer lets
        the broker redeliver the batch to a fresh store, which counts it once."""
        self.processes.remove(self.consumer)
        self.consumer.stop()
        self.consumer = start_consumer(self.consumer_mongo, PAREDAO_STORE_RETRY_SECONDS="2")
        self.processes.append(self.consumer)
        startup(self.consumer_mongo)
        votes = new_votes(2)
        publish(votes)
        attempts = []
        while True:
            request = self.consumer_mongo.server.receives(timeout=WAIT)
            expect(request is not None, "nothing after the conflicts")
            if request.command_name == "createIndexes":
                break
            expect(request.command_name == "update" and request.doc["update"] == "vote_ids", f"unexpected {request.command_name}")
            attempts.append(time.monotonic())
            request.replies(ok=0, code=112, codeName="WriteConflict", errmsg="WriteConflict error", errorLabels=["TransientTransactionError"])
        expect(len(attempts) >= 3, f"only {len(attempts)} attempts before giving up")
        expect(attempts[-1] - attempts[0] >= 1.0, f"attempts spread over {attempts[-1] - attempts[0]:.2f} s only, the budget is 2 s")
        expect(attempts[-1] - attempts[0] <= 4.0, f"attempts went on for {attempts[-1] - attempts[0]:.2f} s, the budget is 2 s")
        request.replies(ok=1)  # the fresh store's totals index
        ids_index = self.consumer_mongo.receives("createIndexes", "vote_ids")
        ids_index.replies(ok=1)
        commit, _, _ = transaction(self.consumer_mongo, votes)
        commit.replies(ok=1)
        wait_until(drained, "the redelivered batch's acks")
        expect(f"after {len(attempts) - 1} retries" in self.consumer.log_text(), "the error names the retries")
        self.restart_consumer()

    def scenario_unknown_commit_result(self):
        """A commit whose outcome is unknown (write concern timed out) is committed again, then acked."""
        votes = new_votes(3)
        publish(votes)
        commit, lsid, txn = transaction(self.consumer_mongo, votes)
        commit.replies(ok=1, writeConcernError={"code": 64, "codeName": "WriteConcernFailed", "errmsg": "waiting for replication timed out",
                                                "errInfo": {"wtimeout": True}})
        again = self.consumer_mongo.receives("commitTransaction")
        check_commit(again, lsid, txn)
        again.replies(ok=1)
        wait_until(drained, "the batch's acks after the second commit")

    def scenario_write_error_is_not_acked(self):
        """A write error that is not transient: nothing is acked, the broker redelivers the batch
        to a fresh store (indexes again), which counts it once."""
        votes = new_votes(2)
        publish(votes)
        ids = self.consumer_mongo.receives("update", "vote_ids")
        check_id_upserts(ids, votes)
        ids.replies(ok=1, n=0, nModified=0, writeErrors=[{"index": 0, "code": 2, "codeName": "BadValue", "errmsg": "scripted write error"}])
        lsid, txn = ids.doc["lsid"], ids.doc["txnNumber"]
        startup(self.consumer_mongo)
        expect(any(a.get("lsid") == lsid and a.get("txnNumber") == txn for a in list(self.consumer_mongo.aborted)),
               "the failed transaction was not aborted")
        commit, _, _ = transaction(self.consumer_mongo, votes)
        commit.replies(ok=1)
        wait_until(drained, "the redelivered batch's acks")
        wait_until(lambda: "Store write failed; votes will be redelivered" in self.consumer.log_text(), "the consumer's ERROR line")

    def scenario_totals_read_path(self):
        """The API reads hourly_totals with read concern majority and serves the counts; a malformed
        document is refused, not counted."""
        hour = hour_start(int(time.time() * 1000))
        def at(seconds):
            return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
        # The hour before in two documents, one from before the counter shards and one of
        # shard 7; this hour in shard 3. The API sums the shards of an hour.
        self.api_docs[:] = [
            {"_id": f"{POLL_ID}:{hour - 3600}", "poll": POLL_ID, "hour": at(hour - 3600), "votes": {PARTICIPANTS[0]: Int64(1_500_000_000), PARTICIPANTS[1]: 4}},
            {"_id": f"{POLL_ID}:{hour - 3600}:7", "poll": POLL_ID, "hour": at(hour - 3600), "shard": 7, "votes": {PARTICIPANTS[1]: 3}},
            {"_id": f"{POLL_ID}:{hour}:3", "poll": POLL_ID, "hour": at(hour), "shard": 3, "votes": {PARTICIPANTS[1]: Int64(3)}},
        ]

        def totals_show_them():
            status, body = api_call("GET", "/api/v1/totals")
            return status == 200 and json.loads(body)["total"] == 1_500_000_010 and json.loads(body)

        totals = wait_until(totals_show_them, "the API's totals from the mock's documents")
        by_id = {participant["id"]: participant["votes"] for participant in totals["participants"]}
        expect(by_id[PARTICIPANTS[0]] == 1_500_000_000 and by_id[PARTICIPANTS[1]] == 10, f"per participant {by_id}")
        expect([hour["total"] for hour in totals["hours"]] == [1_500_000_007, 3], f"per hour {totals['hours']}")
        find = self.finds[-1]
        expect(find["find"] == "hourly_totals" and dict(find["filter"]) == {"poll": POLL_ID}, f"find {find}")
        expect(dict(find.get("sort", {})) == {"hour": 1}, f"find sort {find.get('sort')}")
        expect((find.get("readConcern") or {}).get("level") == "majority", f"find read concern {find.get('readConcern')}")
        status, body = api_call("GET", "/readyz")
        expect(status == 200 and json.loads(body).get("counting") == "exactly once", f"/readyz does not say exactly once: {status} {body[:200]!r}")
        # A negative counter: the API keeps its last good totals and says the store is unreadable.
        self.api_docs[2] = dict(self.api_docs[2], votes={PARTICIPANTS[1]: Int64(-5)})
        wait_until(lambda: api_call("GET", "/readyz")[0] == 503, "/readyz refusing a malformed store document", timeout=30)
        status, body = api_call("GET", "/api/v1/totals")
        expect(status != 200 or json.loads(body)["total"] == 1_500_000_010, f"a malformed document changed the totals: {status} {body[:200]!r}")
        self.api_docs.clear()

    def scenario_every_vote_was_acked(self):
        """After all of the above nothing is left unacknowledged: a SIGKILLed consumer returns
        no message to the queue. And the consumer pruned old ids with a majority delete."""
        self.consumer.kill()
        time.sleep(3)  # a negative check: give the broker time to requeue anything unacked
        expect(ready_count() == 0, f"{ready_count()} messages came back: some batch was never acked")
        with self.consumer_mongo.lock:
            deletes = list(self.consumer_mongo.deletes)
        expect(deletes, "the consumer never pruned old vote ids")
        arrived, delete = deletes[0]
        expect(delete["delete"] == "vote_ids" and (delete.get("writeConcern") or {}).get("w") == "majority", f"prune {delete}")
        cutoff = millis_of(delete["deletes"][0]["q"]["at"]["$lt"])
        want = arrived * 1000 - KEPT_SECONDS * 1000
        expect(abs(cutoff - want) < 5_000, f"prune cutoff is {(want - cutoff) / 1000:.1f} s off now minus the dedup window and its margin")
        self.restart_consumer()

    def scenario_polls_seeded_once_and_read(self):
        """Both processes seed the definition file's poll once (an insert into polls, open,
        with its times as dates) and read polls back; the API serves it as the current poll."""
        for mongo in (self.consumer_mongo, self.api_mongo):
            with mongo.lock:
                polls = list(mongo.polls)
                finds = [doc for doc in mongo.poll_commands if "find" in doc and doc["find"] == "polls"]
            inserts = [doc for doc in mongo.poll_commands if doc.get("insert") == "polls"]
            expect(len(inserts) == 1, f"{len(inserts)} inserts into polls, expected one seeding")
            expect(len(polls) == 1 and polls[0]["_id"] == POLL_ID, f"polls seeded: {polls}")
            expect(polls[0]["state"] == "open" and isinstance(polls[0]["openedAt"], datetime.datetime), f"seeded poll {polls[0]}")
            expect([p["id"] for p in polls[0]["participants"]] == PARTICIPANTS, f"participants {polls[0]['participants']}")
            expect(finds, "polls were read")
            expect(mongo.polls_index_ok, "the one_open index: {state: 1}, unique, partial on state open")
        status, body = api_call("GET", "/api/v1/poll")
        expect(status == 200 and json.loads(body)["poll"]["state"] == "open", f"/api/v1/poll answered {status}: {body[:200]!r}")

    def scenario_standalone_is_refused(self):
        """A standalone server (no transactions) is refused: the consumer exits with 78 and
        says what to do, without creating anything on the server."""
        standalone = MockMongo(replica_set=False)
        standalone.polls = [dict(poll) for poll in self.consumer_mongo.polls]
        try:
            consumer = start_consumer(standalone, name="consumer-refused")
            self.processes.append(consumer)
            code = consumer.process.wait(timeout=WAIT)
            expect(code == 78, f"the consumer exited with {code}, expected 78 (EX_CONFIG)")
            text = consumer.log_text()
            expect("PAREDAO_MONGO_ALLOW_STANDALONE" in text and "replica set" in text, "the refusal does not say what to do")
            expect(not standalone.server.got(timeout=0.5), "the refused consumer sent a command")
        finally:
            standalone.stop()

    def scenario_standalone_counts_at_least_once(self):
        """With PAREDAO_MONGO_ALLOW_STANDALONE=1 the consumer says so and writes without a
        transaction: it looks the ids up, adds the new ones' counts, then upserts the ids
        (w: majority). An error after the counters were sent is never retried in-process."""
        self.consumer.stop()
        self.processes.remove(self.consumer)
        standalone = MockMongo(replica_set=False)
        # A server that already holds the season's polls: the seeded poll opened long before
        # these votes (seeded afresh, its opening time would race the votes' accepted-at).
        standalone.polls = [dict(poll) for poll in self.consumer_mongo.polls]
        try:
            consumer = start_consumer(standalone, name="consumer-standalone", PAREDAO_MONGO_ALLOW_STANDALONE="1")
            self.processes.append(consumer)
            startup(standalone)
            wait_until(lambda: "votes are counted at least once" in consumer.log_text() or "Store ready without transactions" in consumer.log_text(),
                       "the consumer's at-least-once warning")
            votes = new_votes(3)
            publish(votes)
            find = standalone.receives("find", "vote_ids")
            expect("txnNumber" not in find.doc and "startTransaction" not in find.doc, "standalone lookup in a transaction")
            looked_up = {uuid_of(value) for value in find.doc["filter"]["_id"]["$in"]}
            expect(looked_up == {vote_id for vote_id, _, _ in votes}, "the lookup is not the batch's ids")
            known = votes[0]
            find.replies(cursor={"id": Int64(0), "ns": "paredao.vote_ids", "firstBatch": [{"_id": Binary(known[0].bytes, 4)}]}, ok=1)
            counters = standalone.receives("update", "hourly_totals")
            expect((counters.doc.get("writeConcern") or {}).get("w") == "majority", "standalone counter update without w: majority")
            increments = {}
            for update in counters.doc["updates"]:
                for field, value in update["u"]["$inc"].items():
                    increments[field[len("votes."):]] = increments.get(field[len("votes."):], 0) + int(value)
            want = {}
            for _, participant, _ in votes[1:]:
                want[participant] = want.get(participant, 0) + 1
            expect(increments == want, f"standalone counted {increments}, expected {want} (the known id excluded)")
            counters.replies(ok=1, n=len(counters.doc["updates"]), nModified=0)
            ids = standalone.receives("update", "vote_ids")
            expect(len(ids.doc["updates"]) == 2 and (ids.doc.get("writeConcern") or {}).get("w") == "majority", "standalone id upserts")
            ids.replies(ok=1, n=2, nModified=0)
            wait_until(drained, "the standalone batch's acks")
            # The connection drops after the counters went out: the next command is a fresh
            # store's start-up (the broker redelivers), not the batch run again at once.
            more = new_votes(2)
            publish(more)
            standalone.receives("find", "vote_ids").replies(cursor={"id": Int64(0), "ns": "paredao.vote_ids", "firstBatch": []}, ok=1)
            standalone.receives("update", "hourly_totals").replies(ok=1, n=1, nModified=0)
            standalone.receives("update", "vote_ids").hangup()
            startup(standalone)
            standalone.receives("find", "vote_ids").replies(cursor={"id": Int64(0), "ns": "paredao.vote_ids", "firstBatch": []}, ok=1)
            standalone.receives("update", "hourly_totals").replies(ok=1, n=1, nModified=0)
            standalone.receives("update", "vote_ids").replies(ok=1, n=2, nModified=0)
            wait_until(drained, "the redelivered standalone batch's acks")
        finally:
            standalone.stop()

    def scenario_concurrent_consumers(self):
        """Two and four consumers on one server that answers WriteConflict as a replica set
        does (ConflictModel). On their own counter shards no transaction ever conflicts;
        consumers forced onto one shard conflict, retry with jitter and still count every
        vote once. Nothing is dead-lettered in any run."""
        votes_per_run = 2000
        report = []
        for label, shards in (("2 consumers, one shard", [4, 4]), ("4 consumers, one shard", [4, 4, 4, 4]),
                              ("2 consumers, own shards", [0, 1]), ("4 consumers, own shards", [0, 1, 2, 3])):
            mongo = MockMongo()
            mongo.polls = [dict(poll) for poll in self.consumer_mongo.polls]
            model = ConflictModel(mongo)
            consumers = []
            try:
                dead_before = dead_lettered()
                # All accepted now: 2,000 votes a millisecond apart would reach back before
                # the poll opened when this scenario runs alone. Queued first, then taken a
                # batch at a time (prefetch = batch size), so every consumer is always busy.
                now = int(time.time() * 1000)
                votes = [(vote_id, participant, now) for vote_id, participant, _ in new_votes(votes_per_run)]
                publish(votes)
                for index, shard in enumerate(shards):
                    consumer = start_consumer(mongo, name=f"consumer-{len(shards)}-{shard}-{index}", shard=shard, PAREDAO_CONSUMER_PREFETCH="100")
                    consumers.append(consumer)
                    self.processes.append(consumer)
                wait_until(lambda: model.counted() >= votes_per_run and drained(), f"{label}: every vote counted and acked", timeout=120)
                expect(model.counted() == votes_per_run, f"{label}: {model.counted()} counted of {votes_per_run}")
                expect(model.committed_ids == {vote_id.bytes for vote_id, _, _ in votes}, f"{label}: the committed ids are not the votes'")
                expect(dead_lettered() == dead_before, f"{label}: {dead_lettered() - dead_before} messages dead-lettered")
                shards_written = {bucket.rsplit(":", 1)[1] for bucket in model.totals}
                expect(shards_written == {str(shard) for shard in shards}, f"{label}: counter shards written {shards_written}")
                report.append((label, model.conflicts, model.commits))
                log(f"{label}: {votes_per_run} votes in {model.commits} transactions, {model.conflicts} write conflicts "
                    f"({model.conflicts * 1000 / votes_per_run:.1f} retried transactions per 1,000 votes), 0 dead-lettered")
            finally:
                for consumer in consumers:
                    consumer.stop()
                    self.processes.remove(consumer)
                mongo.stop()
        by_label = {label: conflicts for label, conflicts, _ in report}
        expect(by_label["2 consumers, one shard"] + by_label["4 consumers, one shard"] > 0, "consumers on one shard never conflicted: the model did not exercise a retry")
        expect(by_label["2 consumers, own shards"] == 0 and by_label["4 consumers, own shards"] == 0, f"consumers on their own shards conflicted: {by_label}")

    def scenarios(self):
        return [(name[len("scenario_"):], getattr(self, name)) for name in dir(self) if name.startswith("scenario_")]

    def run(self):
        ordered = [
            "votes_through_the_api", "redelivered_batch_counts_nothing", "network_error_mid_batch", "not_primary",
            "unknown_commit_result", "write_error_is_not_acked", "totals_read_path", "every_vote_was_acked",
            "polls_seeded_once_and_read", "transient_label_alone", "write_conflict", "retry_budget_spent",
            "standalone_is_refused", "standalone_counts_at_least_once", "concurrent_consumers",
        ]
        available = dict(self.scenarios())
        assert set(ordered) == set(available), "every scenario is listed in the run order"
        for name in ordered:
            if ONLY and not any(part in name for part in ONLY):
                continue
            started = time.monotonic()
            try:
                available[name]()
                self.results.append((name, True, ""))
                log(f"PASS {name} ({time.monotonic() - started:.1f} s)")
            except Exception as error:  # a failed scenario must not stop the others
                detail = f"{type(error).__name__}: {error}"
                self.results.append((name, False, detail))
                log(f"FAIL {name}: {detail}")
                if not isinstance(error, Failure):
                    traceback.print_exc()
                # Let whatever the failure left in flight settle before the next scenario.
                self.resync()

    def resync(self):
        """After a failed scenario: answer whatever is queued with success until the queue drains."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if self.consumer_mongo.server.got(timeout=0.5):
                request = self.consumer_mongo.server.receives(timeout=1)
                if request.command_name == "update":
                    upserted_reply(request, list(range(len(request.doc["updates"]))))
                elif request.command_name == "find":
                    request.replies(cursor={"id": Int64(0), "ns": "paredao.vote_ids", "firstBatch": []}, ok=1)
                else:
                    request.replies(ok=1)
            elif drained():
                return


def main():
    os.makedirs(LOG_DIR, exist_ok=True)
    suite = Suite()
    try:
        suite.start()
        suite.run()
    finally:
        suite.stop()
    failed = [result for result in suite.results if not result[1]]
    for name, ok, detail in suite.results:
        print(f"  {'ok  ' if ok else 'FAIL'} {name} {detail}")
    print(f"{len(suite.results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed or not suite.results else 0


if __name__ == "__main__":
    sys.exit(main())
