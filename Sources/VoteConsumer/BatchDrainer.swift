import Logging
import VoteShared
import VoteStore

/// Runs one batch at a time by carrying out `BatchStateMachine`'s actions: waits on a
/// delivery source, one store transaction, one multiple-ack.
struct BatchDrainer: Sendable {
    let batchSize: Int
    let batchMillis: Int
    /// Named in the log line of a dead-lettered message.
    let deadLetterQueue: String
    /// How long to wait for a batch's first delivery before the batch ends empty, so that
    /// the caller gets to prune and to notice a stop.
    let idlePoll: Duration = .milliseconds(250)
    /// What a vote must be to count; a message with any vote that is not is dead-lettered.
    let validator: VoteValidator
    let metrics: ConsumerMetrics
    let logger: Logger
    /// The clock: read when a delivery arrives, when a wait ends and around the commit.
    let now: @Sendable () -> ContinuousClock.Instant
    /// The wall clock (milliseconds since 1970) that accepted-at times are checked against.
    let wallClockMillis: @Sendable () -> Int64

    init(
        batchSize: Int, batchMillis: Int, deadLetterQueue: String, validator: VoteValidator,
        metrics: ConsumerMetrics = ConsumerMetrics(), logger: Logger = Logger(label: "VoteConsumer"),
        wallClockMillis: @escaping @Sendable () -> Int64 = { Timestamp.nowMillis() },
        now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }
    ) {
        self.batchSize = batchSize
        self.batchMillis = batchMillis
        self.deadLetterQueue = deadLetterQueue
        self.validator = validator
        self.metrics = metrics
        self.logger = logger
        self.wallClockMillis = wallClockMillis
        self.now = now
    }

    /// Collects one batch, records it in one transaction, then acknowledges it.
    ///
    /// Throws what the source throws, and the store's error after a failed commit (nothing
    /// was acknowledged then: drop the connection so that the broker redelivers the batch).
    func drainOneBatch(from source: some DeliverySource, into store: any VoteStore, isStopping: () -> Bool) throws {
        var machine = BatchStateMachine(batchSize: batchSize, batchMillis: batchMillis)
        var action = machine.start()
        // The delivery the machine decided on last, for the dead-letter log line.
        var latest: Delivery?
        var commit: (votes: Int, outcome: RecordOutcome)?
        var commitFailure: StoreError?
        while true {
            switch action {
            case .waitForDelivery(let deadline):
                if isStopping() {
                    action = machine.stopRequested()
                    continue
                }
                var timeout = idlePoll
                if let deadline {
                    let instant = now()
                    timeout = deadline - instant
                    guard timeout > .zero else {
                        action = machine.waitTimedOut(now: instant)
                        continue
                    }
                }
                guard let delivery = try source.nextDelivery(timeout: timeout) else {
                    action = machine.waitTimedOut(now: now())
                    continue
                }
                let arrived = now()
                latest = delivery
                var votes = validator.votes(in: delivery.body, nowMillis: wallClockMillis())
                // A poll opened (or changed) after the last read of the polls: read them
                // again, until the vote counts or a read postdates it, before
                // dead-lettering. A store that cannot be read throws: nothing is acked.
                for _ in 0..<validator.catalog.catchUpReads {
                    guard case .failure(let rejection) = votes, let acceptedAt = rejection.acceptedAtIfPollsWereStale,
                        try validator.catalog.readAgain(forVoteAcceptedAt: acceptedAt)
                    else { break }
                    votes = validator.votes(in: delivery.body, nowMillis: wallClockMillis())
                }
                action = machine.delivered(tag: delivery.tag, votes: votes, now: arrived)

            case .deadLetter(let tag, let reason):
                try source.deadLetter(tag)
                metrics.deadLettered(reason: reason.reason)
                logger.error("Invalid message sent to the dead-letter queue", metadata: [
                    "reason": "\(reason.reason)", "error": "\(reason)", "bytes": "\(latest?.body.count ?? 0)",
                    "delivery_tag": "\(tag)", "redelivered": "\(latest?.redelivered ?? false)", "dead_letter_queue": "\(deadLetterQueue)",
                ])
                action = machine.deadLettered()

            case .commit(let votes, _):
                let started = now()
                do {
                    let outcome = try store.record(votes)
                    metrics.committed(batchSize: votes.count, outcome: outcome, elapsed: now() - started)
                    commit = (votes.count, outcome)
                    action = machine.committed()
                } catch {
                    commitFailure = error
                    action = machine.commitFailed()
                }

            case .acknowledge(let tag):
                try source.acknowledge(upTo: tag)
                if let commit {
                    if commit.outcome.duplicates > 0 {
                        logger.warning("Redelivered votes skipped", metadata: ["duplicates": "\(commit.outcome.duplicates)", "counted": "\(commit.outcome.counted)"])
                    }
                    logger.debug("Batch committed", metadata: ["votes": "\(commit.votes)", "counted": "\(commit.outcome.counted)"])
                }
                action = machine.acknowledged()

            case .finished:
                if let commitFailure { throw commitFailure }
                return
            }
        }
    }
}
