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

/// One vote handed to a ``VotePublishing``, and what to do once its fate is known: the
/// object the publisher keeps for the vote until its confirm (one per vote, so the vote
/// path allocates no promise, future or callback of its own).
protocol PublishTicket: AnyObject, Sendable {
    var vote: Vote { get }
    /// Where `settle` runs.
    var eventLoop: any EventLoop { get }
    /// Called once, on `eventLoop`: success once the vote is durably queued (for RabbitMQ:
    /// confirmed), else why not.
    func settle(_ result: Result<Void, PublishError>)
}

/// Where the vote path hands an accepted vote.
protocol VotePublishing: Sendable {
    /// Whether votes can be published now (for `/readyz`).
    var isConnected: Bool { get }

    /// Whether the broker blocks publishing (a memory or disk alarm), for `/readyz`.
    var isBlocked: Bool { get }

    /// Queues the ticket's vote. Called on the ticket's event loop; a vote that cannot be
    /// queued (no broker, blocked, overloaded) is settled at once, before this returns.
    func publish(_ ticket: any PublishTicket)
}
