import Foundation
import MongoDB
import Testing
import VoteShared
@testable import VoteStore

/// A store under test: a fresh, empty one per test, and a second handle on the same data.
struct StoreFixture: CustomTestStringConvertible, Sendable {
    let name: String
    let make: @Sendable () throws -> (open: @Sendable () throws -> any VoteStore, cleanUp: @Sendable () -> Void)

    var testDescription: String { name }

    static let sqlite = StoreFixture(name: "sqlite") {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("paredao-store-\(UUID().uuidString)/votes.sqlite").path
        return (open: { try SQLiteVoteStore(path: path) }, cleanUp: {
            try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path)
        })
    }

    /// A real MongoDB (`MONGO_URL`, e.g. `mongodb://127.0.0.1:27017/?replicaSet=rs0`): each test
    /// gets a database of its own, dropped afterwards.
    static func mongodb(url: String) -> StoreFixture {
        StoreFixture(name: "mongodb") {
            let database = "paredao_test_\(UUID().uuidString.prefix(8).lowercased())"
            let testURL = MongoClientPool.url(url, withDatabase: database)
            return (open: { try MongoVoteStore(url: testURL, voteIDRetentionSeconds: 86_400, appName: "paredao-store-tests") }, cleanUp: {
                if let pool = try? MongoClientPool(url: testURL, appName: "paredao-store-tests") {
                    _ = try? pool.client().runCommand(BSONDocument().append("dropDatabase", int32: 1))
                }
            })
        }
    }

    /// SQLite always; MongoDB too when `MONGO_URL` is set.
    static var all: [StoreFixture] {
        var fixtures = [sqlite]
        if let url = ProcessInfo.processInfo.environment["MONGO_URL"], !url.isEmpty { fixtures.append(mongodb(url: url)) }
        return fixtures
    }
}

/// The store contract: the same tests, the same expectations, for every store.
@Suite("Store contract")
struct StoreContractTests {
    static let hour: Int64 = 1_795_352_400_000 // 2026-11-22T13:00:00Z in milliseconds
    var hour: Int64 { Self.hour }

    func vote(_ participant: String, at millis: Int64, id: VoteID = .random(), poll: String = "p1") -> Vote {
        Vote(id: id, pollID: poll, participantID: participant, acceptedAtMillis: millis)
    }

    func withStore(_ fixture: StoreFixture, _ body: (_ open: () throws -> any VoteStore) throws -> Void) throws {
        let made = try fixture.make()
        defer { made.cleanUp() }
        try body(made.open)
    }

    @Test(arguments: StoreFixture.all)
    func countsVotesPerPollHourAndParticipant(_ fixture: StoreFixture) throws {
        try withStore(fixture) { open in
            let store = try open()
            #expect(try store.prepareForWriting() == .exactlyOnce)
            let outcome = try store.record([
                vote("a", at: hour), vote("a", at: hour + 3_599_999), vote("b", at: hour + 3_600_000),
                vote("b", at: hour + 10), vote("a", at: hour, poll: "other"),
            ])
            #expect(outcome == RecordOutcome(counted: 5, duplicates: 0))
            let counts = try store.hourlyCounts(pollID: "p1").sorted { ($0.hourStart, $0.participantID) < ($1.hourStart, $1.participantID) }
            #expect(counts == [
                HourlyCount(hourStart: hour / 1000, participantID: "a", votes: 2),
                HourlyCount(hourStart: hour / 1000, participantID: "b", votes: 1),
                HourlyCount(hourStart: hour / 1000 + 3600, participantID: "b", votes: 1),
            ])
            #expect(try store.hourlyCounts(pollID: "nobody").isEmpty)
        }
    }

    @Test(arguments: StoreFixture.all)
    func aRedeliveredVoteIsCountedOnce(_ fixture: StoreFixture) throws {
        try withStore(fixture) { open in
            let store = try open()
            let first = vote("a", at: hour)
            let second = vote("b", at: hour)
            #expect(try store.record([first, second]) == RecordOutcome(counted: 2, duplicates: 0))
            #expect(try store.record([first, vote("a", at: hour), first]) == RecordOutcome(counted: 1, duplicates: 2))
            #expect(try store.record([first, second]) == RecordOutcome(counted: 0, duplicates: 2))
            let total = try store.hourlyCounts(pollID: "p1").reduce(0) { $0 + $1.votes }
            #expect(total == 3)
        }
    }

    @Test(arguments: StoreFixture.all)
    func anIDOutlivesTheWindowByItsMarginEvenForAPruneWhoseClockRunsAhead(_ fixture: StoreFixture) throws {
        try withStore(fixture) { open in
            let store = try open()
            let window = DedupWindow(acceptedSeconds: 3600, marginSeconds: 900)
            let now = hour + 10 * 3_600_000
            // Checked by the consumer at age R − 1 s; a vote long past the window and its margin.
            let edge = vote("a", at: now - 3_599_000)
            let gone = vote("b", at: now - 4_501_000)
            #expect(try store.record([edge, gone]) == RecordOutcome(counted: 2, duplicates: 0))
            // Another consumer prunes with a clock 899 s ahead: the edge id stays.
            #expect(try store.forgetVoteIDs(acceptedBefore: window.pruneCutoff(nowMillis: now + 899_000)) == 1)
            #expect(try store.record([edge]) == RecordOutcome(counted: 0, duplicates: 1))
            // Without the margin the same prune would have forgotten it.
            #expect(DedupWindow(acceptedSeconds: 3600, marginSeconds: 0).pruneCutoff(nowMillis: now + 899_000) > edge.acceptedAtMillis)
            #expect(try store.forgetVoteIDs(acceptedBefore: window.pruneCutoff(nowMillis: now + 905_000)) == 1, "a clock more than the margin ahead forgets it")
            #expect(try store.record([edge]) == RecordOutcome(counted: 1, duplicates: 0))
        }
    }

    @Test(arguments: StoreFixture.all)
    func anEmptyBatchChangesNothing(_ fixture: StoreFixture) throws {
        try withStore(fixture) { open in
            let store = try open()
            #expect(try store.record([]) == RecordOutcome(counted: 0, duplicates: 0))
            #expect(try store.hourlyCounts(pollID: "p1").isEmpty)
        }
    }

    @Test(arguments: StoreFixture.all)
    func countsSurviveReopeningAndTwoConnectionsSeeTheSameData(_ fixture: StoreFixture) throws {
        try withStore(fixture) { open in
            do {
                let writer = try open()
                _ = try writer.record((0..<1000).map { vote($0 % 3 == 0 ? "a" : "b", at: hour + Int64($0)) })
            }
            let reader = try open()
            let writer = try open()
            _ = try writer.record([vote("c", at: hour)])
            let counts = try reader.hourlyCounts(pollID: "p1")
            #expect(counts.reduce(0) { $0 + $1.votes } == 1001)
            #expect(counts.first { $0.participantID == "a" }?.votes == 334)
        }
    }

    @Test(arguments: StoreFixture.all)
    func tenThousandVotesInBatchesAcrossHours(_ fixture: StoreFixture) throws {
        try withStore(fixture) { open in
            let store = try open()
            let votes = (0..<10_000).map { vote(["a", "b", "c"][$0 % 3], at: hour + Int64($0) * 1_000) }
            var counted = 0
            for start in stride(from: 0, to: votes.count, by: 1_000) {
                counted += try store.record(Array(votes[start..<start + 1_000])).counted
            }
            #expect(counted == 10_000)
            // A redelivery of one whole batch after the fact adds nothing.
            #expect(try store.record(Array(votes[2_000..<3_000])) == RecordOutcome(counted: 0, duplicates: 1_000))
            let counts = try store.hourlyCounts(pollID: "p1")
            #expect(Set(counts.map(\.hourStart)) == [hour / 1000, hour / 1000 + 3600, hour / 1000 + 7200])
            #expect(counts.reduce(0) { $0 + $1.votes } == 10_000)
            #expect(counts.filter { $0.participantID == "a" }.reduce(0) { $0 + $1.votes } == 3_334)
        }
    }

    @Test(arguments: StoreFixture.all)
    func forgettingOldIdsKeepsCountsAndRecentIds(_ fixture: StoreFixture) throws {
        try withStore(fixture) { open in
            let store = try open()
            let old = vote("a", at: hour)
            let recent = vote("a", at: hour + 7_200_000)
            _ = try store.record([old, recent])
            #expect(try store.forgetVoteIDs(acceptedBefore: hour + 3_600_000) == 1)
            #expect(try store.record([recent]) == RecordOutcome(counted: 0, duplicates: 1))
            #expect(try store.hourlyCounts(pollID: "p1").reduce(0) { $0 + $1.votes } == 2)
        }
    }

    @Test func anUnwritableSQLitePathIsAStoreError() {
        #expect(throws: StoreError.self) { try SQLiteVoteStore(path: "/proc/paredao/votes.sqlite") }
    }
}

/// The polls half of the store contract: the same tests for every store.
@Suite("Poll store contract")
struct PollStoreContractTests {
    static let now: Int64 = 1_795_352_400_000
    let now = Self.now
    let people = [
        Participant(id: "aline", name: "Aline", photoUrl: "/img/aline.svg"),
        Participant(id: "diego", name: "Diego", photoUrl: "/img/diego.svg"),
        Participant(id: "camila", name: "Camila", photoUrl: ""),
    ]

    func withPollStore(_ fixture: StoreFixture, _ body: (_ open: () throws -> any PollStore) throws -> Void) throws {
        let made = try fixture.make()
        defer { made.cleanUp() }
        try body { try #require(try made.open() as? any PollStore) }
    }

    func rules(_ store: any PollStore) throws -> PollLifecycle {
        PollLifecycle(polls: try store.polls(), closeDelayMillis: 2_000)
    }

    @Test(arguments: StoreFixture.all)
    func aPollGoesThroughItsLifeAndReadsBackTheSame(_ fixture: StoreFixture) throws {
        try withPollStore(fixture) { open in
            let store = try open()
            #expect(try store.polls().isEmpty)
            let created = try rules(store).create(id: "p11", title: "Paredão 11", participants: people, nowMillis: now)
            #expect(try store.write(created) == .written)
            #expect(try store.polls() == [created.poll])
            let edited = try rules(store).edit(id: "p11", title: "Paredão 11 — quem sai?", participants: Array(people.prefix(2)))
            #expect(try store.write(edited) == .written)
            let opened = try rules(store).open(id: "p11", nowMillis: now + 1_000)
            #expect(try store.write(opened) == .written)
            let closed = try rules(store).close(id: "p11", nowMillis: now + 60_000)
            #expect(try store.write(closed) == .written)
            let other = try open()
            #expect(try other.polls() == [closed.poll])
            #expect(closed.poll.openedAtMillis == now + 1_000 && closed.poll.closedAtMillis == now + 62_000)
        }
    }

    @Test(arguments: StoreFixture.all)
    func aChangeDecidedOnAStaleReadIsAConflict(_ fixture: StoreFixture) throws {
        try withPollStore(fixture) { open in
            let store = try open()
            let created = try rules(store).create(id: "p1", title: "P1", participants: people, nowMillis: now)
            #expect(try store.write(created) == .written)
            #expect(try store.write(created) == .conflict)
            let stale = try rules(store)
            #expect(try store.write(try stale.open(id: "p1", nowMillis: now)) == .written)
            // Both decided while p1 was a draft: the second one lost the race.
            #expect(try store.write(try stale.edit(id: "p1", title: "x", participants: nil)) == .conflict)
            #expect(try store.polls().first?.title == "P1")
        }
    }

    @Test(arguments: StoreFixture.all)
    func theStoreNeverHoldsTwoOpenPolls(_ fixture: StoreFixture) throws {
        try withPollStore(fixture) { open in
            let store = try open()
            for id in ["p1", "p2"] {
                #expect(try store.write(try rules(store).create(id: id, title: id, participants: people, nowMillis: now)) == .written)
            }
            // Two admins each saw no open poll and opened a different draft.
            let seenByBoth = try rules(store)
            #expect(try store.write(try seenByBoth.open(id: "p1", nowMillis: now)) == .written)
            #expect(try store.write(try seenByBoth.open(id: "p2", nowMillis: now)) == .conflict)
            #expect(try store.polls().filter { $0.state == .open }.map(\.id) == ["p1"])
        }
    }

    @Test(arguments: StoreFixture.all)
    func theDefinitionSeedsOnlyAnEmptyStore(_ fixture: StoreFixture) throws {
        try withPollStore(fixture) { open in
            let store = try open()
            let definition = try Poll(id: "seed", title: "Paredão", participants: people)
            let seeded = try store.pollsSeeding(definition, nowMillis: now)
            #expect(seeded.map(\.id) == ["seed"] && seeded.first?.state == .open && seeded.first?.openedAtMillis == now)
            let other = try Poll(id: "other", title: "Outro", participants: people)
            #expect(try open().pollsSeeding(other, nowMillis: now + 5).map(\.id) == ["seed"])
            #expect(try store.pollsSeeding(nil, nowMillis: now).count == 1)
        }
    }

    @Test(arguments: StoreFixture.all)
    func theAuditLogReadsNewestFirst(_ fixture: StoreFixture) throws {
        try withPollStore(fixture) { open in
            let store = try open()
            #expect(try store.auditLog(limit: 10).isEmpty)
            let entries = (0..<5).map {
                AuditEntry(atMillis: now + Int64($0), actor: "produtor", action: "open", pollID: "p\($0)", detail: "{\"n\":\($0)}", client: "203.0.113.\($0)")
            }
            for entry in entries { try store.appendAudit(entry) }
            #expect(try open().auditLog(limit: 3) == Array(entries.reversed().prefix(3)))
            #expect(try store.auditLog(limit: 100).count == 5)
        }
    }
}
