import ServiceSupport
import VoteShared

/// Every decision of the publisher thread, without I/O and without a clock: events come in
/// (votes taken from the mailbox, confirms, the connection's fate, a stop, time passing),
/// actions go out, and the thread only carries them out.
///
/// Rules:
/// - Votes go out in messages of at most `maxVotesPerMessage`, with at most `maxInFlight`
///   messages unconfirmed (group commit); a full window waits for confirms.
/// - Above `lingerAboveRate` votes/s (measured over windows of at least `rateWindow`), the
///   mailbox is read at most once per `linger`, so that votes share messages.
/// - An ack settles its message's votes (all messages up to the tag when `multiple`); a nack
///   fails them with `rejected`; a message unconfirmed after `confirmTimeout` fails with
///   `timedOut`, and so does every other vote not yet confirmed, because the connection is
///   dropped and re-opened (a broker that stopped confirming is not trusted with more) —
///   unless the broker said it blocked the connection: then only the overdue messages fail,
///   and the connection stays (a new one would be blocked again at its first publish).
/// - A returned (unroutable: no queue took it) message fails its votes with `unroutable`; the
///   broker sends the return before the ack of the same message, so that ack settles nothing.
/// - While the broker has blocked the connection (a memory or disk alarm), nothing is sent:
///   votes not yet sent and every new one fail at once with `blocked`; messages in flight
///   still wait for their confirms.
/// - While connected, no wait is longer than half the heartbeat (librabbitmq sends and checks
///   heartbeats only when it is called), nor than 500 ms.
/// - Without a connection, votes fail with `unavailable`; a lost connection fails every vote
///   it carried and reconnects at once; a failed connect retries after a backoff that doubles
///   from `initialBackoff` up to `maximumBackoff`.
/// - With several brokers (the nodes of a cluster), a connect goes to the broker of the last
///   connection; a failed connect, a lost connection, a confirm time-out and a nack move to
///   the next broker, round robin (`BrokerRotation`); a connection that opens on another
///   broker than the one before is reported as a failover.
/// - A stop fails every vote not yet confirmed with `unavailable`, then finishes.
///
/// `Ticket` is what the thread completes for each vote (an event-loop promise; anything
/// equatable in tests).
struct PublisherStateMachine<Ticket> {
    struct Settings {
        var maxVotesPerMessage: Int
        var maxInFlight: Int
        var confirmTimeout: Duration
        var linger: Duration = .zero
        var lingerAboveRate: Int = .max
        var rateWindow: Duration = .milliseconds(50)
        var initialBackoff: Duration = .milliseconds(100)
        var maximumBackoff: Duration = .seconds(5)
        /// The AMQP heartbeat the connection negotiated (`.zero`: none).
        var heartbeat: Duration = .zero
        /// How many brokers there are to connect to (the nodes of a cluster).
        var brokers = 1

        /// The longest wait while connected.
        var longestWait: Duration {
            heartbeat > .zero ? min(.milliseconds(500), heartbeat / 2) : .milliseconds(500)
        }
    }

    /// A vote and the ticket to complete when its fate is known.
    struct Job {
        var vote: Vote
        var ticket: Ticket
    }

    /// One AMQP message to publish: its delivery tag (1, 2, 3, … per connection) and votes.
    struct Message {
        var tag: UInt64
        var votes: ArraySlice<Job>
    }

    /// Votes whose message was confirmed, with when each message was sent (for the metric).
    struct Settled {
        var tickets: [Ticket]
        var sentAt: [ContinuousClock.Instant]
    }

    enum Action {
        /// Nothing to carry out.
        case none
        /// Open a connection to broker `broker` (an index in the list), then report
        /// `connected` or `connectFailed`.
        case connect(broker: Int)
        /// A connection opened on broker `to` after one on broker `from`: log and count it.
        case failedOver(from: Int, to: Int)
        /// Publish the message, then report `sendFailed` if that failed.
        case send(Message)
        /// Complete these tickets successfully.
        case succeed(Settled)
        /// Complete these tickets with `error`.
        case fail([Ticket], PublishError)
        /// Drop the connection (after failing `tickets` with `error`); the next connect is due `after`.
        case reconnect(after: Duration, failing: [Ticket], error: PublishError)
        /// Sleep until `deadline` (`nil`: until something happens), waking for broker input,
        /// and for new votes when `mailbox`; then report what happened.
        case wait(until: ContinuousClock.Instant?, mailbox: Bool)
        /// Fail `tickets` with `unavailable`, close the connection and end the thread.
        case finish(failing: [Ticket])
    }

    private struct InFlight {
        var tickets: [Ticket]
        var sentAt: ContinuousClock.Instant
    }

    private enum Connection {
        /// The next connect is due at `retryAt`.
        case down(retryAt: ContinuousClock.Instant)
        /// `connect` was handed out and its outcome is awaited.
        case connecting
        case up
    }

    private let settings: Settings
    private var connection: Connection
    private var stopping = false
    /// The broker blocked publishing on this connection (a resource alarm).
    private var blocked = false
    private var backoff: Duration
    private var rotation: BrokerRotation
    /// Votes taken from the mailbox and not yet sent.
    private var pending: [Job] = []
    private var pendingStart = 0
    private var inFlight: [UInt64: InFlight] = [:]
    private var nextTag: UInt64 = 1
    /// No unsettled message has a tag below this one.
    private var oldestTag: UInt64 = 1
    private var lingering = false
    private var lastSend: ContinuousClock.Instant
    private var rateWindowStart: ContinuousClock.Instant
    private var rateWindowVotes = 0

    init(settings: Settings, now: ContinuousClock.Instant) {
        self.settings = settings
        connection = .down(retryAt: now)
        backoff = settings.initialBackoff
        rotation = BrokerRotation(count: settings.brokers)
        lastSend = now
        rateWindowStart = now
    }

    /// Whether a connection is up (votes are taken only then).
    var isConnected: Bool {
        if case .up = connection { return true }
        return false
    }

    /// Whether the broker blocks publishing (votes fail at once with `blocked`).
    var isBlocked: Bool { blocked }

    /// Messages sent and not yet confirmed.
    var messagesInFlight: Int { inFlight.count }

    /// Whether the arrival rate is high enough for votes to wait and share messages.
    var isLingering: Bool { lingering }

    // MARK: Events

    /// Votes were taken from the mailbox (possibly none: the mailbox was looked at).
    mutating func jobsArrived(_ jobs: [Job], now: ContinuousClock.Instant) -> Action {
        guard !stopping, isConnected else {
            return jobs.isEmpty ? .none : .fail(jobs.map(\.ticket), .unavailable)
        }
        guard !blocked else {
            return jobs.isEmpty ? .none : .fail(jobs.map(\.ticket), .blocked)
        }
        measureRate(arrived: jobs.count, now: now)
        if pendingStart == pending.count {
            pending = jobs
            pendingStart = 0
        } else {
            pending.append(contentsOf: jobs)
        }
        return .none
    }

    /// The broker acked `tag` (and every earlier one when `multiple`).
    mutating func confirmed(tag: UInt64, multiple: Bool, now: ContinuousClock.Instant) -> Action {
        let settled = settle(upTo: tag, multiple: multiple)
        return settled.tickets.isEmpty ? .none : .succeed(settled)
    }

    /// The broker nacked `tag` (and every earlier one when `multiple`). With several brokers
    /// the connection goes too, and the next node is tried after the initial backoff: a
    /// RabbitMQ 3.10 channel that began publishing to a quorum queue while its leader was
    /// down keeps asking the dead leader, and nacks every publish until that node is back.
    mutating func nacked(tag: UInt64, multiple: Bool, now: ContinuousClock.Instant) -> Action {
        let settled = settle(upTo: tag, multiple: multiple)
        guard !settled.tickets.isEmpty else { return .none }
        guard settings.brokers > 1, isConnected else { return .fail(settled.tickets, .rejected) }
        connection = .down(retryAt: now + settings.initialBackoff)
        blocked = false
        rotation.failed()
        return .reconnect(after: settings.initialBackoff, failing: settled.tickets + takeUnsettled(), error: .rejected)
    }

    /// The broker returned `tag` as unroutable (its ack comes next).
    mutating func returned(tag: UInt64, now: ContinuousClock.Instant) -> Action {
        guard let entry = inFlight.removeValue(forKey: tag) else { return .none }
        advanceOldestTag()
        return .fail(entry.tickets, .unroutable)
    }

    /// The broker blocked the connection (connection.blocked): votes not yet sent fail.
    mutating func blockedByBroker(now: ContinuousClock.Instant) -> Action {
        guard isConnected else { return .none }
        blocked = true
        let unsent = pending[pendingStart...].map(\.ticket)
        pending.removeAll()
        pendingStart = 0
        return unsent.isEmpty ? .none : .fail(unsent, .blocked)
    }

    /// The broker unblocked the connection (connection.unblocked).
    mutating func unblockedByBroker(now: ContinuousClock.Instant) -> Action {
        blocked = false
        return .none
    }

    /// The connection opened, queue declared and confirms on.
    mutating func connected(now: ContinuousClock.Instant) -> Action {
        connection = .up
        blocked = false
        nextTag = 1
        oldestTag = 1
        backoff = settings.initialBackoff
        guard let failover = rotation.connected() else { return .none }
        return .failedOver(from: failover.from, to: failover.to)
    }

    /// Connecting failed; retry after the backoff, which doubles for the next time, on the
    /// next broker.
    mutating func connectFailed(now: ContinuousClock.Instant) -> Action {
        let wait = backoff
        connection = .down(retryAt: now + wait)
        backoff = min(backoff * 2, settings.maximumBackoff)
        rotation.failed()
        return .reconnect(after: wait, failing: [], error: .unavailable)
    }

    /// The connection broke (a failed read, a close from the broker): reconnect at once, to
    /// the next broker.
    mutating func connectionLost(now: ContinuousClock.Instant) -> Action {
        guard isConnected else { return .none }
        connection = .down(retryAt: now)
        blocked = false
        rotation.failed()
        return .reconnect(after: .zero, failing: takeUnsettled(), error: .unavailable)
    }

    /// Publishing a message failed: the connection is gone, with that message's votes.
    mutating func sendFailed(_ message: Message, now: ContinuousClock.Instant) -> Action {
        connectionLost(now: now)
    }

    /// The service is shutting down.
    mutating func stopRequested() -> Action {
        stopping = true
        return .finish(failing: takeUnsettled())
    }

    /// Time passed: what to do now.
    mutating func tick(now: ContinuousClock.Instant) -> Action {
        if stopping { return .finish(failing: takeUnsettled()) }
        if let oldestDeadline, oldestDeadline <= now {
            if blocked, let expired = expireOverdue(now: now) { return .fail(expired, .timedOut) }
            connection = .down(retryAt: now)
            rotation.failed()
            return .reconnect(after: .zero, failing: takeUnsettled(), error: .timedOut)
        }
        switch connection {
        case .connecting:
            return .wait(until: nil, mailbox: false)
        case .down(let retryAt):
            guard now >= retryAt else { return .wait(until: retryAt, mailbox: true) }
            connection = .connecting
            return .connect(broker: rotation.current)
        case .up:
            break
        }
        // Heartbeats are sent and checked only when the thread calls librabbitmq.
        let latest = now + settings.longestWait
        if pendingStart < pending.count {
            guard inFlight.count < settings.maxInFlight else {
                return .wait(until: min(oldestDeadline ?? latest, latest), mailbox: false)
            }
            return .send(nextMessage(now: now))
        }
        if lingering, !blocked, now < lastSend + settings.linger {
            // Let votes gather in the mailbox — publishers signal only an empty one — while
            // reading confirms: no wake-up per vote.
            let lingerEnd = min(lastSend + settings.linger, latest)
            return .wait(until: oldestDeadline.map { min($0, lingerEnd) } ?? lingerEnd, mailbox: false)
        }
        return .wait(until: min(oldestDeadline ?? latest, latest), mailbox: true)
    }

    // MARK: Rules

    private mutating func nextMessage(now: ContinuousClock.Instant) -> Message {
        let end = min(pendingStart + settings.maxVotesPerMessage, pending.count)
        let votes = pending[pendingStart..<end]
        let message = Message(tag: nextTag, votes: votes)
        inFlight[nextTag] = InFlight(tickets: votes.map(\.ticket), sentAt: now)
        nextTag += 1
        pendingStart = end
        if pendingStart == pending.count {
            pending = []
            pendingStart = 0
        }
        lastSend = now
        return message
    }

    /// Counts arrivals and, once a window of `rateWindow` has passed, decides whether to linger.
    private mutating func measureRate(arrived: Int, now: ContinuousClock.Instant) {
        rateWindowVotes += arrived
        let elapsed = now - rateWindowStart
        guard elapsed >= settings.rateWindow else { return }
        let perSecond = Double(rateWindowVotes) / (Double(elapsed.wholeNanoseconds) / 1e9)
        lingering = settings.linger > .zero && perSecond >= Double(settings.lingerAboveRate)
        rateWindowStart = now
        rateWindowVotes = 0
    }

    private mutating func settle(upTo tag: UInt64, multiple: Bool) -> Settled {
        var settled = Settled(tickets: [], sentAt: [])
        let first = multiple ? oldestTag : tag
        if first <= tag {
            for current in first...tag {
                guard let entry = inFlight.removeValue(forKey: current) else { continue }
                settled.tickets.append(contentsOf: entry.tickets)
                settled.sentAt.append(entry.sentAt)
            }
        }
        advanceOldestTag()
        return settled
    }

    /// Fails the oldest messages whose confirm is overdue.
    private mutating func expireOverdue(now: ContinuousClock.Instant) -> [Ticket]? {
        var expired: [Ticket]?
        while oldestTag < nextTag, let entry = inFlight[oldestTag], entry.sentAt + settings.confirmTimeout <= now {
            inFlight.removeValue(forKey: oldestTag)
            expired = (expired ?? []) + entry.tickets
            oldestTag += 1
            advanceOldestTag()
        }
        return expired
    }

    /// When the oldest unconfirmed message times out.
    private var oldestDeadline: ContinuousClock.Instant? {
        inFlight[oldestTag].map { $0.sentAt + settings.confirmTimeout }
    }

    private mutating func advanceOldestTag() {
        while oldestTag < nextTag, inFlight[oldestTag] == nil { oldestTag += 1 }
    }

    /// Every ticket not yet confirmed — in flight first, then unsent — leaving none behind.
    private mutating func takeUnsettled() -> [Ticket] {
        var tickets: [Ticket] = []
        for tag in inFlight.keys.sorted() { tickets.append(contentsOf: inFlight[tag]?.tickets ?? []) }
        tickets.append(contentsOf: pending[pendingStart...].map(\.ticket))
        inFlight.removeAll()
        pending.removeAll()
        pendingStart = 0
        oldestTag = nextTag
        return tickets
    }
}

extension PublisherStateMachine.Action: Equatable where Ticket: Equatable {}
extension PublisherStateMachine.Settled: Equatable where Ticket: Equatable {}
extension PublisherStateMachine.Job: Equatable where Ticket: Equatable {}
extension PublisherStateMachine.Message: Equatable where Ticket: Equatable {}
