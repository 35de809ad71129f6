import Testing
@testable import VoteConsumer
import VoteShared

/// The batch rules, one test each, on the machine alone: no broker, no store, no clock.
@Suite("Batch state machine")
struct BatchStateMachineTests {
    /// Any instant will do: the machine only compares the instants it is given.
    let t0 = ContinuousClock.now
    let junk = DeliveryRejection.undecodable(WireFormatError("not a Paredão vote message (bad magic)"))

    /// A machine for batches of 3 votes or 50 ms.
    func machine() -> BatchStateMachine {
        BatchStateMachine(batchSize: 3, batchMillis: 50)
    }

    func at(_ milliseconds: Int) -> ContinuousClock.Instant {
        t0 + .milliseconds(milliseconds)
    }

    func vote(_ number: UInt64) -> Vote {
        Vote(id: VoteID(high: number, low: number), pollID: "p1", participantID: "a", acceptedAtMillis: 1_795_352_400_000)
    }

    @Test func aBatchWaitsForItsFirstDeliveryWithTheIdlePoll() {
        #expect(machine().start() == .waitForDelivery(until: nil))
    }

    @Test func nothingDeliveredInTheIdlePollEndsTheBatchWithNothing() {
        var machine = machine()
        #expect(machine.waitTimedOut(now: at(250)) == .finished)
    }

    @Test func theDeadlineStartsAtTheFirstDeliveryAndIsBatchMillisLong() {
        var machine = machine()
        #expect(machine.delivered(tag: 1, votes: .success([vote(1)]), now: at(100)) == .waitForDelivery(until: at(150)))
        #expect(machine.delivered(tag: 2, votes: .success([vote(2)]), now: at(120)) == .waitForDelivery(until: at(150)))
    }

    @Test func theBatchClosesAtBatchSizeVotes() {
        var machine = machine()
        _ = machine.delivered(tag: 1, votes: .success([vote(1)]), now: at(0))
        _ = machine.delivered(tag: 2, votes: .success([vote(2)]), now: at(1))
        #expect(machine.delivered(tag: 3, votes: .success([vote(3)]), now: at(2)) == .commit([vote(1), vote(2), vote(3)], ackUpTo: 3))
    }

    @Test func aMessageThatOverfillsTheBatchClosesItWithAllItsVotes() {
        var machine = machine()
        _ = machine.delivered(tag: 1, votes: .success([vote(1), vote(2)]), now: at(0))
        #expect(machine.delivered(tag: 2, votes: .success([vote(3), vote(4)]), now: at(1)) == .commit([vote(1), vote(2), vote(3), vote(4)], ackUpTo: 2))
    }

    @Test func theBatchClosesAtTheDeadlineWithWhatArrived() {
        var machine = machine()
        _ = machine.delivered(tag: 1, votes: .success([vote(1)]), now: at(0))
        #expect(machine.waitTimedOut(now: at(50)) == .commit([vote(1)], ackUpTo: 1))
    }

    @Test func aWaitThatEndsBeforeTheDeadlineWaitsAgainUntilTheDeadline() {
        var machine = machine()
        _ = machine.delivered(tag: 1, votes: .success([vote(1)]), now: at(0))
        #expect(machine.waitTimedOut(now: at(49)) == .waitForDelivery(until: at(50)))
    }

    @Test func aDeliveryAtTheDeadlineJoinsTheBatchAndClosesIt() {
        var machine = machine()
        _ = machine.delivered(tag: 1, votes: .success([vote(1)]), now: at(0))
        #expect(machine.delivered(tag: 2, votes: .success([vote(2)]), now: at(50)) == .commit([vote(1), vote(2)], ackUpTo: 2))
    }

    @Test func stopClosesTheBatchWithWhatArrived() {
        var machine = machine()
        _ = machine.delivered(tag: 1, votes: .success([vote(1)]), now: at(0))
        #expect(machine.stopRequested() == .commit([vote(1)], ackUpTo: 1))
    }

    @Test func stopBeforeAnyDeliveryEndsTheBatchWithNothing() {
        var machine = machine()
        #expect(machine.stopRequested() == .finished)
    }

    @Test func anUndecodableMessageIsDeadLetteredAtOnce() {
        var machine = machine()
        _ = machine.delivered(tag: 1, votes: .success([vote(1)]), now: at(0))
        #expect(machine.delivered(tag: 2, votes: .failure(junk), now: at(10)) == .deadLetter(tag: 2, reason: junk))
        #expect(machine.deadLettered() == .waitForDelivery(until: at(50)))
    }

    @Test func anUndecodableMessageIsNotPartOfTheBatch() {
        var machine = machine()
        _ = machine.delivered(tag: 1, votes: .success([vote(1)]), now: at(0))
        _ = machine.delivered(tag: 2, votes: .failure(junk), now: at(1))
        _ = machine.deadLettered()
        _ = machine.delivered(tag: 3, votes: .success([vote(3)]), now: at(2))
        #expect(machine.waitTimedOut(now: at(50)) == .commit([vote(1), vote(3)], ackUpTo: 3))
    }

    @Test func undecodableMessagesDoNotCountTowardsTheBatchSize() {
        var machine = machine()
        _ = machine.delivered(tag: 1, votes: .success([vote(1)]), now: at(0))
        for tag: UInt64 in 2...3 {
            _ = machine.delivered(tag: tag, votes: .failure(junk), now: at(1))
            #expect(machine.deadLettered() == .waitForDelivery(until: at(50)))
        }
        #expect(machine.delivered(tag: 4, votes: .success([vote(4)]), now: at(2)) == .waitForDelivery(until: at(50)))
    }

    @Test func theAckGoesUpToTheLastDecodableDelivery() {
        var machine = machine()
        _ = machine.delivered(tag: 1, votes: .success([vote(1)]), now: at(0))
        _ = machine.delivered(tag: 2, votes: .failure(junk), now: at(1))
        _ = machine.deadLettered()
        #expect(machine.waitTimedOut(now: at(50)) == .commit([vote(1)], ackUpTo: 1))
    }

    @Test func anUndecodableFirstMessageStartsTheDeadline() {
        var machine = machine()
        _ = machine.delivered(tag: 1, votes: .failure(junk), now: at(10))
        #expect(machine.deadLettered() == .waitForDelivery(until: at(60)))
    }

    @Test func aBatchWithNoDecodableDeliveryCommitsNothingAndAcknowledgesNothing() {
        var machine = machine()
        _ = machine.delivered(tag: 1, votes: .failure(junk), now: at(0))
        _ = machine.deadLettered()
        #expect(machine.waitTimedOut(now: at(50)) == .finished)
    }

    @Test func theAckIsSentOnlyAfterTheCommitSucceeded() {
        var machine = machine()
        _ = machine.delivered(tag: 1, votes: .success([vote(1)]), now: at(0))
        _ = machine.delivered(tag: 2, votes: .success([vote(2)]), now: at(1))
        #expect(machine.waitTimedOut(now: at(50)) == .commit([vote(1), vote(2)], ackUpTo: 2))
        #expect(machine.committed() == .acknowledge(upTo: 2))
    }

    @Test func aFailedCommitAcknowledgesNothing() {
        var machine = machine()
        _ = machine.delivered(tag: 1, votes: .success([vote(1)]), now: at(0))
        _ = machine.waitTimedOut(now: at(50))
        #expect(machine.commitFailed() == .finished)
    }

    @Test func theBatchIsOverOnceAcknowledged() {
        var machine = machine()
        _ = machine.delivered(tag: 1, votes: .success([vote(1)]), now: at(0))
        _ = machine.waitTimedOut(now: at(50))
        _ = machine.committed()
        #expect(machine.acknowledged() == .finished)
    }
}
