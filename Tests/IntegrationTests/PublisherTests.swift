import Foundation
import Testing
import NIOCore
import NIOPosix
import RabbitMQ
import ServiceSupport
import Synchronization
@testable import VoteAPI
import VoteShared

extension RealBrokerSuites {
    @Suite("Publisher on a real RabbitMQ")
    struct PublisherTests {
        /// Stopping (SIGTERM) while votes sit in the publisher's mailbox — it lingers 50 ms
        /// between messages here — answers every one of them: each vote's future completes,
        /// confirmed ones are in the queue, the rest fail with `unavailable` (answered 503).
        @Test func stoppingAnswersEveryVoteItWasGiven() async throws {
            let url = try #require(IntegrationEnvironment.amqpURL.flatMap(AMQPURL.init))
            let queue = "paredao.test.publisher-stop.\(UInt32.random(in: 0...UInt32.max))"
            let publisher = VotePublisher(settings: .init(
                urls: [url], queue: queue, deadLetterQueue: queue + ".dead", quorum: true, maxQueued: 100_000,
                machine: .init(maxVotesPerMessage: 64, maxInFlight: 2048, confirmTimeout: .seconds(5), linger: .milliseconds(50), lingerAboveRate: 0)
            ))
            let loop = MultiThreadedEventLoopGroup.singleton.next()
            let running = Task { await ThreadService(publisher, threadName: "amqp-publisher-test").run() }
            try await waitUntil("the publisher is connected", timeout: .seconds(10)) { publisher.isConnected }

            func vote() -> Vote {
                Vote(id: .random(), pollID: "paredao-test", participantID: "aline", acceptedAtMillis: Timestamp.nowMillis())
            }
            // Confirmed votes until the publisher's rate window closes and it lingers.
            try await waitUntil("the publisher lingers", timeout: .seconds(10), every: .milliseconds(10)) {
                let ticket = PromiseTicket(vote(), eventLoop: loop)
                try await loop.submit { publisher.publish(ticket) }.get()
                try await ticket.settled.futureResult.get()
                return publisher.isLingering
            }

            let votes = (0..<2_000).map { _ in vote() }
            let outcomes = Mutex<[VoteID: Result<Void, PublishError>]>([:])
            let tickets = votes.map { PromiseTicket($0, eventLoop: loop) }
            for ticket in tickets {
                ticket.settled.futureResult.whenComplete { result in
                    outcomes.withLock { $0[ticket.vote.id] = result.mapError { $0 as? PublishError ?? .rejected } }
                }
            }
            try await loop.submit { for ticket in tickets { publisher.publish(ticket) } }.get()
            let stopStarted = ContinuousClock.now
            publisher.requestStop()
            await running.value
            #expect(ContinuousClock.now - stopStarted < .seconds(5), "the publisher thread ends within 5 s of the stop")

            try await waitUntil("every vote is answered", timeout: .seconds(10)) { outcomes.withLock { $0.count } == votes.count }
            let answered = outcomes.withLock { $0 }
            let confirmed = Set(answered.filter { (try? $0.value.get()) != nil }.keys)
            let failures = answered.values.compactMap { result -> PublishError? in
                if case .failure(let error) = result { return error }
                return nil
            }
            #expect(failures.allSatisfy { $0 == .unavailable }, "votes cut off by the stop are answered 503 unavailable")
            #expect(!failures.isEmpty, "votes were still waiting in the mailbox when the publisher stopped")

            // Every vote the publisher confirmed is in the queue.
            let consumer = try AMQPConnection(url: url)
            try consumer.setPrefetch(1000)
            try consumer.startConsuming(queue)
            var queued = Set<VoteID>()
            while let delivery = try consumer.nextDelivery(timeout: .seconds(2)) {
                for vote in try VoteMessage.decode(delivery.body) { queued.insert(vote.id) }
            }
            #expect(confirmed.isSubset(of: queued), "\(confirmed.subtracting(queued).count) confirmed votes are missing from the queue")
        }
    }
}

/// A publisher ticket that completes a promise with the vote's fate.
final class PromiseTicket: PublishTicket {
    let vote: Vote
    let eventLoop: any EventLoop
    let settled: EventLoopPromise<Void>

    init(_ vote: Vote, eventLoop: any EventLoop) {
        self.vote = vote
        self.eventLoop = eventLoop
        settled = eventLoop.makePromise()
    }

    func settle(_ result: Result<Void, PublishError>) {
        eventLoop.preconditionInEventLoop()
        settled.completeWith(result.mapError { $0 })
    }
}
