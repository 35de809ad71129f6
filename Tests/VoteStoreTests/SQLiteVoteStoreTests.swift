import Foundation
import Testing
import VoteShared
import VoteStore

/// The store contract, run against the embedded SQLite store.
@Suite("SQLite vote store")
struct SQLiteVoteStoreTests {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("paredao-store-\(UUID().uuidString)/votes.sqlite").path
    let hour: Int64 = 1_795_352_400_000 // 2026-11-22T13:00:00Z in milliseconds

    func vote(_ participant: String, at millis: Int64, id: VoteID = .random(), poll: String = "p1") -> Vote {
        Vote(id: id, pollID: poll, participantID: participant, acceptedAtMillis: millis)
    }

    @Test func countsVotesPerPollHourAndParticipant() throws {
        let store = try SQLiteVoteStore(path: path)
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
    }

    @Test func aRedeliveredVoteIsCountedOnce() throws {
        let store = try SQLiteVoteStore(path: path)
        let first = vote("a", at: hour)
        let second = vote("b", at: hour)
        #expect(try store.record([first, second]) == RecordOutcome(counted: 2, duplicates: 0))
        #expect(try store.record([first, vote("a", at: hour), first]) == RecordOutcome(counted: 1, duplicates: 2))
        let total = try store.hourlyCounts(pollID: "p1").reduce(0) { $0 + $1.votes }
        #expect(total == 3)
    }

    @Test func countsSurviveReopeningAndTwoConnectionsSeeTheSameData() throws {
        do {
            let writer = try SQLiteVoteStore(path: path)
            _ = try writer.record((0..<1000).map { vote($0 % 3 == 0 ? "a" : "b", at: hour + Int64($0)) })
        }
        let reader = try SQLiteVoteStore(path: path)
        let writer = try SQLiteVoteStore(path: path)
        _ = try writer.record([vote("c", at: hour)])
        let counts = try reader.hourlyCounts(pollID: "p1")
        #expect(counts.reduce(0) { $0 + $1.votes } == 1001)
        #expect(counts.first { $0.participantID == "a" }?.votes == 334)
    }

    @Test func forgettingOldIdsKeepsCountsAndRecentIds() throws {
        let store = try SQLiteVoteStore(path: path)
        let old = vote("a", at: hour)
        let recent = vote("a", at: hour + 7_200_000)
        _ = try store.record([old, recent])
        #expect(try store.forgetVoteIDs(acceptedBefore: hour + 3_600_000) == 1)
        #expect(try store.record([recent]) == RecordOutcome(counted: 0, duplicates: 1))
        #expect(try store.hourlyCounts(pollID: "p1").reduce(0) { $0 + $1.votes } == 2)
    }

    @Test func anUnwritablePathIsAStoreError() {
        #expect(throws: StoreError.self) { try SQLiteVoteStore(path: "/proc/paredao/votes.sqlite") }
    }
}
