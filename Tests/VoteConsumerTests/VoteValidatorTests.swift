import Testing
@testable import VoteConsumer
import VoteShared

/// What makes a decoded vote count, and every edge of the wire's Int64 accepted-at time.
@Suite("Vote validation")
struct VoteValidatorTests {
    static let now: Int64 = 1_795_352_400_000  // 2026-11-22T13:00:00Z
    static let poll = try! Poll(id: "p1", title: "Paredão", participants: [
        Participant(id: "a", name: "A", photoUrl: "/a.jpg"), Participant(id: "b", name: "B", photoUrl: "/b.jpg"),
    ])
    static let validator = VoteValidator(polls: [poll], maxAge: .seconds(24 * 3600), maxSkew: .seconds(300))

    func vote(poll: String = "p1", _ participant: String = "a", at millis: Int64 = now) -> Vote {
        Vote(id: .random(), pollID: poll, participantID: participant, acceptedAtMillis: millis)
    }

    @Test func aVoteOfAKnownPollAndParticipantInsideTheWindowCounts() {
        #expect(Self.validator.check([vote(), vote("b", at: Self.now - 24 * 3_600_000), vote(at: Self.now + 300_000)], nowMillis: Self.now) == nil)
    }

    @Test func anUnknownPollOrParticipantIsRejected() {
        #expect(Self.validator.check([vote(poll: "other")], nowMillis: Self.now) == .unknownPoll("other", millis: Self.now))
        #expect(Self.validator.check([vote("boninho")], nowMillis: Self.now) == .unknownParticipant(poll: "p1", participant: "boninho", millis: Self.now))
    }

    @Test(arguments: [Int64.min, Int64.min + 1, -38_000_000_000_000 /* year −1200 */, -1, 0, now - 24 * 3_600_000 - 1, now + 300_001, 253_402_300_800_000 /* year 10000 */, Int64.max])
    func anAcceptedAtOutsideTheWindowIsRejectedWithoutTrapping(_ millis: Int64) {
        #expect(Self.validator.check([vote(at: millis)], nowMillis: Self.now) == .acceptedAtOutOfWindow(millis: millis))
        // Its reason renders too (the log line), whatever the value.
        #expect(!DeliveryRejection.acceptedAtOutOfWindow(millis: millis).description.isEmpty)
    }

    @Test func oneBadVoteRejectsTheWholeMessage() {
        #expect(Self.validator.check([vote(), vote("zé")], nowMillis: Self.now) == .unknownParticipant(poll: "p1", participant: "zé", millis: Self.now))
    }

    @Test func theWindowSurvivesAClockAtTheEdgesOfInt64() {
        let wide = VoteValidator(polls: [Self.poll], maxAge: .seconds(3600), maxSkew: .seconds(3600))
        #expect(wide.check([vote(at: Int64.min)], nowMillis: Int64.min) == nil)
        #expect(wide.check([vote(at: Int64.max)], nowMillis: Int64.max) == nil)
    }

    @Test func bytesThatAreNotAVoteMessageAreUndecodable() {
        guard case .failure(.undecodable) = Self.validator.votes(in: Array("{\"participant\":\"a\"}".utf8), nowMillis: Self.now) else {
            Issue.record("expected undecodable")
            return
        }
        let poison = VoteMessage.encode([vote(at: Int64.min)])
        #expect(Self.validator.votes(in: poison, nowMillis: Self.now) == .failure(.acceptedAtOutOfWindow(millis: Int64.min)))
        #expect(Self.validator.votes(in: VoteMessage.encode([vote()]), nowMillis: Self.now).map(\.count) == .success(1))
    }

    @Test func eachRejectionHasItsMetricReason() {
        #expect(DeliveryRejection.undecodable(WireFormatError("x")).reason == "undecodable")
        #expect(DeliveryRejection.unknownPoll("x", millis: 0).reason == "unknown_poll")
        #expect(DeliveryRejection.unknownParticipant(poll: "p", participant: "x", millis: 0).reason == "unknown_participant")
        #expect(DeliveryRejection.acceptedAtOutOfWindow(millis: 0).reason == "accepted_at")
    }
}

@Suite("Vote validation against the poll's opening and closing")
struct PollWindowValidationTests {
    static let now = VoteValidatorTests.now
    let people = [Participant(id: "a", name: "A", photoUrl: ""), Participant(id: "b", name: "B", photoUrl: "")]

    func vote(_ poll: String, at millis: Int64) -> Vote {
        Vote(id: .random(), pollID: poll, participantID: "a", acceptedAtMillis: millis)
    }

    @Test func aVoteCountsOnlyBetweenTheOpeningAndTheClose() throws {
        let closed = try Poll(id: "p1", title: "t", participants: people, state: .closed, openedAtMillis: Self.now - 60_000, closedAtMillis: Self.now)
        let draft = try Poll(id: "p2", title: "t", participants: people, state: .draft)
        let validator = VoteValidator(polls: [closed, draft], maxAge: .seconds(86_400), maxSkew: .seconds(300))
        #expect(validator.check([vote("p1", at: Self.now - 1)], nowMillis: Self.now + 5_000) == nil)
        #expect(validator.check([vote("p1", at: Self.now)], nowMillis: Self.now + 5_000) == .pollNotOpen(poll: "p1", millis: Self.now))
        #expect(validator.check([vote("p1", at: Self.now - 60_001)], nowMillis: Self.now) == .pollNotOpen(poll: "p1", millis: Self.now - 60_001))
        #expect(validator.check([vote("p2", at: Self.now)], nowMillis: Self.now) == .pollNotOpen(poll: "p2", millis: Self.now))
        #expect(DeliveryRejection.pollNotOpen(poll: "p1", millis: 0).reason == "poll_not_open")
        // Polls read again may explain these (the vote's accepted-at time says how fresh the read must be); not the others.
        #expect(DeliveryRejection.pollNotOpen(poll: "p1", millis: 7).acceptedAtIfPollsWereStale == 7)
        #expect(DeliveryRejection.unknownPoll("x", millis: 8).acceptedAtIfPollsWereStale == 8)
        #expect(DeliveryRejection.unknownParticipant(poll: "p1", participant: "x", millis: 9).acceptedAtIfPollsWereStale == 9)
        #expect(DeliveryRejection.acceptedAtOutOfWindow(millis: 0).acceptedAtIfPollsWereStale == nil)
        #expect(DeliveryRejection.undecodable(WireFormatError("x")).acceptedAtIfPollsWereStale == nil)
    }
}
