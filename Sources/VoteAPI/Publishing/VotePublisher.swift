#if canImport(Glibc)
import Glibc
#endif
import Logging
import Metrics
import NIOCore
import RabbitMQ
import ServiceSupport
import Synchronization
import VoteShared

/// Hands votes to RabbitMQ with publisher confirms, from one dedicated thread that owns
/// the (blocking, not thread-safe) librabbitmq connection.
///
/// Event loops call `publish`, which returns at once; the thread takes the waiting votes
/// and carries out what ``PublisherStateMachine`` decides — pack, send, wait for
/// confirms, time out, reconnect, stop — settling each vote's ticket on its event loop
/// when its message is confirmed. Run it as a ``ThreadService``.
final class VotePublisher: VotePublishing, BlockingWorker {
    /// Where votes go (the broker, or the nodes of a cluster in the order to try them; the
    /// quorum or classic queue and its dead-letter queue), how many may wait for the thread
    /// before new ones get `overloaded`, and the thread's rules (packing, confirm window and
    /// time-out, linger, heartbeat; its `brokers` is the number of `urls`).
    struct Settings: Sendable {
        var urls: [AMQPURL]
        var queue, deadLetterQueue: String
        var quorum: Bool
        var maxQueued: Int
        var machine: Machine.Settings
    }

    typealias Machine = PublisherStateMachine<any PublishTicket>

    private struct Mailbox {
        var jobs: [Machine.Job] = []
        var stopping = false
    }

    private let settings: Settings
    private let mailbox = Mutex(Mailbox())
    private let wakeUp = Wakeup()
    private let connected = Atomic<Bool>(false)
    private let blocked = Atomic<Bool>(false)
    private let lingering = Atomic<Bool>(false)
    private let logger = Logger(label: "VoteAPI.publisher")
    private let confirmTimer = Metrics.Timer(label: "paredao_publish_confirm_seconds")
    private let reconnects = Counter(label: "paredao_broker_reconnects_total")
    /// Connections opened on another cluster node than the one before, by the node's address.
    private let failovers: [Counter]
    /// AMQP messages published; `paredao_votes_accepted_total` over it is the packing ratio.
    private let messagesPublished = Counter(label: "paredao_publish_messages_total")
    private let brokerUp = Gauge(label: "paredao_broker_up")

    init(settings: Settings) {
        var settings = settings
        settings.machine.brokers = settings.urls.count
        self.settings = settings
        failovers = settings.urls.map { Counter(label: "paredao_amqp_failovers_total", dimensions: [("to", "\($0.host):\($0.port)")]) }
        brokerUp.record(0)
    }

    /// Whether the publisher holds a working broker connection.
    var isConnected: Bool { connected.load(ordering: .relaxed) }

    /// Whether the broker blocks publishing (a memory or disk alarm).
    var isBlocked: Bool { blocked.load(ordering: .relaxed) }

    /// Whether votes arrive fast enough that they wait to share messages.
    var isLingering: Bool { lingering.load(ordering: .relaxed) }

    func publish(_ ticket: any PublishTicket) {
        guard isConnected else { return ticket.settle(.failure(.unavailable)) }
        guard !isBlocked else { return ticket.settle(.failure(.blocked)) }
        enum Outcome { case queuedFirst, queued, refused }
        let outcome = mailbox.withLock { box -> Outcome in
            guard !box.stopping, box.jobs.count < settings.maxQueued else { return .refused }
            box.jobs.append(Machine.Job(vote: ticket.vote, ticket: ticket))
            return box.jobs.count == 1 ? .queuedFirst : .queued
        }
        switch outcome {
        case .queuedFirst:
            // The pipe keeps the signal until the publisher reads it, so none is lost.
            wakeUp.signal()
        case .queued:
            break
        case .refused:
            ticket.settle(.failure(.overloaded))
        }
    }

    func runBlocking() {
        var loop = PublishLoop(publisher: self)
        loop.run()
    }

    /// Fails whatever was not confirmed yet and ends the thread.
    func requestStop() {
        mailbox.withLock { $0.stopping = true }
        wakeUp.signal()
    }

    /// The publisher thread: carries out the machine's actions; only that thread touches it.
    private struct PublishLoop {
        let publisher: VotePublisher
        var machine: Machine
        var connection: AMQPConnection?
        var buffer: [UInt8] = []
        var finished = false
        /// When librabbitmq last read the socket: it sends and checks heartbeats only then.
        var lastBrokerRead = ContinuousClock.now
        let heartbeatCheckInterval: Duration

        init(publisher: VotePublisher) {
            self.publisher = publisher
            machine = Machine(settings: publisher.settings.machine, now: .now)
            let heartbeat = publisher.settings.machine.heartbeat
            heartbeatCheckInterval = heartbeat > .zero ? min(.seconds(1), heartbeat / 2) : .seconds(3600)
        }

        mutating func run() {
            while !finished {
                carryOut(machine.tick(now: .now))
            }
        }

        mutating func carryOut(_ action: Machine.Action) {
            switch action {
            case .none:
                break
            case .connect(let broker):
                connect(to: broker)
            case .failedOver(let from, let to):
                publisher.failovers[to].increment()
                publisher.logger.warning("Failed over to another RabbitMQ node", metadata: [
                    "from": "\(publisher.settings.urls[from])", "to": "\(publisher.settings.urls[to])",
                ])
            case .send(let message):
                send(message)
            case .succeed(let settled):
                let now = ContinuousClock.now
                for sentAt in settled.sentAt { publisher.confirmTimer.recordNanoseconds((now - sentAt).wholeNanoseconds) }
                Self.complete(settled.tickets, with: .success(()))
            case .fail(let tickets, let error):
                if error == .unroutable { publisher.logger.error("Broker returned votes as unroutable", metadata: ["votes": "\(tickets.count)", "queue": "\(publisher.settings.queue)"]) }
                if error == .timedOut { publisher.logger.warning("Broker confirm timed out while blocked", metadata: ["votes": "\(tickets.count)"]) }
                Self.complete(tickets, with: .failure(error))
            case .reconnect(_, let failing, let error):
                if error == .timedOut {
                    publisher.reconnects.increment()
                    publisher.logger.warning("Broker confirm timed out; reconnecting", metadata: ["votes": "\(failing.count)"])
                }
                if error == .rejected {
                    publisher.reconnects.increment()
                    publisher.logger.warning("Broker rejected votes; reconnecting to the next node", metadata: ["votes": "\(failing.count)"])
                }
                closeConnection()
                Self.complete(failing, with: .failure(error))
            case .wait(let deadline, let mailbox):
                wait(until: deadline, mailbox: mailbox)
            case .finish(let failing):
                closeConnection()
                Self.complete(failing, with: .failure(.unavailable))
                publisher.logger.info("Publisher stopped")
                finished = true
            }
        }

        mutating func connect(to broker: Int) {
            let settings = publisher.settings
            let url = settings.urls[broker]
            do {
                let connection = try AMQPConnection(url: url, heartbeat: settings.machine.heartbeat)
                try connection.declareQueue(settings.deadLetterQueue, quorum: settings.quorum, deadLetterQueue: nil)
                try connection.declareQueue(settings.queue, quorum: settings.quorum, deadLetterQueue: settings.deadLetterQueue)
                try connection.enableConfirms()
                self.connection = connection
                lastBrokerRead = .now
                publisher.connected.store(true, ordering: .relaxed)
                publisher.brokerUp.record(1)
                publisher.logger.info("Connected to RabbitMQ", metadata: ["broker": "\(url)", "queue": "\(settings.queue)"])
                carryOut(machine.connected(now: .now))
            } catch {
                publisher.reconnects.increment()
                let action = machine.connectFailed(now: .now)
                if case .reconnect(let after, _, _) = action {
                    publisher.logger.error("Cannot connect to RabbitMQ", metadata: ["broker": "\(url)", "error": "\(error)", "retry_in_ms": "\(after.wholeMilliseconds)"])
                }
                carryOut(action)
            }
        }

        mutating func send(_ message: Machine.Message) {
            buffer.removeAll(keepingCapacity: true)
            VoteMessage.encode(message.votes.lazy.map(\.vote), into: &buffer)
            guard let connection else { return lose(machine.sendFailed(message, now: .now), reason: "no connection") }
            do {
                try buffer.withUnsafeBytes { try connection.publish(to: publisher.settings.queue, tag: message.tag, body: $0) }
                publisher.messagesPublished.increment()
            } catch {
                lose(machine.sendFailed(message, now: .now), reason: "\(error)")
            }
        }

        /// Sleeps in `poll` on the broker's socket (and the mailbox's wake-up pipe when asked)
        /// until `deadline`, then reports the confirms that came and the votes that wait.
        mutating func wait(until deadline: ContinuousClock.Instant?, mailbox: Bool) {
            var brokerInput = connection?.hasBufferedInput ?? false
            if !brokerInput {
                // A negative descriptor is skipped by poll.
                var descriptors = [
                    pollfd(fd: mailbox ? publisher.wakeUp.descriptor : -1, events: Int16(POLLIN), revents: 0),
                    pollfd(fd: connection?.socketDescriptor ?? -1, events: Int16(POLLIN), revents: 0),
                ]
                let timeout = deadline.map { max(.zero, $0 - .now) } ?? .milliseconds(500)
                // poll counts whole milliseconds: round up, so a short linger sleeps instead of spinning.
                let milliseconds = (timeout.wholeNanoseconds + 999_999) / 1_000_000
                _ = poll(&descriptors, nfds_t(descriptors.count), Int32(clamping: milliseconds))
                // Reset before taking the mailbox: a vote queued after the take signals again.
                if mailbox, descriptors[0].revents != 0 { publisher.wakeUp.reset() }
                brokerInput = descriptors[1].revents != 0
            }
            if brokerInput || (connection != nil && ContinuousClock.now - lastBrokerRead >= heartbeatCheckInterval) {
                readConfirms()
            }
            if mailbox { takeMailbox() }
        }

        /// Reads what the broker sent — confirms, returns, flow control, or the connection's
        /// end — without waiting; librabbitmq sends a due heartbeat and notices a missed one here.
        mutating func readConfirms() {
            guard let connection else { return }
            lastBrokerRead = .now
            do {
                while let confirm = try connection.nextConfirm(timeout: .zero) {
                    switch confirm {
                    case .ack(let tag, let multiple): carryOut(machine.confirmed(tag: tag, multiple: multiple, now: .now))
                    case .nack(let tag, let multiple): carryOut(machine.nacked(tag: tag, multiple: multiple, now: .now))
                    case .returned(let tag): carryOut(machine.returned(tag: tag, now: .now))
                    case .blocked:
                        publisher.blocked.store(true, ordering: .relaxed)
                        publisher.logger.error("RabbitMQ blocked publishing (memory or disk alarm)")
                        carryOut(machine.blockedByBroker(now: .now))
                    case .unblocked:
                        publisher.blocked.store(false, ordering: .relaxed)
                        publisher.logger.info("RabbitMQ unblocked publishing")
                        carryOut(machine.unblockedByBroker(now: .now))
                    }
                    // A carried-out action may have dropped the connection.
                    if self.connection == nil { return }
                }
            } catch {
                lose(machine.connectionLost(now: .now), reason: "\(error)")
            }
        }

        mutating func takeMailbox() {
            let (jobs, stopping) = publisher.mailbox.withLock { box -> ([Machine.Job], Bool) in
                let jobs = box.jobs
                box.jobs.removeAll(keepingCapacity: true)
                return (jobs, box.stopping)
            }
            carryOut(machine.jobsArrived(jobs, now: .now))
            publisher.lingering.store(machine.isLingering, ordering: .relaxed)
            if stopping { carryOut(machine.stopRequested()) }
        }

        mutating func lose(_ action: Machine.Action, reason: String) {
            guard case .reconnect = action else { return carryOut(action) }
            publisher.reconnects.increment()
            publisher.logger.error("Lost the RabbitMQ connection", metadata: ["reason": "\(reason)"])
            carryOut(action)
        }

        mutating func closeConnection() {
            connection = nil
            publisher.connected.store(false, ordering: .relaxed)
            publisher.blocked.store(false, ordering: .relaxed)
            publisher.brokerUp.record(0)
        }

        /// Settles tickets with one task per event loop instead of one per ticket: a ticket
        /// settled from this thread would otherwise wake its loop every time.
        static func complete(_ tickets: [any PublishTicket], with result: Result<Void, PublishError>) {
            guard let first = tickets.first else { return }
            let loop = first.eventLoop
            if tickets.allSatisfy({ $0.eventLoop === loop }) {
                loop.execute { for ticket in tickets { ticket.settle(result) } }
                return
            }
            var byLoop: [ObjectIdentifier: [any PublishTicket]] = [:]
            for ticket in tickets { byLoop[ObjectIdentifier(ticket.eventLoop), default: []].append(ticket) }
            for group in byLoop.values {
                group[0].eventLoop.execute { for ticket in group { ticket.settle(result) } }
            }
        }
    }
}
