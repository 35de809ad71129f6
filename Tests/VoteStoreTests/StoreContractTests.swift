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
