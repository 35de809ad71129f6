import HTTPFraming
import NIOCore
import NIOHTTP1

/// The rules of one HTTP/1.1 connection, without I/O: what NIO's decoder delivers, what the
/// channel asks and when answers finish go in as events; what to do comes out as an action
/// for `APIHandler` to carry out. Time comes in as an argument; the machine never reads a clock.
/// (Times are `NIODeadline`s, whose layout is known at compile time: the standard library's
/// `ContinuousClock.Instant` is resilient, so every request, action and copy of the machine
/// holding one went through runtime value witnesses.)
///
/// - Bodies are limited (`maxBodyBytes`, or the limit the handler gives a head, such as the
///   admin routes' larger one): a `Content-Length` over the limit, or a chunked body that
///   grows over it, makes the request a 413.
/// - A 413, a malformed request (400) or a request that does not keep the connection alive is
///   the last one: everything after it on the connection, its own remaining body included, is
///   ignored, and the connection closes after its answer.
/// - Requests are answered one at a time and in order: pipelined ones wait their turn.
/// - Reading pauses while `maxWaitingRequests` wait, and resumes below that.
/// - Once the channel is gone, nothing more is answered.
struct HTTPConnectionStateMachine {
    /// A request to answer, framed.
    enum Request: Equatable {
        /// A whole request for the application; with `keepAlive` false the connection closes
        /// after its answer.
        case complete(HTTPRequestHead, body: ByteBuffer?, keepAlive: Bool, started: NIODeadline)
        /// Its body is over the limit: answered 413, then the connection closes.
        case tooLarge(HTTPRequestHead, started: NIODeadline)
        /// A head the API will not serve (see `HeadRefusal`): answered with its error, then
        /// the connection closes.
        case refused(HTTPRequestHead, HeadRefusal, started: NIODeadline)
        /// Not HTTP/1.1: answered 400, then the connection closes.
        case malformed(started: NIODeadline)
    }

    /// Why a head is refused before its body is read (found by ``HTTPRequestParser``).
    typealias HeadRefusal = HTTPFraming.HeadRefusal

    /// What the handler does after an event.
    enum Action: Equatable {
        case none
        /// Pass a read on to the channel: now, or the one held back while too many waited.
        case read
        /// Answer this request, the next in order, and report `answerFinished()` once its
        /// answer is written.
        case answer(Request)
        /// Pass the read held back on to the channel (fewer wait now), then answer this request.
        case readAndAnswer(Request)
        /// Close the channel.
        case close
    }

    /// Requests framed but not answered yet.
    private struct Queue {
        /// How many may wait before reading pauses.
        let maxWaiting: Int
        /// Those waiting their turn (not the one being answered).
        var waiting = CircularBuffer<Request>(initialCapacity: 4)
        /// A request is being answered (its answer may wait for the broker).
        var answering = false
        /// A `read` held back while too many requests wait.
        var readHeld = false
        /// The server is shutting down: close once the last answer is out.
        var closesWhenDone = false

        /// Adds a request that ended; the action for it if it can be answered now. A request
        /// arriving while nothing is answered or waiting is answered at once, without an
        /// append and a pop (each copying it).
        mutating func add(_ request: Request) -> Action {
            guard answering || !waiting.isEmpty || readHeld else {
                answering = true
                return .answer(request)
            }
            waiting.append(request)
            return next()
        }

        /// The next request to answer if none is being answered, and the held read once
        /// fewer than `maxWaiting` wait.
        mutating func next() -> Action {
            let next = answering ? nil : waiting.popFirst()
            if next != nil { answering = true }
            let resumesReading = readHeld && waiting.count < maxWaiting
            if resumesReading { readHeld = false }
            if let next { return resumesReading ? .readAndAnswer(next) : .answer(next) }
            return resumesReading ? .read : .none
        }
    }

    /// The request whose body is arriving.
    private struct Receiving {
        var head: HTTPRequestHead
        var body: ByteBuffer?
        var keepAlive: Bool
        var started: NIODeadline
        var bodyLimit: Int
    }

    /// Where the connection is; the queue and the request being received are fields of their
    /// own, changed in place (an enum carrying them was copied and destroyed — retains,
    /// releases and value-witness calls — at every event: 7 % of the API's CPU at the max).
    private enum Phase {
        /// Framing requests.
        case open
        /// The last request is queued: input is ignored; the queue is answered, then the
        /// connection closes.
        case closing
        /// Nothing more is answered: the last answer is out, the channel failed or went away.
        case closed
    }

    let maxBodyBytes: Int
    private var phase = Phase.open
    private var queue: Queue
    /// The request whose body is arriving (only while open).
    private var receiving: Receiving?

    /// A connection whose bodies may have `maxBodyBytes`, and which stops reading while
    /// `maxWaitingRequests` wait behind the one being answered.
    init(maxBodyBytes: Int, maxWaitingRequests: Int = 16) {
        self.maxBodyBytes = maxBodyBytes
        queue = Queue(maxWaiting: maxWaitingRequests)
    }

    // MARK: Events from the decoder

    /// A request's head arrived, at `now`; `refusal` when the handler found it unservable;
    /// `bodyLimit` when its body may have other than `maxBodyBytes`.
    mutating func headReceived(_ head: HTTPRequestHead, contentLength: Int?, keepAlive: Bool, refusal: HeadRefusal? = nil, bodyLimit: Int? = nil, now: NIODeadline) -> Action {
        guard phase == .open else { return .none }
        if let refusal {
            return enqueue(.refused(head, refusal, started: now), last: true)
        }
        let bodyLimit = bodyLimit ?? maxBodyBytes
        if let contentLength, contentLength > bodyLimit {
            return enqueue(.tooLarge(head, started: now), last: true)
        }
        receiving = Receiving(head: head, body: nil, keepAlive: keepAlive, started: now, bodyLimit: bodyLimit)
        return .none
    }

    /// A piece of the body arrived.
    mutating func bodyReceived(_ chunk: ByteBuffer) -> Action {
        guard phase == .open, receiving != nil else { return .none }
        if (receiving!.body?.readableBytes ?? 0) + chunk.readableBytes > receiving!.bodyLimit {
            let over = receiving!
            return enqueue(.tooLarge(over.head, started: over.started), last: true)
        }
        if receiving!.body == nil {
            receiving!.body = chunk
        } else {
            receiving!.body!.writeImmutableBuffer(chunk)
        }
        return .none
    }

    /// The request ended.
    mutating func endReceived() -> Action {
        guard phase == .open, let ended = receiving.take() else { return .none }
        return enqueue(.complete(ended.head, body: ended.body, keepAlive: ended.keepAlive, started: ended.started), last: !ended.keepAlive)
    }

    /// The decoder could not parse the input (an `HTTPParserError`), at `now`.
    mutating func parseErrorCaught(now: NIODeadline) -> Action {
        guard phase == .open else { return .none }
        return enqueue(.malformed(started: now), last: true)
    }

    // MARK: Events from the handler and the channel

    /// The answer to the request of the last `.answer` is written.
    mutating func answerFinished() -> Action {
        guard phase != .closed else { return .none }
        queue.answering = false
        return queueChanged(queue.next())
    }

    /// The channel asks to read more.
    mutating func readRequested() -> Action {
        guard phase != .closed, queue.waiting.count >= queue.maxWaiting else { return .read }
        queue.readHeld = true
        return queueChanged(.none)
    }

    /// The channel failed with an error other than a parse error.
    mutating func errorCaught() -> Action {
        close()
        return .close
    }

    /// The server is shutting down (`ChannelShouldQuiesceEvent`): an idle connection closes
    /// now; a busy one answers what it holds — the request still arriving included — with
    /// its last answer saying `Connection: close`, and closes after it.
    mutating func quiesceRequested() -> Action {
        switch phase {
        case .open:
            guard receiving != nil || queue.answering || !queue.waiting.isEmpty else {
                close()
                return .close
            }
            queue.closesWhenDone = true
            if receiving != nil {
                receiving!.keepAlive = false
                return .none
            }
            if case .complete(let head, let body, _, let started)? = queue.waiting.last {
                queue.waiting[queue.waiting.index(before: queue.waiting.endIndex)] = .complete(head, body: body, keepAlive: false, started: started)
            }
            phase = .closing
            return .none
        case .closing:
            queue.closesWhenDone = true
            return queueChanged(.none)
        case .closed:
            return .none
        }
    }

    /// Whether nothing is being received, answered or waiting: the connection is idle
    /// between requests (its keep-alive timeout runs).
    var isIdle: Bool {
        // Inlined: called after every answer, and as a call it copied the whole machine.
        @inline(__always) get {
            guard case .open = phase, case .none = receiving else { return false }
            return !queue.answering && queue.waiting.isEmpty
        }
    }

    /// Whether a request received is still to be answered (being answered or waiting).
    var hasAnswersDue: Bool {
        guard phase != .closed else { return false }
        return queue.answering || !queue.waiting.isEmpty
    }

    /// The channel is gone.
    mutating func channelInactive() -> Action {
        close()
        return .none
    }

    // MARK: Queueing

    /// Queues a request, the connection's last one if `last`.
    private mutating func enqueue(_ request: Request, last: Bool) -> Action {
        receiving = nil
        if last { phase = .closing }
        return queue.add(request)
    }

    /// After a change of the queue of an open or closing connection: a closing one with
    /// nothing being answered and nothing waiting has its last answer out.
    private mutating func queueChanged(_ action: Action) -> Action {
        guard phase == .closing, !queue.answering, queue.waiting.isEmpty else { return action }
        let closes = queue.closesWhenDone
        close()
        return closes ? .close : action
    }

    private mutating func close() {
        phase = .closed
        receiving = nil
        queue.waiting.removeAll()
    }
}
