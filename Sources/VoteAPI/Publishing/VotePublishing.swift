import NIOCore
import VoteShared

/// Why a vote could not be handed to RabbitMQ; every case is answered 503.
enum PublishError: Error, Equatable {
    /// No broker connection (down, or reconnecting).
    case unavailable
    /// The broker did not confirm in time; the vote may still be counted, and a retry with
    /// the same vote id is deduplicated.
    case timedOut
    /// The broker refused the message (nack).
    case rejected
    /// The publisher's queue is full.
    case overloaded
    /// No queue took the message (mandatory publish returned): the vote queue is missing.
    case unroutable
    /// The broker blocks publishing (a memory or disk alarm).
    case blocked
}

/// Where the vote path hands an accepted vote: the future succeeds once the vote is
/// durably queued (for RabbitMQ: confirmed), and fails with a ``PublishError`` otherwise.
protocol VotePublishing: Sendable {
    /// Whether votes can be published now (for `/readyz`).
    var isConnected: Bool { get }

    /// Whether the broker blocks publishing (a memory or disk alarm), for `/readyz`.
    var isBlocked: Bool { get }

    /// Queues `vote`; the future completes on `eventLoop`.
    func publish(_ vote: Vote, on eventLoop: any EventLoop) -> EventLoopFuture<Void>
}
