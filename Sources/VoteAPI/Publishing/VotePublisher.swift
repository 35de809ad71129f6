import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging
import Metrics
import NIOCore
import RabbitMQ
import Synchronization
import VoteShared

/// Why a vote could not be handed to RabbitMQ; every case is answered 503.
enum PublishError: Error, Equatable {
    /// No broker connection (down, or reconnecting).
    case unavailable
    /// The broker did not confirm in time; the vote may still be counted, and a retry with
    /// the same vote id is deduplicated.
    case timedOut
    /// The broker refused the message (nack).
    case rejected
    /// The publisher's queue is full.
    case overloaded
}

/// Hands votes to RabbitMQ with publisher confirms, from one dedicated thread that owns
/// the (blocking, not thread-safe) librabbitmq connection.
///
/// Event loops call `publish`, which returns at once with a future; the thread packs
/// waiting votes into messages, keeps up to `maxInFlight` unconfirmed messages (group
/// commit) and completes each vote's promise when its message is confirmed. Under load
/// (above `lingerAboveRate` votes/s) it sends at most one message per `linger`, so that
/// the number of messages — what the broker's CPU follows — stays bounded.
final class VotePublisher: Sendable {
    struct Settings: Sendable {
        var url: AMQPURL
        var queue: String
        var quorum: Bool
        var deadLetterQueue: String
        var confirmTimeout: Duration
        var maxVotesPerMessage: Int
        var maxInFlight: Int
        var maxQueued: Int
        /// Above `lingerAboveRate` votes/s, votes wait up to `linger` to share a message:
        /// the broker's cost grows with messages, not votes, and at such rates a wait of
        /// a millisecond fills a message with dozens of votes.
        var linger: Duration = .zero
        var lingerAboveRate: Int = .max
    }

    private struct Job {
        var vote: Vote
        var promise: EventLoopPromise<Void>
    }

    private struct Mailbox {
        var jobs: [Job] = []
        var stopping = false
    }

    private let settings: Settings
    private let mailbox = Mutex(Mailbox())
    private let wakeUp = Wakeup()
    private let connected = Atomic<Bool>(false)
    private let logger = Logger(label: "VoteAPI.publisher")
    private let confirmTimer = Metrics.Timer(label: "paredao_publish_confirm_seconds")
    private let reconnects = Counter(label: "paredao_broker_reconnects_total")
    /// AMQP messages published; `paredao_votes_accepted_total` over it is the packing ratio.
    private let messagesPublished = Counter(label: "paredao_publish_messages_total")
    private let brokerUp = Gauge(label: "paredao_broker_up")
    private let finished = Atomic<Bool>(false)

    init(settings: Settings) {
        self.settings = settings
        brokerUp.record(0)
    }

    /// Whether the publisher holds a working broker connection.
    var isConnected: Bool { connected.load(ordering: .relaxed) }

    /// Starts the publisher thread.
    func start() {
        let thread = Thread { [self] in
            var loop = PublishLoop(publisher: self)
            loop.run()
            finished.store(true, ordering: .releasing)
        }
        thread.name = "amqp-publisher"
        thread.start()
    }

    /// Stops the thread, failing whatever was not confirmed yet, and waits up to 5 s.
    func stop() {
        mailbox.withLock { $0.stopping = true }
        wakeUp.signal()
        let deadline = ContinuousClock.now + .seconds(5)
        while !finished.load(ordering: .acquiring), ContinuousClock.now < deadline {
            Thread.sleep(forTimeInterval: 0.01)
        }
    }

    /// Queues `vote`; the future succeeds once RabbitMQ confirmed it.
    func publish(_ vote: Vote, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        guard isConnected else { return eventLoop.makeFailedFuture(PublishError.unavailable) }
        let promise = eventLoop.makePromise(of: Void.self)
        enum Outcome { case queuedFirst, queued, refused }
        let outcome = mailbox.withLock { box -> Outcome in
            guard !box.stopping, box.jobs.count < settings.maxQueued else { return .refused }
            box.jobs.append(Job(vote: vote, promise: promise))
            return box.jobs.count == 1 ? .queuedFirst : .queued
        }
        switch outcome {
        case .queuedFirst:
            // The eventfd keeps the signal until the publisher reads it, so none is lost.
            wakeUp.signal()
        case .queued:
            break
        case .refused:
            promise.fail(PublishError.overloaded)
        }
        return promise.futureResult
    }

    /// The loop run by the publisher thread; only that thread touches its state.
    private struct PublishLoop {
        struct InFlight {
            var promises: [EventLoopPromise<Void>]
            var sentAt: ContinuousClock.Instant
        }

        let publisher: VotePublisher
        var connection: AMQPConnection?
        var nextTag: UInt64 = 1
        var inFlight: [UInt64: InFlight] = [:]
        var oldestTag: UInt64 = 1
        var backoff: Duration = .milliseconds(100)
        var lastExpiryCheck = ContinuousClock.now
        var buffer: [UInt8] = []
        var lastSend = ContinuousClock.now
        /// The arrival rate, measured over windows of at least 50 ms.
        var rateWindowStart = ContinuousClock.now
        var rateWindowVotes = 0
        var lingering = false

        init(publisher: VotePublisher) {
            self.publisher = publisher
        }

        mutating func run() {
            while true {
                if connection == nil { connect() }
                if connection != nil, let hold = lingerLeft() {
                    // Let votes gather in the mailbox — publishers signal only an empty
                    // one — while reading confirms; no wake-up per vote.
                    if waitForWork(timeout: hold, includingMailbox: false) { collectConfirms(waitForFirst: false) }
                    expireOverdue()
                    continue
                }
                let (jobs, stopping) = takeJobs()
                if stopping {
                    failAll(jobs.map(\.promise), with: .unavailable)
                    for entry in inFlight.values { failAll(entry.promises, with: .unavailable) }
                    inFlight.removeAll()
                    connection = nil
                    publisher.connected.store(false, ordering: .relaxed)
                    publisher.logger.info("Publisher stopped")
                    return
                }
                guard connection != nil else {
                    failAll(jobs.map(\.promise), with: .unavailable)
                    if jobs.isEmpty { waitForWork(timeout: .milliseconds(50)) }
                    continue
                }
                measureRate(arrived: jobs.count)
                if !jobs.isEmpty {
                    send(jobs)
                    lastSend = .now
                }
                collectConfirms(waitForFirst: false)
                expireOverdue()
                if jobs.isEmpty, waitForWork(timeout: inFlight.isEmpty ? .milliseconds(500) : .milliseconds(20)) {
                    readWhileIdle()
                }
            }
        }

        /// Counts arrivals and, every 50 ms or more, decides whether to linger.
        mutating func measureRate(arrived: Int) {
            rateWindowVotes += arrived
            let now = ContinuousClock.now
            let elapsed = now - rateWindowStart
            guard elapsed >= .milliseconds(50) else { return }
            let perSecond = Double(rateWindowVotes) / (Double(elapsed.wholeNanoseconds) / 1e9)
            lingering = publisher.settings.linger > .zero && perSecond >= Double(publisher.settings.lingerAboveRate)
            rateWindowStart = now
            rateWindowVotes = 0
        }

        /// While lingering, how long until the next message may go; `nil` when it may go now.
        func lingerLeft() -> Duration? {
            guard lingering else { return nil }
            let left = lastSend + publisher.settings.linger - .now
            return left > .zero ? left : nil
        }

        /// With nothing in flight, input from the broker is a close or the socket's end:
        /// read it so a dead connection is noticed (and reported) at once.
        mutating func readWhileIdle() {
            guard let connection, inFlight.isEmpty else { return }
            do {
                while try connection.nextConfirm(timeout: .zero) != nil {}
            } catch {
                dropConnection(failing: .unavailable, reason: "\(error)")
            }
        }

        /// Takes all waiting jobs without blocking.
        mutating func takeJobs() -> ([Job], Bool) {
            publisher.mailbox.withLock { box -> ([Job], Bool) in
                let jobs = box.jobs
                box.jobs.removeAll(keepingCapacity: true)
                return (jobs, box.stopping)
            }
        }

        /// Sleeps until a vote is queued, the broker sends something (a confirm, or the
        /// socket closing), or `timeout` passes — without spinning and without a fixed delay.
        /// Returns whether the broker's socket has input.
        @discardableResult
        func waitForWork(timeout: Duration, includingMailbox: Bool = true) -> Bool {
            if let connection, connection.hasBufferedInput { return true }
            // A negative descriptor is skipped by poll.
            var descriptors = [pollfd(fd: includingMailbox ? publisher.wakeUp.descriptor : -1, events: Int16(POLLIN), revents: 0)]
            if let connection {
                descriptors.append(pollfd(fd: connection.socketDescriptor, events: Int16(POLLIN), revents: 0))
            }
            // poll counts whole milliseconds: round up, so a short linger sleeps instead of spinning.
            let milliseconds = (timeout.wholeNanoseconds + 999_999) / 1_000_000
            _ = poll(&descriptors, nfds_t(descriptors.count), Int32(clamping: milliseconds))
            if includingMailbox, descriptors[0].revents != 0 { publisher.wakeUp.reset() }
            return descriptors.count > 1 && descriptors[1].revents != 0
        }

        mutating func connect() {
            do {
                let connection = try AMQPConnection(url: publisher.settings.url)
                try connection.declareQueue(publisher.settings.deadLetterQueue, quorum: publisher.settings.quorum, deadLetterQueue: nil)
                try connection.declareQueue(publisher.settings.queue, quorum: publisher.settings.quorum, deadLetterQueue: publisher.settings.deadLetterQueue)
                try connection.enableConfirms()
                self.connection = connection
                nextTag = 1
                oldestTag = 1
                backoff = .milliseconds(100)
                publisher.connected.store(true, ordering: .relaxed)
                publisher.brokerUp.record(1)
                publisher.logger.info("Connected to RabbitMQ", metadata: ["broker": "\(publisher.settings.url)", "queue": "\(publisher.settings.queue)"])
            } catch {
                publisher.reconnects.increment()
                publisher.logger.error("Cannot connect to RabbitMQ", metadata: ["broker": "\(publisher.settings.url)", "error": "\(error)", "retry_in_ms": "\(backoff.wholeMilliseconds)"])
                sleep(backoff)
                backoff = min(backoff * 2, .seconds(5))
            }
        }

        /// Sleeps, failing votes that arrive meanwhile; wakes up early when stopping.
        func sleep(_ duration: Duration) {
            let deadline = ContinuousClock.now + duration
            while ContinuousClock.now < deadline {
                let (jobs, stopping) = publisher.mailbox.withLock { box -> ([Job], Bool) in
                    defer { box.jobs.removeAll() }
                    return (box.jobs, box.stopping)
                }
                failAll(jobs.map(\.promise), with: .unavailable)
                if stopping { return }
                waitForWork(timeout: min(.milliseconds(50), deadline - .now))
            }
        }

        mutating func send(_ jobs: [Job]) {
            guard let connection else { return }
            var start = 0
            while start < jobs.count {
                // Respect the confirm window: wait for confirms before sending more.
                while inFlight.count >= publisher.settings.maxInFlight, self.connection != nil {
                    collectConfirms(waitForFirst: true)
                    expireOverdue()
                }
                guard self.connection != nil else {
                    failAll(jobs[start...].map(\.promise), with: .unavailable)
                    return
                }
                let end = min(start + publisher.settings.maxVotesPerMessage, jobs.count)
                let slice = jobs[start..<end]
                buffer.removeAll(keepingCapacity: true)
                VoteMessage.encode(slice.lazy.map(\.vote), into: &buffer)
                do {
                    try buffer.withUnsafeBytes { try connection.publish(to: publisher.settings.queue, body: $0) }
                    inFlight[nextTag] = InFlight(promises: slice.map(\.promise), sentAt: .now)
                    nextTag += 1
                    publisher.messagesPublished.increment()
                } catch {
                    failAll(jobs[start...].map(\.promise), with: .unavailable)
                    dropConnection(failing: .unavailable, reason: "\(error)")
                    return
                }
                start = end
            }
        }

        /// Reads confirms: waits up to 1 ms for the first when asked, then takes what is buffered.
        mutating func collectConfirms(waitForFirst: Bool) {
            guard let connection, !inFlight.isEmpty else { return }
            var timeout: Duration = waitForFirst ? .milliseconds(1) : .zero
            while !inFlight.isEmpty {
                let confirm: AMQPConnection.Confirm?
                do {
                    confirm = try connection.nextConfirm(timeout: timeout)
                } catch {
                    dropConnection(failing: .unavailable, reason: "\(error)")
                    return
                }
                guard let confirm else { return }
                timeout = .zero
                switch confirm {
                case .ack(let tag, let multiple): settle(upTo: tag, multiple: multiple, error: nil)
                case .nack(let tag, let multiple): settle(upTo: tag, multiple: multiple, error: .rejected)
                }
            }
        }

        mutating func settle(upTo tag: UInt64, multiple: Bool, error: PublishError?) {
            let tags: ClosedRange<UInt64> = multiple ? oldestTag...max(oldestTag, tag) : tag...tag
            let now = ContinuousClock.now
            var settled: [EventLoopPromise<Void>] = []
            for current in tags {
                guard let entry = inFlight.removeValue(forKey: current) else { continue }
                publisher.confirmTimer.recordNanoseconds((now - entry.sentAt).wholeNanoseconds)
                settled.append(contentsOf: entry.promises)
            }
            if let error {
                failAll(settled, with: error)
            } else {
                Self.complete(settled, with: .success(()))
            }
            while oldestTag < nextTag, inFlight[oldestTag] == nil { oldestTag += 1 }
        }

        mutating func expireOverdue() {
            // Confirm time-outs are seconds long; looking every few milliseconds is enough.
            let now = ContinuousClock.now
            guard now - lastExpiryCheck > .milliseconds(5) else { return }
            lastExpiryCheck = now
            let deadline = now - publisher.settings.confirmTimeout
            while oldestTag < nextTag {
                guard let entry = inFlight[oldestTag] else {
                    oldestTag += 1
                    continue
                }
                guard entry.sentAt < deadline else { return }
                inFlight.removeValue(forKey: oldestTag)
                failAll(entry.promises, with: .timedOut)
                publisher.logger.warning("Broker confirm timed out", metadata: ["votes": "\(entry.promises.count)"])
                oldestTag += 1
            }
        }

        mutating func dropConnection(failing error: PublishError, reason: String) {
            guard connection != nil else { return }
            for entry in inFlight.values { failAll(entry.promises, with: error) }
            inFlight.removeAll()
            connection = nil
            publisher.connected.store(false, ordering: .relaxed)
            publisher.brokerUp.record(0)
            publisher.reconnects.increment()
            publisher.logger.error("Lost the RabbitMQ connection", metadata: ["reason": "\(reason)"])
        }

        func failAll(_ promises: some Sequence<EventLoopPromise<Void>>, with error: PublishError) {
            Self.complete(Array(promises), with: .failure(error))
        }

        /// Completes promises with one task per event loop instead of one per promise: a
        /// promise completed from this thread would otherwise wake its loop every time.
        static func complete(_ promises: [EventLoopPromise<Void>], with result: Result<Void, PublishError>) {
            guard let first = promises.first else { return }
            if promises.allSatisfy({ $0.futureResult.eventLoop === first.futureResult.eventLoop }) {
                first.futureResult.eventLoop.execute { for promise in promises { promise.completeWith(result.mapError { $0 }) } }
                return
            }
            var byLoop: [ObjectIdentifier: [EventLoopPromise<Void>]] = [:]
            for promise in promises { byLoop[ObjectIdentifier(promise.futureResult.eventLoop), default: []].append(promise) }
            for group in byLoop.values {
                group[0].futureResult.eventLoop.execute { for promise in group { promise.completeWith(result.mapError { $0 }) } }
            }
        }
    }
}

/// A non-blocking pipe that wakes the publisher thread from `poll`; a signal stays
/// readable until drained, so none is lost between checking the mailbox and sleeping.
final class Wakeup: Sendable {
    /// The read end, for `poll`.
    let descriptor: Int32
    private let writeEnd: Int32

    init() {
        var ends: [Int32] = [-1, -1]
        if pipe(&ends) == 0 {
            for end in ends {
                _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
                _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            }
        }
        descriptor = ends[0]
        writeEnd = ends[1]
    }

    deinit {
        close(descriptor)
        close(writeEnd)
    }

    func signal() {
        var byte: UInt8 = 1
        _ = write(writeEnd, &byte, 1)
    }

    func reset() {
        var bytes = [UInt8](repeating: 0, count: 64)
        while read(descriptor, &bytes, bytes.count) == bytes.count {}
    }
}
