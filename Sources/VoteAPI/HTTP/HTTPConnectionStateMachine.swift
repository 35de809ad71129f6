import NIOCore
import NIOHTTP1

/// The rules of one HTTP/1.1 connection, without I/O: what NIO's decoder delivers, what the
/// channel asks and when answers finish go in as events; what to do comes out as an action
/// for `APIHandler` to carry out. Time comes in as an argument; the machine never reads a clock.
///
/// - Bodies are limited: a `Content-Length` over the limit, or a chunked body that grows over
///   it, makes the request a 413.
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
        case complete(HTTPRequestHead, body: ByteBuffer?, keepAlive: Bool, started: ContinuousClock.Instant)
        /// Its body is over the limit: answered 413, then the connection closes.
        case tooLarge(HTTPRequestHead, started: ContinuousClock.Instant)
        /// A head the API will not serve (see `HeadRefusal`): answered with its error, then
        /// the connection closes.
        case refused(HTTPRequestHead, HeadRefusal, started: ContinuousClock.Instant)
        /// Not HTTP/1.1: answered 400, then the connection closes.
        case malformed(started: ContinuousClock.Instant)
    }

    /// Why a head is refused before its body is read.
    enum HeadRefusal: Equatable {
        /// More header fields or bytes than allowed: 431.
        case headersTooLarge
        /// HTTP/1.1 without exactly one Host: 400.
        case missingHost
        /// A transfer coding other than plain `chunked`: 501.
        case unsupportedTransferEncoding
    }

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
        var started: ContinuousClock.Instant
    }

    private enum State {
        /// Framing requests.
        case open(Queue, receiving: Receiving?)
        /// The last request is queued: input is ignored; the queue is answered, then the
        /// connection closes.
        case closing(Queue)
        /// Nothing more is answered: the last answer is out, the channel failed or went away.
        case closed
        /// Only inside an event, so that the buffers in the state stay uniquely referenced
        /// while they change (no copy on write).
        case modifying
    }

    let maxBodyBytes: Int
    private var state: State

    /// A connection whose bodies may have `maxBodyBytes`, and which stops reading while
    /// `maxWaitingRequests` wait behind the one being answered.
    init(maxBodyBytes: Int, maxWaitingRequests: Int = 16) {
        self.maxBodyBytes = maxBodyBytes
        state = .open(Queue(maxWaiting: maxWaitingRequests), receiving: nil)
    }

    // MARK: Events from the decoder

    /// A request's head arrived, at `now`; `refusal` when the handler found it unservable.
    mutating func headReceived(_ head: HTTPRequestHead, contentLength: Int?, keepAlive: Bool, refusal: HeadRefusal? = nil, now: ContinuousClock.Instant) -> Action {
        switch state {
        case .open(var queue, _):
            if let refusal {
                state = .modifying
                return enqueue(.refused(head, refusal, started: now), into: &queue, last: true)
            }
            if let contentLength, contentLength > maxBodyBytes {
                state = .modifying
                return enqueue(.tooLarge(head, started: now), into: &queue, last: true)
            }
            state = .open(queue, receiving: Receiving(head: head, body: nil, keepAlive: keepAlive, started: now))
            return .none
        case .closing, .closed:
            return .none
        case .modifying:
            preconditionFailure("an event arrived while another was handled")
        }
    }

    /// A piece of the body arrived.
    mutating func bodyReceived(_ chunk: ByteBuffer) -> Action {
        switch state {
        case .open(var queue, .some(var receiving)):
            state = .modifying
            if (receiving.body?.readableBytes ?? 0) + chunk.readableBytes > maxBodyBytes {
                return enqueue(.tooLarge(receiving.head, started: receiving.started), into: &queue, last: true)
            }
            if receiving.body == nil {
                receiving.body = chunk
            } else {
                receiving.body?.writeImmutableBuffer(chunk)
            }
            state = .open(queue, receiving: receiving)
            return .none
        case .open(_, nil), .closing, .closed:
            return .none
        case .modifying:
            preconditionFailure("an event arrived while another was handled")
        }
    }

    /// The request ended.
    mutating func endReceived() -> Action {
        switch state {
        case .open(var queue, .some(let receiving)):
            state = .modifying
            let request = Request.complete(receiving.head, body: receiving.body, keepAlive: receiving.keepAlive, started: receiving.started)
            return enqueue(request, into: &queue, last: !receiving.keepAlive)
        case .open(_, nil), .closing, .closed:
            return .none
        case .modifying:
            preconditionFailure("an event arrived while another was handled")
        }
    }

    /// The decoder could not parse the input (an `HTTPParserError`), at `now`.
    mutating func parseErrorCaught(now: ContinuousClock.Instant) -> Action {
        switch state {
        case .open(var queue, _):
            state = .modifying
            return enqueue(.malformed(started: now), into: &queue, last: true)
        case .closing, .closed:
            return .none
        case .modifying:
            preconditionFailure("an event arrived while another was handled")
        }
    }

    // MARK: Events from the handler and the channel

    /// The answer to the request of the last `.answer` is written.
    mutating func answerFinished() -> Action {
        switch state {
        case .open, .closing:
            return changeQueue { queue in
                queue.answering = false
                return queue.next()
            }
        case .closed:
            return .none
        case .modifying:
            preconditionFailure("an event arrived while another was handled")
        }
    }

    /// The channel asks to read more.
    mutating func readRequested() -> Action {
        switch state {
        case .open(let queue, _), .closing(let queue):
            guard queue.waiting.count >= queue.maxWaiting else { return .read }
            return changeQueue { queue in
                queue.readHeld = true
                return .none
            }
        case .closed:
            return .read
        case .modifying:
            preconditionFailure("an event arrived while another was handled")
        }
    }

    /// The channel failed with an error other than a parse error.
    mutating func errorCaught() -> Action {
        state = .closed
        return .close
    }

    /// The server is shutting down (`ChannelShouldQuiesceEvent`): an idle connection closes
    /// now; a busy one answers what it holds — the request still arriving included — with
    /// its last answer saying `Connection: close`, and closes after it.
    mutating func quiesceRequested() -> Action {
        switch state {
        case .open(var queue, let receiving):
            guard receiving != nil || queue.answering || !queue.waiting.isEmpty else {
                state = .closed
                return .close
            }
            state = .modifying
            queue.closesWhenDone = true
            if var receiving {
                receiving.keepAlive = false
                state = .open(queue, receiving: receiving)
                return .none
            }
            if case .complete(let head, let body, _, let started)? = queue.waiting.last {
                queue.waiting[queue.waiting.index(before: queue.waiting.endIndex)] = .complete(head, body: body, keepAlive: false, started: started)
            }
            state = .closing(queue)
            return .none
        case .closing:
            return changeQueue { queue in
                queue.closesWhenDone = true
                return .none
            }
        case .closed:
            return .none
        case .modifying:
            preconditionFailure("an event arrived while another was handled")
        }
    }

    /// Whether nothing is being received, answered or waiting: the connection is idle
    /// between requests (its keep-alive timeout runs).
    var isIdle: Bool {
        if case .open(let queue, nil) = state { return !queue.answering && queue.waiting.isEmpty }
        return false
    }

    /// The channel is gone.
    mutating func channelInactive() -> Action {
        state = .closed
        return .none
    }

    // MARK: Queueing

    /// Queues a request, the connection's last one if `last`; the state must be `.modifying`.
    private mutating func enqueue(_ request: Request, into queue: inout Queue, last: Bool) -> Action {
        queue.waiting.append(request)
        let action = queue.next()
        state = last ? .closing(queue) : .open(queue, receiving: nil)
        return action
    }

    /// Changes the queue of an open or closing connection in place (the state is `.modifying`
    /// meanwhile, so the queue's buffer is not copied on write).
    private mutating func changeQueue(_ change: (inout Queue) -> Action) -> Action {
        switch state {
        case .open(var queue, let receiving):
            state = .modifying
            let action = change(&queue)
            state = .open(queue, receiving: receiving)
            return action
        case .closing(var queue):
            state = .modifying
            let action = change(&queue)
            if queue.answering || !queue.waiting.isEmpty {
                state = .closing(queue)
                return action
            }
            // Nothing being answered and nothing waiting: the last answer is out.
            state = .closed
            return queue.closesWhenDone ? .close : action
        case .closed, .modifying:
            preconditionFailure("only an open or closing connection has a queue")
        }
    }
}
