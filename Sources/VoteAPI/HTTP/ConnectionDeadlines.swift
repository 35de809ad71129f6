import Metrics
import NIOCore

/// How long one connection on the API's port may take for each part of a request —
/// `idle` between requests on a keep-alive connection, `header` from a request's first
/// byte to the end of its headers (slowloris), `body` from there to the end of the body —
/// and how many header fields, and bytes of header names and values, a request may have.
struct ConnectionLimits: Sendable {
    var idle, header, body: Duration
    var maxHeaderFields, maxHeaderBytes: Int
}

/// The rules of one connection's deadlines, without I/O: `APIHandler` reports what arrives
/// and asks, once a second, whether a deadline has passed.
///
/// What is being received and what is being answered are tracked apart, so a deadline holds
/// whatever the order of events: a request head that arrives behind a request still being
/// answered (a vote waiting for its confirm) has its own header or body deadline. A receive
/// deadline that passes while answers are still due waits for them (they are bounded by the
/// broker's and the store's own timeouts), so the `408` never overtakes an earlier answer.
struct ConnectionDeadlines {
    /// The part of the next request being received.
    enum Receiving: Equatable {
        /// No byte of a request beyond those already whole.
        case nothing
        /// Some bytes of a head, the first at `since`.
        case head(since: NIODeadline)
        /// A head is in (at `since`); its body is arriving.
        case body(since: NIODeadline)
    }

    /// What the handler does after a check.
    enum Verdict: Equatable {
        case none
        /// Idle past the keep-alive timeout: close.
        case closeIdle
        /// A request too slow to arrive: answer `408`, then close (`reason` is the metric's).
        case timeOut(reason: String)
    }

    let limits: ConnectionLimits
    private(set) var receiving = Receiving.nothing
    /// When the connection last had nothing to receive, answer or send.
    private(set) var idleSince: NIODeadline

    init(limits: ConnectionLimits, openedAt: NIODeadline) {
        self.limits = limits
        idleSince = openedAt
    }

    /// Bytes of a head are waiting for the rest of it (left over after parsing a read).
    mutating func headPending(at now: NIODeadline) {
        if receiving == .nothing { receiving = .head(since: now) }
    }

    /// A request's headers are in: its body deadline starts.
    mutating func headReceived(at now: NIODeadline) {
        receiving = .body(since: now)
    }

    /// A whole request is in.
    mutating func requestReceived() {
        receiving = .nothing
    }

    /// Nothing is received, answered or waiting: the keep-alive timeout starts.
    mutating func becameIdle(at now: NIODeadline) {
        idleSince = now
    }

    /// Whether a deadline passed at `now`; `answersDue` while requests received are not
    /// answered yet.
    func check(now: NIODeadline, answersDue: Bool) -> Verdict {
        switch receiving {
        case .head(let since) where now - since > TimeAmount(limits.header):
            return answersDue ? .none : .timeOut(reason: "header_timeout")
        case .body(let since) where now - since > TimeAmount(limits.body):
            return answersDue ? .none : .timeOut(reason: "body_timeout")
        case .nothing where !answersDue && now - idleSince > TimeAmount(limits.idle):
            return .closeIdle
        default:
            return .none
        }
    }

    /// Counts a connection the API closed on its own, by why (a closed set of reasons:
    /// `idle_timeout`, `header_timeout`, `body_timeout`, `headers_too_large`, `too_many_connections`).
    static func closed(reason: String) {
        Counter(label: "paredao_http_connections_closed_total", dimensions: [("reason", reason)]).increment()
    }
}
