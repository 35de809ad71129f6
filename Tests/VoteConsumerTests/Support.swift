import Foundation
import Logging
import Synchronization
@testable import VoteConsumer
import VoteShared
import VoteStore

/// The drainer's clock: time moves only when the scripted broker waits or delivers.
final class ManualClock: Sendable {
    private let origin = ContinuousClock.now
    private let offset = Mutex(Duration.zero)

    /// How far time has moved since the test began.
    var elapsed: Duration { offset.withLock { $0 } }
    var now: ContinuousClock.Instant { origin + elapsed }

    /// Moves time on to `time` after the start; never back.
    func advance(to time: Duration) {
        offset.withLock { $0 = max($0, time) }
    }
}

/// What reached the broker and the store, in order.
final class Journal {
    enum Entry: Equatable {
        case deadLettered(tag: UInt64)
        case committed(votes: Int)
        case commitFailed
        case acknowledged(upTo: UInt64)
    }

    var entries: [Entry] = []
}

/// The connection dropped before the consumer's call went through.
struct BrokerDown: Error {}

/// A vote queue in memory: messages arrive at scripted times, and the clock moves as the
/// consumer waits for them. Tags count from 1 on each connection, as on an AMQP channel.
final class ScriptedBroker: DeliverySource {
    private struct Message {
        var body: [UInt8]
        var arrival: Duration
        var redelivered = false
    }

    private let clock: ManualClock
    private let journal: Journal
    private var queued: [Message] = []
    private var unsettled: [(tag: UInt64, message: Message)] = []
    private var nextTag: UInt64 = 1
    /// Every timeout the consumer waited with, in order.
    private(set) var waits: [Duration] = []
    /// Deliveries made on this connection.
    private(set) var delivered = 0
    /// When set, acknowledgements fail as if the connection had dropped.
    var acknowledgementsFail = false

    init(clock: ManualClock, journal: Journal) {
        self.clock = clock
        self.journal = journal
    }

    /// Messages delivered but neither acknowledged nor dead-lettered.
    var unsettledCount: Int { unsettled.count }

    /// Puts `body` on the queue, arriving `arrival` after the test began.
    func publish(_ body: [UInt8], at arrival: Duration = .zero) {
        queued.append(Message(body: body, arrival: arrival))
        queued.sort { $0.arrival < $1.arrival }
    }

    /// A new connection: the broker requeues what was unsettled, marked redelivered, ahead of the rest.
    func reconnect() {
        let requeued = unsettled.map { Message(body: $0.message.body, arrival: clock.elapsed, redelivered: true) }
        queued = requeued + queued
        unsettled = []
        nextTag = 1
        delivered = 0
        acknowledgementsFail = false
    }

    func nextDelivery(timeout: Duration) -> Delivery? {
        waits.append(timeout)
        let waitEnds = clock.elapsed + timeout
        guard let message = queued.first, message.arrival <= waitEnds else {
            clock.advance(to: waitEnds)
            return nil
        }
        queued.removeFirst()
        clock.advance(to: message.arrival)
        let tag = nextTag
        nextTag += 1
        delivered += 1
        unsettled.append((tag, message))
        return Delivery(tag: tag, body: message.body, redelivered: message.redelivered)
    }

    func acknowledge(upTo tag: UInt64) throws {
        if acknowledgementsFail { throw BrokerDown() }
        unsettled.removeAll { $0.tag <= tag }
        journal.entries.append(.acknowledged(upTo: tag))
    }

    func deadLetter(_ tag: UInt64) {
        unsettled.removeAll { $0.tag == tag }
        journal.entries.append(.deadLettered(tag: tag))
    }
}

/// The real SQLite store in a temporary folder, journaling its commits; with
/// `failsToCommit` its transactions fail the way a locked database does.
final class JournaledStore: VoteStore {
    private let sqlite: SQLiteVoteStore
    private let journal: Journal
    var failsToCommit = false

    init(journal: Journal) throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("paredao-consumer-\(UUID().uuidString)/votes.sqlite").path
        sqlite = try SQLiteVoteStore(path: path)
        self.journal = journal
    }

    /// Votes counted in poll `p1`, over every hour and participant.
    func total() throws -> Int {
        try hourlyCounts(pollID: "p1").reduce(0) { $0 + Int($1.votes) }
    }

    func prepareForWriting() throws(StoreError) -> CountingGuarantee {
        try sqlite.prepareForWriting()
    }

    func countingGuarantee() throws(StoreError) -> CountingGuarantee {
        try sqlite.countingGuarantee()
    }

    func record(_ votes: [Vote]) throws(StoreError) -> RecordOutcome {
        if failsToCommit {
            journal.entries.append(.commitFailed)
            throw StoreError(operation: "commit", code: 5, message: "database is locked")
        }
        let outcome = try sqlite.record(votes)
        journal.entries.append(.committed(votes: votes.count))
        return outcome
    }

    func hourlyCounts(pollID: String) throws(StoreError) -> [HourlyCount] {
        try sqlite.hourlyCounts(pollID: pollID)
    }

    func forgetVoteIDs(acceptedBefore millis: Int64) throws(StoreError) -> Int {
        try sqlite.forgetVoteIDs(acceptedBefore: millis)
    }
}

/// A log backend in memory.
final class LogRecorder: Sendable {
    struct Entry: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: Logger.Metadata
    }

    private struct Handler: LogHandler {
        let recorder: LogRecorder
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            recorder.storage.withLock { $0.append(Entry(level: event.level, message: event.message.description, metadata: metadata.merging(event.metadata ?? [:]) { $1 })) }
        }
    }

    private let storage = Mutex<[Entry]>([])

    /// A logger that writes here.
    var logger: Logger {
        Logger(label: "VoteConsumer") { _ in Handler(recorder: self) }
    }

    /// The entries at `level` or above.
    func entries(atLeast level: Logger.Level) -> [Entry] {
        storage.withLock { $0.filter { $0.level >= level } }
    }
}
