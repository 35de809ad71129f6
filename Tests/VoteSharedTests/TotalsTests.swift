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

/// Values from the wire or the store can be anything: nothing that renders or buckets them traps.
@Suite("Arithmetic edges")
struct ArithmeticEdgeTests {
    @Test(arguments: [Int64.min, Int64.min + 1, -1, 0, 1, Int64.max - 1, Int64.max])
    func hourBucketsAreDefinedForEveryInt64(_ millis: Int64) {
        let start = HourBucket.start(ofMillis: millis)
        #expect(start.isMultiple(of: 3600))
        #expect(start <= Timestamp.floorDivision(millis, 1000).quotient)
        #expect(Timestamp.floorDivision(millis, 1000).quotient - start < 3600)
    }

    @Test func hourBucketsFloorNegativeTimes() {
        #expect(HourBucket.start(ofMillis: -1) == -3600)
        #expect(HourBucket.start(ofMillis: 3_599_999) == 0)
        #expect(HourBucket.start(ofMillis: 3_600_000) == 3600)
    }

    @Test func timestampsOutsideYears0To9999CarryTheirSign() {
        #expect(Timestamp.iso8601(millis: 0) == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp.iso8601(millis: -1) == "1969-12-31T23:59:59.999Z")
        #expect(Timestamp.iso8601(millis: 253_402_300_800_000) == "+10000-01-01T00:00:00.000Z")
        #expect(Timestamp.iso8601(millis: -99_999_999_999_999, fractional: false) == "-1199-02-15T14:13:20Z")
        for millis in [Int64.min, Int64.max] {
            let text = Timestamp.iso8601(millis: millis)
            #expect(text.hasSuffix("Z") && text.count > 20, "\(millis) renders: \(text)")
        }
    }

    @Test func corruptStoreCountsNeitherTrapNorCount() throws {
        let poll = try Poll(id: "p", title: "t", participants: [
            Participant(id: "a", name: "A", photoUrl: "/a"), Participant(id: "b", name: "B", photoUrl: "/b"),
        ])
        let totals = Totals(poll: poll, counts: [
            HourlyCount(hourStart: Int64.max, participantID: "a", votes: Int64.max),
            HourlyCount(hourStart: Int64.max, participantID: "a", votes: Int64.max),
            HourlyCount(hourStart: Int64.min, participantID: "b", votes: 5),
            HourlyCount(hourStart: 0, participantID: "b", votes: -7),
        ], asOfMillis: Int64.min)
        #expect(totals.votes == [Int64.max, 5], "sums saturate; a negative counter is ignored")
        #expect(totals.total == Int64.max)
        #expect(totals.percentageTenths.reduce(0, +) == 1000)
        let json = String(decoding: totals.json(), as: UTF8.self)
        #expect(json.contains(#""total":9223372036854775807"#))
    }
}
