import Testing
@testable import VoteAPI
import VoteShared

/// Every rule of the publisher thread, as events in and actions out: no broker, no clock.
@Suite("Publisher state machine")
struct PublisherStateMachineTests {
    typealias Machine = PublisherStateMachine<Int>

    let t0 = ContinuousClock.now
    let settings = Machine.Settings(
        maxVotesPerMessage: 2, maxInFlight: 2, confirmTimeout: .seconds(5),
        linger: .milliseconds(3), lingerAboveRate: 4000
    )

    func jobs(_ tickets: ClosedRange<Int>) -> [Machine.Job] {
        tickets.map { Machine.Job(vote: Vote(id: .random(), pollID: "p", participantID: "a", acceptedAtMillis: 0), ticket: $0) }
    }

    /// A machine that is connected, at `t0`.
    func connectedMachine(_ settings: Machine.Settings? = nil) -> Machine {
        var machine = Machine(settings: settings ?? self.settings, now: t0)
        #expect(machine.tick(now: t0) == .connect(broker: 0))
        #expect(machine.connected(now: t0) == .none)
        return machine
    }

    /// One-vote messages: vote 1 sent at `t0` (tag 1), vote 2 at `t0 + 1 s` (tag 2); confirms time out after 5 s.
    func machineWithVotesOneAndTwoSentAtZeroAndOneSecond() -> Machine {
        var machine = connectedMachine(Machine.Settings(maxVotesPerMessage: 1, maxInFlight: 10, confirmTimeout: .seconds(5)))
        _ = machine.jobsArrived(jobs(1...1), now: t0)
        _ = machine.tick(now: t0)
        _ = machine.jobsArrived(jobs(2...2), now: t0 + .seconds(1))
        _ = machine.tick(now: t0 + .seconds(1))
        return machine
    }

    func sentTickets(_ action: Machine.Action) -> [Int]? {
        guard case .send(let message) = action else { return nil }
        return message.votes.map(\.ticket)
    }

    func sentTag(_ action: Machine.Action) -> UInt64? {
        guard case .send(let message) = action else { return nil }
        return message.tag
    }

    // MARK: Connecting

    @Test func itConnectsFirstAndWaitsForVotesOnceConnected() {
        var machine = Machine(settings: settings, now: t0)
        #expect(machine.tick(now: t0) == .connect(broker: 0))
        #expect(!machine.isConnected)
        #expect(machine.connected(now: t0) == .none)
        #expect(machine.isConnected)
        #expect(machine.tick(now: t0) == .wait(until: t0 + .milliseconds(500), mailbox: true))
    }

    @Test func aFailedConnectRetriesAfterABackoffThatDoublesUpToTheMaximum() {
        var machine = Machine(settings: settings, now: t0)
        var now = t0
        var waits: [Duration] = []
        for _ in 0..<8 {
            #expect(machine.tick(now: now) == .connect(broker: 0))
            guard case .reconnect(let after, let failing, .unavailable) = machine.connectFailed(now: now) else {
                Issue.record("a failed connect schedules a reconnect")
                return
            }
            #expect(failing.isEmpty)
            waits.append(after)
            #expect(machine.tick(now: now) == .wait(until: now + after, mailbox: true), "no connect before the backoff ends")
            now += after
        }
        #expect(waits == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .milliseconds(1600), .milliseconds(3200), .seconds(5), .seconds(5)])
        #expect(machine.tick(now: now) == .connect(broker: 0))
        #expect(machine.connected(now: now) == .none)
        _ = machine.connectionLost(now: now)
        #expect(machine.tick(now: now) == .connect(broker: 0))
        guard case .reconnect(let after, _, _) = machine.connectFailed(now: now) else { return }
        #expect(after == .milliseconds(100), "a successful connect resets the backoff")
    }

    @Test func votesThatArriveWithoutAConnectionFailUnavailable() {
        var machine = Machine(settings: settings, now: t0)
        #expect(machine.jobsArrived(jobs(1...3), now: t0) == .fail([1, 2, 3], .unavailable))
        #expect(machine.jobsArrived([], now: t0) == .none)
    }

    // MARK: Sending

    @Test func votesGoOutInMessagesOfAtMostMaxVotesWithTagsFromOne() {
        var machine = connectedMachine()
        #expect(machine.jobsArrived(jobs(1...3), now: t0) == .none)
        let first = machine.tick(now: t0)
        #expect(sentTag(first) == 1)
        #expect(sentTickets(first) == [1, 2])
        let second = machine.tick(now: t0)
        #expect(sentTag(second) == 2)
        #expect(sentTickets(second) == [3])
        #expect(machine.messagesInFlight == 2)
    }

    @Test func aFullConfirmWindowWaitsForConfirmsWithoutTakingMoreVotes() {
        var machine = connectedMachine()
        _ = machine.jobsArrived(jobs(1...5), now: t0)
        _ = machine.tick(now: t0)
        _ = machine.tick(now: t0)
        #expect(machine.tick(now: t0) == .wait(until: t0 + .milliseconds(500), mailbox: false), "window of 2 full: wait for confirms (at most 500 ms at a time)")
        #expect(machine.confirmed(tag: 1, multiple: false, now: t0) == .succeed(.init(tickets: [1, 2], sentAt: [t0])))
        #expect(sentTickets(machine.tick(now: t0)) == [5], "a confirm opens the window")
    }

    @Test func votesAreAskedForAgainOnceTheyAreAllSent() {
        var machine = connectedMachine()
        _ = machine.jobsArrived(jobs(1...1), now: t0)
        _ = machine.tick(now: t0)
        #expect(machine.tick(now: t0) == .wait(until: t0 + .milliseconds(500), mailbox: true))
    }

    // MARK: Confirms

    @Test func anAckSettlesOnlyItsMessage() {
        var machine = connectedMachine()
        _ = machine.jobsArrived(jobs(1...4), now: t0)
        _ = machine.tick(now: t0)
        _ = machine.tick(now: t0 + .milliseconds(1))
        #expect(machine.confirmed(tag: 2, multiple: false, now: t0) == .succeed(.init(tickets: [3, 4], sentAt: [t0 + .milliseconds(1)])))
        #expect(machine.messagesInFlight == 1)
        #expect(machine.confirmed(tag: 2, multiple: false, now: t0) == .none, "a repeated ack settles nothing")
    }

    @Test func aMultipleAckSettlesEveryMessageUpToItsTag() {
        var machine = connectedMachine(Machine.Settings(maxVotesPerMessage: 1, maxInFlight: 10, confirmTimeout: .seconds(5)))
        _ = machine.jobsArrived(jobs(1...4), now: t0)
        for _ in 1...4 { _ = machine.tick(now: t0) }
        #expect(machine.confirmed(tag: 1, multiple: false, now: t0) == .succeed(.init(tickets: [1], sentAt: [t0])))
        #expect(machine.confirmed(tag: 3, multiple: true, now: t0) == .succeed(.init(tickets: [2, 3], sentAt: [t0, t0])))
        #expect(machine.messagesInFlight == 1)
    }

    @Test func aNackFailsItsVotesRejected() {
        var machine = connectedMachine(Machine.Settings(maxVotesPerMessage: 1, maxInFlight: 10, confirmTimeout: .seconds(5)))
        _ = machine.jobsArrived(jobs(1...3), now: t0)
        for _ in 1...3 { _ = machine.tick(now: t0) }
        #expect(machine.nacked(tag: 2, multiple: true, now: t0) == .fail([1, 2], .rejected))
        #expect(machine.confirmed(tag: 3, multiple: false, now: t0) == .succeed(.init(tickets: [3], sentAt: [t0])))
    }

    @Test func aConfirmTimeoutFailsEveryUnconfirmedVoteTimedOutAndReopensTheConnection() {
        var machine = machineWithVotesOneAndTwoSentAtZeroAndOneSecond()
        #expect(machine.tick(now: t0 + .milliseconds(4900)) == .wait(until: t0 + .seconds(5), mailbox: true))
        #expect(machine.tick(now: t0 + .seconds(5)) == .reconnect(after: .zero, failing: [1, 2], error: .timedOut))
        #expect(!machine.isConnected)
        #expect(machine.confirmed(tag: 1, multiple: false, now: t0 + .seconds(5)) == .none, "a late ack does not settle a timed-out vote twice")
        #expect(machine.tick(now: t0 + .seconds(5)) == .connect(broker: 0), "the connection is re-opened at once")
    }

    // MARK: Returns (mandatory publishes)

    @Test func aReturnedMessageFailsUnroutableAndItsAckSettlesNothing() {
        var machine = connectedMachine(Machine.Settings(maxVotesPerMessage: 2, maxInFlight: 10, confirmTimeout: .seconds(5)))
        _ = machine.jobsArrived(jobs(1...6), now: t0)
        for _ in 1...3 { _ = machine.tick(now: t0) }
        #expect(machine.returned(tag: 2, now: t0) == .fail([3, 4], .unroutable))
        #expect(machine.confirmed(tag: 2, multiple: false, now: t0) == .none, "the return came first: its ack settles nothing")
        #expect(machine.confirmed(tag: 3, multiple: true, now: t0) == .succeed(.init(tickets: [1, 2, 5, 6], sentAt: [t0, t0])))
        #expect(machine.messagesInFlight == 0)
        #expect(machine.returned(tag: 9, now: t0) == .none, "a return of no message in flight changes nothing")
    }

    // MARK: Blocked by the broker

    @Test func whileBlockedVotesFailAtOnceAndNothingIsSent() {
        var machine = connectedMachine()
        _ = machine.jobsArrived(jobs(1...3), now: t0)
        #expect(sentTickets(machine.tick(now: t0)) == [1, 2])
        #expect(machine.blockedByBroker(now: t0) == .fail([3], .blocked), "votes not yet sent fail at once")
        #expect(machine.isBlocked)
        #expect(machine.jobsArrived(jobs(4...4), now: t0) == .fail([4], .blocked))
        #expect(machine.tick(now: t0) == .wait(until: t0 + .milliseconds(500), mailbox: true), "nothing to send: wait for the confirm or the unblock")
        #expect(machine.confirmed(tag: 1, multiple: false, now: t0) == .succeed(.init(tickets: [1, 2], sentAt: [t0])), "messages in flight still get their confirms")
        #expect(machine.unblockedByBroker(now: t0) == .none)
        #expect(!machine.isBlocked)
        _ = machine.jobsArrived(jobs(5...5), now: t0)
        #expect(sentTickets(machine.tick(now: t0)) == [5])
    }

    @Test func whileBlockedAConfirmTimeoutFailsOnlyTheOverdueMessagesAndKeepsTheConnection() {
        var machine = machineWithVotesOneAndTwoSentAtZeroAndOneSecond()
        _ = machine.blockedByBroker(now: t0 + .seconds(2))
        #expect(machine.tick(now: t0 + .seconds(5)) == .fail([1], .timedOut))
        #expect(machine.isConnected, "a blocked connection is not a broken one")
        #expect(machine.tick(now: t0 + .seconds(6)) == .fail([2], .timedOut))
    }

    @Test func aNewConnectionIsNotBlocked() {
        var machine = connectedMachine()
        _ = machine.blockedByBroker(now: t0)
        _ = machine.connectionLost(now: t0)
        #expect(machine.tick(now: t0) == .connect(broker: 0))
        #expect(machine.connected(now: t0) == .none)
        #expect(!machine.isBlocked, "the broker says blocked again if the alarm still holds")
    }

    // MARK: Heartbeats

    @Test func noWaitWhileConnectedIsLongerThanHalfTheHeartbeat() {
        var machine = connectedMachine(Machine.Settings(maxVotesPerMessage: 1, maxInFlight: 1, confirmTimeout: .seconds(5), heartbeat: .milliseconds(400)))
        #expect(machine.tick(now: t0) == .wait(until: t0 + .milliseconds(200), mailbox: true), "idle")
        _ = machine.jobsArrived(jobs(1...2), now: t0)
        _ = machine.tick(now: t0)
        #expect(machine.tick(now: t0) == .wait(until: t0 + .milliseconds(200), mailbox: false), "a full window waits for confirms, but not past half the heartbeat")
        var slow = connectedMachine(Machine.Settings(maxVotesPerMessage: 1, maxInFlight: 1, confirmTimeout: .seconds(5), heartbeat: .seconds(30)))
        #expect(slow.tick(now: t0) == .wait(until: t0 + .milliseconds(500), mailbox: true), "and never longer than 500 ms")
    }

    // MARK: Linger

    @Test func aboveTheRateThresholdTheMailboxIsReadOncePerLinger() {
        var machine = connectedMachine(Machine.Settings(maxVotesPerMessage: 512, maxInFlight: 100, confirmTimeout: .seconds(5), linger: .milliseconds(3), lingerAboveRate: 4000))
        // 300 votes in 50 ms = 6,000 votes/s: over the threshold.
        _ = machine.jobsArrived(jobs(1...300), now: t0)
        _ = machine.tick(now: t0)
        _ = machine.jobsArrived([], now: t0 + .milliseconds(50))
        #expect(machine.isLingering)
        let sent = t0 + .milliseconds(50)
        _ = machine.jobsArrived(jobs(301...310), now: sent)
        #expect(sentTickets(machine.tick(now: sent)) == Array(301...310))
        #expect(machine.tick(now: sent + .milliseconds(1)) == .wait(until: sent + .milliseconds(3), mailbox: false), "votes gather in the mailbox")
        #expect(machine.tick(now: sent + .milliseconds(3)) == .wait(until: sent + .milliseconds(503), mailbox: true), "the linger is over: read the mailbox")
    }

    @Test func belowTheRateThresholdVotesGoOutAtOnce() {
        var machine = connectedMachine(Machine.Settings(maxVotesPerMessage: 512, maxInFlight: 100, confirmTimeout: .seconds(5), linger: .milliseconds(3), lingerAboveRate: 4000))
        // 100 votes in 50 ms = 2,000 votes/s.
        _ = machine.jobsArrived(jobs(1...100), now: t0)
        _ = machine.tick(now: t0)
        _ = machine.jobsArrived(jobs(101...101), now: t0 + .milliseconds(50))
        #expect(!machine.isLingering)
        #expect(sentTickets(machine.tick(now: t0 + .milliseconds(50))) == [101])
        #expect(machine.tick(now: t0 + .milliseconds(50)) == .wait(until: t0 + .milliseconds(550), mailbox: true), "no linger: the mailbox is read at once")
    }

    @Test func lingeringStopsWhenTheRateFalls() {
        var machine = connectedMachine(Machine.Settings(maxVotesPerMessage: 512, maxInFlight: 100, confirmTimeout: .seconds(5), linger: .milliseconds(3), lingerAboveRate: 4000))
        _ = machine.jobsArrived(jobs(1...300), now: t0)
        _ = machine.jobsArrived([], now: t0 + .milliseconds(50))
        #expect(machine.isLingering)
        _ = machine.jobsArrived([], now: t0 + .milliseconds(600))
        #expect(!machine.isLingering)
    }

    @Test func aZeroLingerNeverLingers() {
        var machine = connectedMachine(Machine.Settings(maxVotesPerMessage: 512, maxInFlight: 100, confirmTimeout: .seconds(5), linger: .zero, lingerAboveRate: 0))
        _ = machine.jobsArrived(jobs(1...300), now: t0)
        _ = machine.jobsArrived([], now: t0 + .milliseconds(50))
        #expect(!machine.isLingering)
    }

    // MARK: Losing the connection

    @Test func aLostConnectionFailsEveryVoteInFlightAndUnsentAndReconnectsAtOnce() {
        var machine = connectedMachine()
        _ = machine.jobsArrived(jobs(1...5), now: t0)
        _ = machine.tick(now: t0)
        _ = machine.tick(now: t0)
        #expect(machine.connectionLost(now: t0) == .reconnect(after: .zero, failing: [1, 2, 3, 4, 5], error: .unavailable))
        #expect(!machine.isConnected)
        #expect(machine.connectionLost(now: t0) == .none, "lost once")
        #expect(machine.tick(now: t0) == .connect(broker: 0))
        #expect(machine.connected(now: t0) == .none)
        _ = machine.jobsArrived(jobs(6...6), now: t0)
        #expect(sentTag(machine.tick(now: t0)) == 1, "a new connection numbers its messages from 1 again")
        #expect(machine.confirmed(tag: 1, multiple: false, now: t0) == .succeed(.init(tickets: [6], sentAt: [t0])))
    }

    @Test func aFailedSendIsALostConnection() {
        var machine = connectedMachine()
        _ = machine.jobsArrived(jobs(1...3), now: t0)
        guard case .send(let message) = machine.tick(now: t0) else {
            Issue.record("expected a send")
            return
        }
        #expect(machine.sendFailed(message, now: t0) == .reconnect(after: .zero, failing: [1, 2, 3], error: .unavailable))
    }

    // MARK: Failing over (the nodes of a cluster)

    let cluster = Machine.Settings(maxVotesPerMessage: 1, maxInFlight: 10, confirmTimeout: .seconds(5), brokers: 3)

    @Test func aLostConnectionReconnectsAtOnceToTheNextNodeAndReportsTheFailover() {
        var machine = connectedMachine(cluster)
        _ = machine.jobsArrived(jobs(1...2), now: t0)
        _ = machine.tick(now: t0)
        #expect(machine.connectionLost(now: t0) == .reconnect(after: .zero, failing: [1, 2], error: .unavailable))
        #expect(machine.tick(now: t0) == .connect(broker: 1), "the next node, at once")
        #expect(machine.connected(now: t0) == .failedOver(from: 0, to: 1))
        #expect(machine.isConnected)
        _ = machine.jobsArrived(jobs(3...3), now: t0)
        #expect(sentTag(machine.tick(now: t0)) == 1, "a new connection numbers its messages from 1 again")
    }

    @Test func failedConnectsGoRoundTheNodesWithTheBackoff() {
        var machine = Machine(settings: cluster, now: t0)
        var now = t0
        var brokers: [Int] = []
        var waits: [Duration] = []
        for _ in 0..<4 {
            guard case .connect(let broker) = machine.tick(now: now) else {
                Issue.record("expected a connect")
                return
            }
            brokers.append(broker)
            guard case .reconnect(let after, _, .unavailable) = machine.connectFailed(now: now) else { return }
            waits.append(after)
            #expect(machine.tick(now: now) == .wait(until: now + after, mailbox: true), "no connect before the backoff ends")
            now += after
        }
        #expect(brokers == [0, 1, 2, 0], "round robin")
        #expect(waits == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800)], "the backoff doubles across nodes")
        #expect(machine.tick(now: now) == .connect(broker: 1))
        #expect(machine.connected(now: now) == .failedOver(from: 0, to: 1), "the first connection was expected on the first node")
    }

    @Test func aConnectionThatOpensOnTheNodeOfTheLastOneIsNoFailover() {
        var machine = connectedMachine(cluster)
        _ = machine.connectionLost(now: t0)
        #expect(machine.tick(now: t0) == .connect(broker: 1))
        _ = machine.connectFailed(now: t0)
        #expect(machine.tick(now: t0 + .milliseconds(100)) == .connect(broker: 2))
        _ = machine.connectFailed(now: t0 + .milliseconds(100))
        #expect(machine.tick(now: t0 + .milliseconds(300)) == .connect(broker: 0), "back to the first node")
        #expect(machine.connected(now: t0 + .milliseconds(300)) == .none, "the same node as before")
    }

    @Test func aConfirmTimeOutMovesToTheNextNode() {
        var machine = connectedMachine(cluster)
        _ = machine.jobsArrived(jobs(1...1), now: t0)
        _ = machine.tick(now: t0)
        #expect(machine.tick(now: t0 + .seconds(5)) == .reconnect(after: .zero, failing: [1], error: .timedOut))
        #expect(machine.tick(now: t0 + .seconds(5)) == .connect(broker: 1), "a node that stopped confirming is left")
    }

    @Test func aNackFailsEveryUnconfirmedVoteAndMovesToTheNextNodeAfterTheInitialBackoff() {
        var machine = connectedMachine(cluster)
        _ = machine.jobsArrived(jobs(1...3), now: t0)
        _ = machine.tick(now: t0)
        _ = machine.tick(now: t0)
        #expect(machine.nacked(tag: 1, multiple: false, now: t0) == .reconnect(after: .milliseconds(100), failing: [1, 2, 3], error: .rejected))
        #expect(!machine.isConnected)
        #expect(machine.tick(now: t0) == .wait(until: t0 + .milliseconds(100), mailbox: true))
        #expect(machine.tick(now: t0 + .milliseconds(100)) == .connect(broker: 1))
    }

    @Test func withOneBrokerANackFailsOnlyItsVotesAndTheConnectionStays() {
        var machine = connectedMachine(Machine.Settings(maxVotesPerMessage: 1, maxInFlight: 10, confirmTimeout: .seconds(5)))
        _ = machine.jobsArrived(jobs(1...2), now: t0)
        _ = machine.tick(now: t0)
        _ = machine.tick(now: t0)
        #expect(machine.nacked(tag: 1, multiple: false, now: t0) == .fail([1], .rejected))
        #expect(machine.isConnected)
    }

    @Test func oneBrokerIsAlwaysTheSameAndNeverAFailover() {
        var machine = connectedMachine(Machine.Settings(maxVotesPerMessage: 1, maxInFlight: 10, confirmTimeout: .seconds(5)))
        for _ in 0..<3 {
            _ = machine.connectionLost(now: t0)
            #expect(machine.tick(now: t0) == .connect(broker: 0))
            #expect(machine.connected(now: t0) == .none)
        }
    }

    // MARK: Stopping

    @Test func aStopFailsVotesInFlightAndUnsentThenFinishes() {
        var machine = connectedMachine()
        _ = machine.jobsArrived(jobs(1...5), now: t0)
        _ = machine.tick(now: t0)
        _ = machine.tick(now: t0)
        #expect(machine.confirmed(tag: 1, multiple: false, now: t0) == .succeed(.init(tickets: [1, 2], sentAt: [t0])))
        #expect(machine.stopRequested() == .finish(failing: [3, 4, 5]))
        #expect(machine.tick(now: t0) == .finish(failing: []))
        #expect(machine.jobsArrived(jobs(6...6), now: t0) == .fail([6], .unavailable), "nothing is taken after a stop")
    }

    @Test func aStopWhileDisconnectedFinishesAtOnce() {
        var machine = Machine(settings: settings, now: t0)
        #expect(machine.stopRequested() == .finish(failing: []))
    }
}
