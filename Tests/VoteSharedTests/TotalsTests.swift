import Foundation
import Testing
import VoteShared

@Suite("Totals")
struct TotalsTests {
    let poll = try! Poll(id: "p1", title: "Paredão", participants: [
        Participant(id: "a", name: "Ana", photoUrl: "/img/a.svg"),
        Participant(id: "b", name: "Bia", photoUrl: "/img/b.svg"),
        Participant(id: "c", name: "Cris", photoUrl: "/img/c.svg"),
    ])

    @Test func foldsHourlyCountsPerParticipantAndHour() {
        let totals = Totals(poll: poll, counts: [
            HourlyCount(hourStart: 7200, participantID: "a", votes: 5),
            HourlyCount(hourStart: 3600, participantID: "b", votes: 2),
            HourlyCount(hourStart: 7200, participantID: "c", votes: 1),
            HourlyCount(hourStart: 3600, participantID: "zzz", votes: 100),
        ], asOfMillis: 0)
        #expect(totals.total == 8)
        #expect(totals.votes == [5, 2, 1])
        #expect(totals.hours.map(\.hourStart) == [3600, 7200])
        #expect(totals.hours.map(\.votes) == [[0, 2, 0], [5, 0, 1]])
    }

    @Test(arguments: [[1, 1, 1], [2, 1, 0], [1, 0, 0], [0, 0, 0], [333_333, 333_333, 333_334], [7, 13, 980], [1, 1, 999_998]])
    func percentagesAddUpToOneHundred(_ votes: [Int64]) {
        let counts = zip(["a", "b", "c"], votes).map { HourlyCount(hourStart: 0, participantID: $0, votes: $1) }
        let tenths = Totals(poll: poll, counts: counts, asOfMillis: 0).percentageTenths
        #expect(tenths.reduce(0, +) == (votes.reduce(0, +) == 0 ? 0 : 1000))
        for (share, count) in zip(tenths, votes) where votes.reduce(0, +) > 0 {
            let exact = Double(count) * 1000 / Double(votes.reduce(0, +))
            #expect(abs(Double(share) - exact) < 1)
        }
    }

    @Test func rendersTheDocumentedJSON() throws {
        let totals = Totals(poll: poll, counts: [
            HourlyCount(hourStart: 1_795_352_400, participantID: "a", votes: 2),
            HourlyCount(hourStart: 1_795_352_400, participantID: "b", votes: 1),
        ], asOfMillis: 1_795_352_401_000)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(totals.json())) as? [String: Any])
        #expect(object["poll"] as? String == "p1")
        #expect(object["total"] as? Int == 3)
        #expect(object["asOf"] as? String == "2026-11-22T13:00:01.000Z")
        let participants = try #require(object["participants"] as? [[String: Any]])
        #expect(participants.map { $0["id"] as? String } == ["a", "b", "c"])
        #expect(participants.map { $0["percentage"] as? Double } == [66.7, 33.3, 0.0])
        let hours = try #require(object["hours"] as? [[String: Any]])
        #expect(hours.count == 1)
        #expect(hours[0]["hour"] as? String == "2026-11-22T13:00:00Z")
        #expect(hours[0]["total"] as? Int == 3)
        #expect((hours[0]["votes"] as? [String: Int]) == ["a": 2, "b": 1, "c": 0])
    }

    @Test func theShortFormLeavesOutOnlyTheHours() throws {
        let totals = Totals(poll: poll, counts: (0..<72).map { HourlyCount(hourStart: Int64($0) * 3600, participantID: "a", votes: 1) }, asOfMillis: 0)
        let full = try #require(try JSONSerialization.jsonObject(with: Data(totals.json())) as? [String: Any])
        let short = try #require(try JSONSerialization.jsonObject(with: Data(totals.json(includingHours: false))) as? [String: Any])
        #expect((full["hours"] as? [Any])?.count == 72)
        #expect(short["hours"] == nil)
        #expect(Set(full.keys).subtracting(short.keys) == ["hours"])
        #expect(short["total"] as? Int == 72)
        #expect(totals.json(includingHours: false).count < 400)
    }

    @Test func pollValidationRefusesBadDefinitions() {
        #expect(throws: ConfigurationError.self) { try Poll(id: "p", title: "t", participants: [Participant(id: "a", name: "A", photoUrl: "")]) }
        #expect(throws: ConfigurationError.self) {
            try Poll(id: "p", title: "t", participants: [Participant(id: "a", name: "A", photoUrl: ""), Participant(id: "a", name: "B", photoUrl: "")])
        }
        #expect(throws: ConfigurationError.self) {
            try Poll(id: "p", title: "t", participants: [Participant(id: "A B", name: "A", photoUrl: ""), Participant(id: "b", name: "B", photoUrl: "")])
        }
    }

    @Test func shippedSamplePollLoads() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let poll = try Poll.load(from: root.appendingPathComponent("config/poll.json").path)
        #expect((2...3).contains(poll.participants.count))
    }
}
