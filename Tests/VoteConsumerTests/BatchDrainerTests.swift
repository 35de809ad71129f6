import Logging
import Synchronization
import Testing
@testable import VoteConsumer
import VoteShared
import VoteStore

/// The batch loop against a scripted broker and the real SQLite store; time moves only
/// when the broker waits or delivers, so no test sleeps.
@Suite("Batch drainer")
struct BatchDrainerTests {
    let clock = ManualClock()
    let journal = Journal()
    let logs = LogRecorder()
    let broker: ScriptedBroker
    let store: JournaledStore
    /// Batches of 3 votes or 50 ms.
    let drainer: BatchDrainer

    init() throws {
        broker = ScriptedBroker(clock: clock, journal: journal)
        store = try JournaledStore(journal: journal)
        drainer = BatchDrainer(
            batchSize: 3, batchMillis: 50, deadLetterQueue: "votes.dead", validator: VoteValidatorTests.validator, logger: logs.logger,
            wallClockMillis: { 1_795_352_400_000 }
        ) { [clock] in clock.now }
    }

    func drainOneBatch(stoppingWhen isStopping: () -> Bool = { false }) throws {
        try drainer.drainOneBatch(from: broker, into: store, isStopping: isStopping)
    }

    func message(_ votes: Int = 1) -> [UInt8] {
        VoteMessage.encode((0..<votes).map { _ in Vote(id: .random(), pollID: "p1", participantID: "a", acceptedAtMillis: 1_795_352_400_000) })
    }

    let junk: [UInt8] = [0x00, 0x01]

    @Test func acknowledgesOnlyAfterTheCommit() throws {
        broker.publish(message(), at: .zero)
        broker.publish(message(), at: .milliseconds(10))
        try drainOneBatch()
        #expect(journal.entries == [.committed(votes: 2), .acknowledged(upTo: 2)])
        #expect(try store.total() == 2)
        #expect(broker.unsettledCount == 0)
    }

    @Test func neverAcknowledgesAfterAFailedCommit() throws {
        store.failsToCommit = true
        broker.publish(message(), at: .zero)
        broker.publish(message(), at: .milliseconds(10))
        #expect(throws: StoreError.self) { try drainOneBatch() }
        #expect(journal.entries == [.commitFailed])
        #expect(broker.unsettledCount == 2)
    }

    @Test func theVotesOfAFailedCommitAreCountedOnceWhenRedelivered() throws {
        store.failsToCommit = true
        broker.publish(message(2), at: .zero)
        #expect(throws: StoreError.self) { try drainOneBatch() }
        store.failsToCommit = false
        broker.reconnect()
        try drainOneBatch()
        #expect(journal.entries == [.commitFailed, .committed(votes: 2), .acknowledged(upTo: 1)])
        #expect(try store.total() == 2)
    }

    @Test func deadLettersAPoisonVoteWithItsReasonAndCountsTheRest() throws {
        broker.publish(message(), at: .zero)
        broker.publish(VoteMessage.encode([Vote(id: .random(), pollID: "p1", participantID: "a", acceptedAtMillis: Int64.min)]), at: .milliseconds(5))
        broker.publish(VoteMessage.encode([Vote(id: .random(), pollID: "p1", participantID: "nobody", acceptedAtMillis: 1_795_352_400_000)]), at: .milliseconds(6))
        broker.publish(message(), at: .milliseconds(10))
        try drainOneBatch()
        #expect(journal.entries == [.deadLettered(tag: 2), .deadLettered(tag: 3), .committed(votes: 2), .acknowledged(upTo: 4)])
        #expect(try store.total() == 2)
        #expect(logs.entries(atLeast: .error).map { $0.metadata["reason"] } == ["accepted_at", "unknown_participant"])
    }

    @Test func deadLettersTheUndecodableAtOnceAndDoesNotCountIt() throws {
        broker.publish(message(), at: .zero)
        broker.publish(junk, at: .milliseconds(5))
        broker.publish(message(), at: .milliseconds(10))
        try drainOneBatch()
        #expect(journal.entries == [.deadLettered(tag: 2), .committed(votes: 2), .acknowledged(upTo: 3)])
        #expect(try store.total() == 2)
        let errors = logs.entries(atLeast: .error)
        try #require(errors.count == 1)
        #expect(errors[0].message == "Invalid message sent to the dead-letter queue")
        #expect(errors[0].metadata["reason"] == "undecodable")
        #expect(Set(errors[0].metadata.keys) == ["reason", "error", "bytes", "delivery_tag", "redelivered", "dead_letter_queue"])
        #expect(errors[0].metadata["bytes"] == "2")
        #expect(errors[0].metadata["delivery_tag"] == "2")
        #expect(errors[0].metadata["dead_letter_queue"] == "votes.dead")
    }

    @Test func aBatchOfOnlyUndecodableMessagesCommitsAndAcknowledgesNothing() throws {
        broker.publish(junk, at: .zero)
        try drainOneBatch()
        #expect(journal.entries == [.deadLettered(tag: 1)])
        #expect(clock.elapsed == .milliseconds(50))
    }

    @Test func closesTheBatchAtBatchSizeVotesWithOneCommit() throws {
        for _ in 0..<5 { broker.publish(message(), at: .zero) }
        try drainOneBatch()
        #expect(journal.entries == [.committed(votes: 3), .acknowledged(upTo: 3)])
        #expect(clock.elapsed == .zero)
        try drainOneBatch()
        #expect(journal.entries.suffix(2) == [.committed(votes: 2), .acknowledged(upTo: 5)])
        #expect(try store.total() == 5)
    }

    @Test func commitsWhatArrivedByTheDeadline() throws {
        broker.publish(message(), at: .milliseconds(100))
        broker.publish(message(), at: .milliseconds(120))
        broker.publish(message(), at: .milliseconds(180))
        try drainOneBatch()
        #expect(journal.entries == [.committed(votes: 2), .acknowledged(upTo: 2)])
        #expect(clock.elapsed == .milliseconds(150))
        #expect(broker.waits == [.milliseconds(250), .milliseconds(50), .milliseconds(30)])
        try drainOneBatch()
        #expect(journal.entries.suffix(2) == [.committed(votes: 1), .acknowledged(upTo: 3)])
        #expect(clock.elapsed == .milliseconds(230))
    }

    @Test func anIdlePollWithNothingDeliveredEndsTheBatchEmpty() throws {
        try drainOneBatch()
        #expect(journal.entries == [])
        #expect(broker.waits == [.milliseconds(250)])
    }

    @Test func stopClosesTheBatchWithWhatArrived() throws {
        broker.publish(message(), at: .zero)
        broker.publish(message(), at: .milliseconds(10))
        broker.publish(message(), at: .milliseconds(20))
        try drainOneBatch(stoppingWhen: { broker.delivered == 2 })
        #expect(journal.entries == [.committed(votes: 2), .acknowledged(upTo: 2)])
        #expect(clock.elapsed == .milliseconds(10))
    }

    @Test func stopBeforeAnyDeliveryWaitsForNothing() throws {
        broker.publish(message(), at: .zero)
        try drainOneBatch(stoppingWhen: { true })
        #expect(journal.entries == [])
        #expect(broker.waits == [])
    }

    @Test func redeliveredDuplicatesAreNotCountedTwice() throws {
        broker.publish(message(2), at: .zero)
        broker.acknowledgementsFail = true
        #expect(throws: BrokerDown.self) { try drainOneBatch() }
        #expect(journal.entries == [.committed(votes: 2)])
        broker.reconnect()
        try drainOneBatch()
        #expect(journal.entries == [.committed(votes: 2), .committed(votes: 2), .acknowledged(upTo: 1)])
        #expect(try store.total() == 2)
        let warnings = logs.entries(atLeast: .warning)
        try #require(warnings.count == 1)
        #expect(warnings[0].message == "Redelivered votes skipped")
        #expect(warnings[0].metadata["duplicates"] == "2")
        #expect(warnings[0].metadata["counted"] == "0")
    }
}

/// A vote for a poll that opened after the consumer last read the polls: read them again
/// until a read postdates the vote, and only then dead-letter. Time is the scripted
/// broker's; the catalog's waits move it too, so no test sleeps.
@Suite("Batch drainer with polls that change")
struct BatchDrainerCatalogTests {
    static let wallOrigin: Int64 = 1_795_352_400_000
    static let second = try! Poll(id: "p2", title: "Paredão 2", participants: [
        Participant(id: "c", name: "C", photoUrl: "/c.jpg"), Participant(id: "d", name: "D", photoUrl: "/d.jpg"),
    ])

    let clock = ManualClock()
    let journal = Journal()
    let broker: ScriptedBroker
    let store: JournaledStore
    /// What the store holds; the catalog reads it on every load.
    let shelf = PollShelf([VoteValidatorTests.poll])
    let catalog: PollCatalog
    let drainer: BatchDrainer

    init() throws {
        broker = ScriptedBroker(clock: clock, journal: journal)
        store = try JournaledStore(journal: journal)
        let (clock, shelf) = (clock, shelf)
        let wall: @Sendable () -> Int64 = { Self.wallOrigin + clock.elapsed.wholeMilliseconds }
        catalog = PollCatalog(
            clock: CatalogClock(now: { clock.now }, wallClockMillis: wall, sleep: { clock.advance(to: clock.elapsed + $0) })
        ) { () throws(StoreError) in shelf.load() }
        drainer = BatchDrainer(
            batchSize: 3, batchMillis: 50, deadLetterQueue: "votes.dead",
            validator: VoteValidator(catalog: catalog, maxAge: .seconds(24 * 3600), maxSkew: .seconds(300)),
            wallClockMillis: wall
        ) { clock.now }
    }

    func vote(poll: String = "p2", _ participant: String = "c", acceptedAfter elapsed: Duration) -> [UInt8] {
        VoteMessage.encode([Vote(id: .random(), pollID: poll, participantID: participant, acceptedAtMillis: Self.wallOrigin + elapsed.wholeMilliseconds)])
    }

    func counted(_ poll: String) throws -> Int {
        try store.hourlyCounts(pollID: poll).reduce(0) { $0 + Int($1.votes) }
    }

    @Test func aVoteForAPollOpenedJustAfterTheLastReadCounts() throws {
        try catalog.reload()
        // p2 opens 20 ms after the read; an API sees it and accepts a vote 50 ms later,
        // well inside the 200 ms between reads.
        clock.advance(to: .milliseconds(20))
        shelf.polls.withLock { $0.append(Self.second) }
        broker.publish(vote(acceptedAfter: .milliseconds(70)), at: .milliseconds(80))
        try drainer.drainOneBatch(from: broker, into: store, isStopping: { false })
        #expect(journal.entries == [.committed(votes: 1), .acknowledged(upTo: 1)])
        #expect(try counted("p2") == 1)
        // The first read after the vote's acceptance explains it: no more reads than that.
        #expect(shelf.loads == 2)
        #expect(clock.elapsed >= .milliseconds(200), "the second read waited out minReload")
    }

    @Test func aVoteAcceptedLongBeforeTheLastReadIsDeadLetteredWithoutReadingAgain() throws {
        clock.advance(to: .seconds(5))
        try catalog.reload()
        broker.publish(vote(poll: "gone", acceptedAfter: .seconds(3)), at: .seconds(5))
        try drainer.drainOneBatch(from: broker, into: store, isStopping: { false })
        #expect(journal.entries == [.deadLettered(tag: 1)])
        #expect(shelf.loads == 1)
    }

    @Test func aFreshVoteNoReadExplainsIsDeadLetteredAfterBoundedReads() throws {
        try catalog.reload()
        broker.publish(vote(poll: "gone", acceptedAfter: .milliseconds(10)), at: .milliseconds(10))
        broker.publish(vote(poll: "p1", "a", acceptedAfter: .milliseconds(15)), at: .milliseconds(15))
        try drainer.drainOneBatch(from: broker, into: store, isStopping: { false })
        try drainer.drainOneBatch(from: broker, into: store, isStopping: { false })
        #expect(journal.entries == [.deadLettered(tag: 1), .committed(votes: 1), .acknowledged(upTo: 2)])
        // Reads every 200 ms until one began more than the 1 s clock margin after the vote.
        let reads = shelf.loads
        #expect((6...8).contains(reads), "\(reads) reads")
        #expect(clock.elapsed <= .milliseconds(1_500))
    }

    @Test func aVoteForAParticipantAddedAfterTheLastReadCounts() throws {
        let draft = try Poll(id: "p2", title: "Paredão 2", participants: [Participant(id: "d", name: "D", photoUrl: "/d.jpg"), Participant(id: "e", name: "E", photoUrl: "/e.jpg")])
        shelf.polls.withLock { $0.append(draft) }
        try catalog.reload()
        clock.advance(to: .milliseconds(30))
        shelf.polls.withLock { $0 = [VoteValidatorTests.poll, Self.second] }
        broker.publish(vote(acceptedAfter: .milliseconds(40)), at: .milliseconds(40))
        try drainer.drainOneBatch(from: broker, into: store, isStopping: { false })
        #expect(journal.entries == [.committed(votes: 1), .acknowledged(upTo: 1)])
        #expect(try counted("p2") == 1)
    }

    @Test func aStoreThatCannotBeReadDeadLettersNothingAndAcknowledgesNothing() throws {
        let failing = PollCatalog(clock: CatalogClock(now: { [clock] in clock.now }, wallClockMillis: { Self.wallOrigin }, sleep: { [clock] in clock.advance(to: clock.elapsed + $0) })) { () throws(StoreError) in
            throw StoreError(operation: "read polls", code: 5, message: "database is locked")
        }
        let blind = BatchDrainer(
            batchSize: 3, batchMillis: 50, deadLetterQueue: "votes.dead",
            validator: VoteValidator(catalog: failing, maxAge: .seconds(24 * 3600), maxSkew: .seconds(300)),
            wallClockMillis: { Self.wallOrigin }
        ) { [clock] in clock.now }
        broker.publish(vote(acceptedAfter: .zero), at: .zero)
        #expect(throws: StoreError.self) { try blind.drainOneBatch(from: broker, into: store, isStopping: { false }) }
        #expect(journal.entries == [])
        #expect(broker.unsettledCount == 1)
    }
}

/// The polls a test's store holds, and how often they were read.
final class PollShelf: Sendable {
    let polls: Mutex<[Poll]>
    private let reads = Mutex(0)

    init(_ polls: [Poll]) {
        self.polls = Mutex(polls)
    }

    var loads: Int { reads.withLock { $0 } }

    func load() -> [Poll] {
        reads.withLock { $0 += 1 }
        return polls.withLock { $0 }
    }
}
