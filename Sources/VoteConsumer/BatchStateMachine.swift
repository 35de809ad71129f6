import VoteShared

/// The consumer's rules for one batch, with no I/O and no clock: events in, actions out.
///
/// - The batch's deadline starts at its first delivery and is `batchMillis` long.
/// - The batch closes at `batchSize` votes, at the deadline, or when the consumer stops.
/// - An undecodable message is dead-lettered at once and is not part of the batch.
/// - A batch with no decodable delivery commits nothing and acknowledges nothing.
/// - The acknowledgement is one multiple-ack up to the last decodable delivery, sent only
///   after the store committed; after a failed commit nothing is acknowledged.
///
/// One machine runs one batch; the owner turns each action into a call and reports what
/// happened as the next event.
struct BatchStateMachine {
    /// What the owner does next.
    enum Action: Equatable {
        /// Wait for the next delivery until `deadline`; `nil` before the batch's first
        /// delivery, when the owner polls for its idle interval instead.
        case waitForDelivery(until: ContinuousClock.Instant?)
        /// Reject `tag` without requeue (the queue dead-letters it), then report `deadLettered()`.
        case deadLetter(tag: UInt64, reason: DeliveryRejection)
        /// Record `votes` in one store transaction, then report `committed()` or `commitFailed()`.
        case commit([Vote], ackUpTo: UInt64)
        /// Acknowledge every delivery up to `upTo`, then report `acknowledged()`.
        case acknowledge(upTo: UInt64)
        /// The batch is over.
        case finished
    }

    private struct Batch {
        var deadline: ContinuousClock.Instant
        var votes: [Vote] = []
        var lastGoodTag: UInt64?
    }

    private enum State {
        case waitingForFirstDelivery
        case collecting(Batch)
        case deadLettering(Batch)
        case committing(ackUpTo: UInt64)
        case acknowledging
        case finished
        /// Only while an event appends to the batch: the state lets go of the votes so
        /// that appending does not copy them.
        case modifying
    }

    private let batchSize: Int
    private let batchDuration: Duration
    private var state: State = .waitingForFirstDelivery

    /// A machine for one batch of at most `batchSize` votes collected for at most `batchMillis`.
    init(batchSize: Int, batchMillis: Int) {
        self.batchSize = batchSize
        self.batchDuration = .milliseconds(batchMillis)
    }

    /// The first action: wait for a delivery, with no batch open yet.
    func start() -> Action {
        .waitForDelivery(until: nil)
    }

    /// A delivery arrived at `now`; `votes` is what its body decoded to.
    mutating func delivered(tag: UInt64, votes decoded: Result<[Vote], DeliveryRejection>, now: ContinuousClock.Instant) -> Action {
        var batch: Batch
        switch state {
        case .waitingForFirstDelivery:
            batch = Batch(deadline: now + batchDuration)
        case .collecting(let open):
            state = .modifying
            batch = open
        case .deadLettering, .committing, .acknowledging, .finished, .modifying:
            preconditionFailure("a delivery arrived while the batch was \(state)")
        }
        switch decoded {
        case .failure(let error):
            state = .deadLettering(batch)
            return .deadLetter(tag: tag, reason: error)
        case .success(let votes):
            batch.votes.append(contentsOf: votes)
            batch.lastGoodTag = tag
            if batch.votes.count >= batchSize || now >= batch.deadline {
                return close(batch)
            }
            state = .collecting(batch)
            return .waitForDelivery(until: batch.deadline)
        }
    }

    /// The undecodable delivery was rejected.
    mutating func deadLettered() -> Action {
        guard case .deadLettering(let batch) = state else {
            preconditionFailure("dead-lettered while the batch was \(state)")
        }
        state = .collecting(batch)
        return .waitForDelivery(until: batch.deadline)
    }

    /// A wait ended at `now` with no delivery.
    mutating func waitTimedOut(now: ContinuousClock.Instant) -> Action {
        switch state {
        case .waitingForFirstDelivery:
            state = .finished
            return .finished
        case .collecting(let batch):
            guard now >= batch.deadline else { return .waitForDelivery(until: batch.deadline) }
            return close(batch)
        case .deadLettering, .committing, .acknowledging, .finished, .modifying:
            preconditionFailure("a wait timed out while the batch was \(state)")
        }
    }

    /// The consumer is stopping: the batch closes with what it has.
    mutating func stopRequested() -> Action {
        switch state {
        case .waitingForFirstDelivery:
            state = .finished
            return .finished
        case .collecting(let batch):
            return close(batch)
        case .deadLettering, .committing, .acknowledging, .finished, .modifying:
            preconditionFailure("stop requested while the batch was \(state)")
        }
    }

    /// The store committed the batch's votes.
    mutating func committed() -> Action {
        guard case .committing(let tag) = state else {
            preconditionFailure("committed while the batch was \(state)")
        }
        state = .acknowledging
        return .acknowledge(upTo: tag)
    }

    /// The store's transaction failed: nothing is acknowledged, so the broker redelivers
    /// the batch once the owner drops its connection.
    mutating func commitFailed() -> Action {
        guard case .committing = state else {
            preconditionFailure("commit failed while the batch was \(state)")
        }
        state = .finished
        return .finished
    }

    /// The batch was acknowledged.
    mutating func acknowledged() -> Action {
        guard case .acknowledging = state else {
            preconditionFailure("acknowledged while the batch was \(state)")
        }
        state = .finished
        return .finished
    }

    private mutating func close(_ batch: Batch) -> Action {
        guard let lastGoodTag = batch.lastGoodTag else {
            state = .finished
            return .finished
        }
        state = .committing(ackUpTo: lastGoodTag)
        return .commit(batch.votes, ackUpTo: lastGoodTag)
    }
}
