import Testing
import VoteShared

@Suite("Poll lifecycle")
struct PollLifecycleTests {
    static let now: Int64 = 1_795_352_400_000
    let now = Self.now
    let people = [
        Participant(id: "aline", name: "Aline", photoUrl: "/img/aline.svg"),
        Participant(id: "diego", name: "Diego", photoUrl: "/img/diego.svg"),
        Participant(id: "camila", name: "Camila", photoUrl: ""),
    ]

    func draft(_ id: String) throws -> Poll {
        try Poll(id: id, title: "Paredão \(id)", participants: Array(people.prefix(2)), state: .draft, createdAtMillis: now - 10)
    }

    func lifecycle(_ polls: [Poll]) -> PollLifecycle {
        PollLifecycle(polls: polls, closeDelayMillis: 2_000)
    }

    @Test func createMakesADraftThatMustNotExistYet() throws {
        let change = try lifecycle([]).create(id: "p11", title: "Paredão 11", participants: people, nowMillis: now)
        #expect(change.poll.state == .draft)
        #expect(change.poll.createdAtMillis == now)
        #expect(change.poll.openedAtMillis == nil && change.poll.closedAtMillis == nil)
        #expect(change.expectedState == nil)
        #expect(throws: PollRuleViolation.alreadyExists("p11")) {
            try lifecycle([change.poll]).create(id: "p11", title: "Outro", participants: people, nowMillis: now)
        }
    }

    @Test func aPollHasTwoToFourParticipantsWithValidDistinctIDs() throws {
        let five = people + [Participant(id: "d", name: "D", photoUrl: ""), Participant(id: "e", name: "E", photoUrl: "")]
        let four = Array(five.prefix(4))
        #expect(try lifecycle([]).create(id: "p", title: "t", participants: four, nowMillis: now).poll.participants.count == 4)
        for participants in [Array(people.prefix(1)), five, [people[0], people[0]], [people[0], Participant(id: "Not Valid", name: "X", photoUrl: "")]] {
            #expect(throws: PollRuleViolation.self) { try lifecycle([]).create(id: "p", title: "t", participants: participants, nowMillis: now) }
        }
    }

    @Test func idsTitlesNamesAndPhotosAreChecked() {
        #expect(throws: PollRuleViolation.self) { try lifecycle([]).create(id: "P 1", title: "t", participants: people, nowMillis: now) }
        #expect(throws: PollRuleViolation.self) { try lifecycle([]).create(id: String(repeating: "a", count: 65), title: "t", participants: people, nowMillis: now) }
        #expect(throws: PollRuleViolation.self) { try lifecycle([]).create(id: "p", title: "  ", participants: people, nowMillis: now) }
        let badPhotos = ["//evil.example/x.png", "javascript:alert(1)", "https://x/y.png", "/img/a\".svg"]
        for photo in badPhotos {
            let participants = [Participant(id: "a", name: "A", photoUrl: photo), people[1]]
            #expect(throws: PollRuleViolation.self) { try lifecycle([]).create(id: "p", title: "t", participants: participants, nowMillis: now) }
        }
        let noName = [Participant(id: "a", name: "", photoUrl: ""), people[1]]
        #expect(throws: PollRuleViolation.self) { try lifecycle([]).create(id: "p", title: "t", participants: noName, nowMillis: now) }
    }

    @Test func onlyADraftCanBeEdited() throws {
        let poll = try draft("p1")
        let edited = try lifecycle([poll]).edit(id: "p1", title: "Novo título", participants: people)
        #expect(edited.poll.title == "Novo título" && edited.poll.participants.count == 3)
        #expect(edited.expectedState == .draft)
        let open = try lifecycle([poll]).open(id: "p1", nowMillis: now).poll
        #expect(throws: PollRuleViolation.notDraft(id: "p1", state: .open)) { try lifecycle([open]).edit(id: "p1", title: "x", participants: nil) }
        #expect(throws: PollRuleViolation.unknownPoll("nope")) { try lifecycle([poll]).edit(id: "nope", title: "x", participants: nil) }
        #expect(throws: PollRuleViolation.self) { try lifecycle([poll]).edit(id: "p1", title: nil, participants: Array(people.prefix(1))) }
    }

    @Test func openingADraftStampsTheTimeAndOnlyDraftsOpen() throws {
        let change = try lifecycle([try draft("p1")]).open(id: "p1", nowMillis: now)
        #expect(change.poll.state == .open && change.poll.openedAtMillis == now && change.expectedState == .draft)
        #expect(throws: PollRuleViolation.notDraft(id: "p1", state: .open)) { try lifecycle([change.poll]).open(id: "p1", nowMillis: now) }
        #expect(throws: PollRuleViolation.unknownPoll("p2")) { try lifecycle([change.poll]).open(id: "p2", nowMillis: now) }
    }

    @Test func atMostOnePollIsOpenIncludingOneStillClosing() throws {
        let open = try lifecycle([try draft("p1")]).open(id: "p1", nowMillis: now).poll
        let next = try draft("p2")
        #expect(throws: PollRuleViolation.anotherPollOpen("p1")) { try lifecycle([open, next]).open(id: "p2", nowMillis: now + 1) }
        let closing = try lifecycle([open, next]).close(id: "p1", nowMillis: now + 10).poll
        #expect(throws: PollRuleViolation.anotherPollOpen("p1")) { try lifecycle([closing, next]).open(id: "p2", nowMillis: now + 11) }
        let opened = try lifecycle([closing, next]).open(id: "p2", nowMillis: now + 2_010)
        #expect(opened.poll.state == .open)
    }

    @Test func closingSetsTheClosingTimeAheadByTheDelayAndOnlyOpenPollsClose() throws {
        let open = try lifecycle([try draft("p1")]).open(id: "p1", nowMillis: now).poll
        let change = try lifecycle([open]).close(id: "p1", nowMillis: now + 60_000)
        #expect(change.poll.state == .closed && change.poll.closedAtMillis == now + 62_000 && change.expectedState == .open)
        #expect(throws: PollRuleViolation.notOpen(id: "p1", state: .closed)) { try lifecycle([change.poll]).close(id: "p1", nowMillis: now) }
        #expect(throws: PollRuleViolation.notOpen(id: "p2", state: .draft)) { try lifecycle([try draft("p2")]).close(id: "p2", nowMillis: now) }
        #expect(throws: PollRuleViolation.notDraft(id: "p1", state: .closed)) { try lifecycle([change.poll]).open(id: "p1", nowMillis: now) }
    }

    @Test func aClosedPollIsOpenUntilItsClosingTimeThenClosed() throws {
        let open = try lifecycle([try draft("p1")]).open(id: "p1", nowMillis: now).poll
        let closed = try lifecycle([open]).close(id: "p1", nowMillis: now + 1_000).poll
        #expect(closed.phase(atMillis: now + 2_999) == .open)
        #expect(closed.phase(atMillis: now + 3_000) == .closed)
        #expect(try draft("p2").phase(atMillis: now) == .draft)
    }

    @Test func aVoteCountsFromTheOpeningUpToButNotAtTheClosingTime() throws {
        let open = try lifecycle([try draft("p1")]).open(id: "p1", nowMillis: now).poll
        let closed = try lifecycle([open]).close(id: "p1", nowMillis: now + 1_000).poll
        #expect(!closed.countsVote(acceptedAtMillis: now - 1))
        #expect(closed.countsVote(acceptedAtMillis: now))
        #expect(closed.countsVote(acceptedAtMillis: now + 2_999))
        #expect(!closed.countsVote(acceptedAtMillis: now + 3_000))
        #expect(open.countsVote(acceptedAtMillis: .max))
        #expect(!(try draft("p2")).countsVote(acceptedAtMillis: now))
        #expect(!closed.countsVote(acceptedAtMillis: .min))
    }

    @Test func theCurrentPollIsTheOpenOneElseTheLastClosed() throws {
        let first = try lifecycle([try draft("p1")]).open(id: "p1", nowMillis: now).poll
        let firstClosed = try lifecycle([first]).close(id: "p1", nowMillis: now + 1_000).poll
        let second = try lifecycle([try draft("p2")]).open(id: "p2", nowMillis: now + 5_000).poll
        let secondClosed = try lifecycle([second]).close(id: "p2", nowMillis: now + 9_000).poll
        let draft3 = try draft("p3")
        #expect(lifecycle([draft3]).current(atMillis: now) == nil)
        #expect(lifecycle([firstClosed, second, draft3]).current(atMillis: now + 6_000)?.id == "p2")
        #expect(lifecycle([secondClosed, firstClosed, draft3]).current(atMillis: now + 20_000)?.id == "p2")
        #expect(lifecycle([firstClosed, draft3]).current(atMillis: now + 1_500)?.id == "p1")
    }

    @Test func theDefinitionFileSeedsAnOpenPollOnlyIntoAnEmptyStore() throws {
        let definition = try Poll(id: "seed", title: "Paredão", participants: people)
        let seeded = try #require(lifecycle([]).seed(definition, nowMillis: now))
        #expect(seeded.poll.state == .open && seeded.poll.openedAtMillis == now && seeded.expectedState == nil)
        #expect(lifecycle([try draft("p1")]).seed(definition, nowMillis: now) == nil)
    }

    @Test func closingTimeArithmeticDoesNotTrap() throws {
        let open = try Poll(id: "p", title: "t", participants: people, state: .open, openedAtMillis: 0)
        let closed = try lifecycle([open]).close(id: "p", nowMillis: .max).poll
        #expect(closed.closedAtMillis == .max)
    }
}
