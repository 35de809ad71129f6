import Histogram
import NIOCore
import NIOHTTP1
import NIOPosix

/// What one open-loop run is asked to do.
struct OpenLoopPlan: Sendable {
    var host: String
    var port: Int
    var path: String
    var rate: Int
    var duration: Duration
    var warmup: Duration
    var connections: Int
    var maxConnections: Int
    var tokens: [String]
    var participants: [String]
}

/// What one run measured. Latencies in microseconds.
struct OpenLoopResult: Sendable {
    /// From the request's scheduled time to its answer's end: what a voter waits when
    /// requests keep arriving at the planned rate whatever the answers do.
    var fromSchedule: Histogram<UInt64>
    /// From the request's actual send to its answer's end (wrk's kind of figure).
    var service: Histogram<UInt64>
    var scheduled: Int
    var completed: Int
    var statuses: [UInt: Int]
    var errors: Int
    var unanswered: Int
    var connectionsOpened: Int
    var measuredSeconds: Double
    /// 202s over the whole run, warm-up included (to compare with the API's own count).
    var acceptedOverall: Int
}

/// An open-loop HTTP/1.1 load: request *k* is due at `start + k / rate` and leaves on the
/// first idle keep-alive connection at that moment — or, with none idle, on a new
/// connection (up to `maxConnections`), else as soon as one frees up. Its latency counts
/// from when it was due, so a stall shows in every request that was due during it instead
/// of delaying the next send (wrk's coordinated omission).
///
/// Everything runs on one event loop, so the state below is confined to it.
final class OpenLoopRun {
    private let plan: OpenLoopPlan
    private let loop: any EventLoop
    private var idle: [Connection] = []
    private var open = 0
    private var opening = 0
    private var backlog: [NIODeadline] = []
    private var backlogStart = 0
    private var next = 0
    private var start = NIODeadline.now()
    private var measureFrom = NIODeadline.now()
    private var end = NIODeadline.now()
    private var result: OpenLoopResult
    private var requests: [(head: HTTPRequestHead, body: ByteBuffer)] = []
    private var requestIndex = 0
    private var allSent = false
    private var outstanding = 0
    private var isFinished = false
    private let finished: EventLoopPromise<OpenLoopResult>

    init(plan: OpenLoopPlan, loop: any EventLoop) {
        self.plan = plan
        self.loop = loop
        let highest: UInt64 = 120_000_000
        result = OpenLoopResult(
            fromSchedule: Histogram(highestTrackableValue: highest, numberOfSignificantValueDigits: .three),
            service: Histogram(highestTrackableValue: highest, numberOfSignificantValueDigits: .three),
            scheduled: 0, completed: 0, statuses: [:], errors: 0, unanswered: 0, connectionsOpened: 0, measuredSeconds: 0,
            acceptedOverall: 0
        )
        finished = loop.makePromise()
        let allocator = ByteBufferAllocator()
        for (index, token) in plan.tokens.enumerated() {
            let participant = plan.participants[index % plan.participants.count]
            let body = allocator.buffer(string: "{\"participant\":\"\(participant)\"}")
            var headers = HTTPHeaders()
            headers.add(name: "Host", value: "\(plan.host):\(plan.port)")
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "Content-Length", value: String(body.readableBytes))
            headers.add(name: "Authorization", value: "Bearer \(token)")
            requests.append((HTTPRequestHead(version: .http1_1, method: .POST, uri: plan.path, headers: headers), body))
        }
    }

    /// Opens the first connections, then sends on schedule until the duration is over and
    /// waits (up to 10 s) for the answers still due.
    func run() -> EventLoopFuture<OpenLoopResult> {
        loop.execute {
            for _ in 0..<self.plan.connections { self.connect() }
            // Give the first connections a moment, then start the clock.
            self.loop.scheduleTask(in: .milliseconds(300)) {
                self.start = .now()
                self.measureFrom = self.start + TimeAmount(self.plan.warmup)
                self.end = self.measureFrom + TimeAmount(self.plan.duration)
                self.tick()
            }
        }
        return finished.futureResult
    }

    private func due(_ index: Int) -> NIODeadline {
        start + .nanoseconds(Int64(Double(index) * 1e9 / Double(plan.rate)))
    }

    /// Sends every request due by now, then sleeps until the next one is due.
    private func tick() {
        let now = NIODeadline.now()
        while due(next) <= now, due(next) < end {
            dispatch(scheduledAt: due(next))
            next += 1
        }
        if due(next) < end {
            loop.scheduleTask(deadline: due(next)) { self.tick() }
        } else {
            allSent = true
            loop.scheduleTask(in: .seconds(10)) { self.finish() }
            finishIfAnswered()
        }
    }

    private func dispatch(scheduledAt scheduled: NIODeadline) {
        if scheduled >= measureFrom { result.scheduled += 1 }
        if let connection = idle.popLast() {
            send(on: connection, scheduledAt: scheduled)
            return
        }
        backlog.append(scheduled)
        if open + opening < plan.maxConnections {
            connect()
        }
    }

    private func finishIfAnswered() {
        if allSent, outstanding == 0, backlogStart == backlog.count { finish() }
    }

    private func send(on connection: Connection, scheduledAt scheduled: NIODeadline) {
        outstanding += 1
        let request = requests[requestIndex]
        requestIndex = (requestIndex + 1) % requests.count
        connection.send(head: request.head, body: request.body, scheduledAt: scheduled)
    }

    private func connect() {
        opening += 1
        let bootstrap = ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                }
            }
        bootstrap.connect(host: plan.host, port: plan.port).whenComplete { outcome in
            self.opening -= 1
            switch outcome {
            case .success(let channel):
                self.open += 1
                self.result.connectionsOpened += 1
                let connection = Connection(channel: channel, run: self)
                do {
                    try channel.pipeline.syncOperations.addHandler(connection)
                } catch {
                    channel.close(promise: nil)
                    return
                }
                self.becameIdle(connection)
            case .failure:
                self.result.errors += 1
            }
        }
    }

    fileprivate func answered(_ connection: Connection, status: UInt, scheduledAt scheduled: NIODeadline, sentAt sent: NIODeadline) {
        let now = NIODeadline.now()
        outstanding -= 1
        if status == 202 { result.acceptedOverall += 1 }
        if scheduled >= measureFrom && scheduled < end {
            result.completed += 1
            result.statuses[status, default: 0] += 1
            result.fromSchedule.record(Self.micros(now - scheduled))
            result.service.record(Self.micros(now - sent))
        }
        if connection.isOpen { becameIdle(connection) }
        finishIfAnswered()
    }

    fileprivate func failed(_ connection: Connection, scheduledAt scheduled: NIODeadline?) {
        open -= 1
        idle.removeAll { $0 === connection }
        if let scheduled {
            outstanding -= 1
            if scheduled >= measureFrom, scheduled < end { result.errors += 1 }
        }
        // Replace the lost connection while requests are still due.
        if due(next) < end, open + opening < plan.connections { connect() }
        finishIfAnswered()
    }

    private func becameIdle(_ connection: Connection) {
        if backlogStart < backlog.count {
            let scheduled = backlog[backlogStart]
            backlogStart += 1
            if backlogStart > 4096, backlogStart * 2 > backlog.count {
                backlog.removeFirst(backlogStart)
                backlogStart = 0
            }
            send(on: connection, scheduledAt: scheduled)
        } else {
            idle.append(connection)
        }
    }

    private func finish() {
        guard !isFinished else { return }
        isFinished = true
        let measured = Double((min(NIODeadline.now(), end) - measureFrom).nanoseconds) / 1e9
        result.measuredSeconds = measured
        result.unanswered = result.scheduled - result.completed - result.errors
        let connections = idle
        idle.removeAll()
        for connection in connections { connection.close() }
        finished.succeed(result)
    }

    private static func micros(_ amount: TimeAmount) -> UInt64 {
        UInt64(max(0, amount.nanoseconds / 1000))
    }
}

/// One keep-alive connection: one request at a time.
private final class Connection: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let channel: any Channel
    private unowned let run: OpenLoopRun
    private var inFlight: (scheduled: NIODeadline, sent: NIODeadline)?
    private var status: UInt = 0
    private(set) var isOpen = true

    init(channel: any Channel, run: OpenLoopRun) {
        self.channel = channel
        self.run = run
    }

    func send(head: HTTPRequestHead, body: ByteBuffer, scheduledAt scheduled: NIODeadline) {
        inFlight = (scheduled, .now())
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
    }

    func close() {
        isOpen = false
        channel.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = head.status.code
            if head.headers["connection"].contains(where: { $0.lowercased() == "close" }) { isOpen = false }
        case .body:
            break
        case .end:
            guard let request = inFlight else { return }
            inFlight = nil
            run.answered(self, status: status, scheduledAt: request.scheduled, sentAt: request.sent)
            if !isOpen { context.close(promise: nil) }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        isOpen = false
        let lost = inFlight?.scheduled
        inFlight = nil
        run.failed(self, scheduledAt: lost)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
