import Metrics
import NIOHTTP1
import Synchronization

/// The API's metrics, with handles cached so the hot path does not go through the factory.
final class APIMetrics: Sendable {
    private struct RequestKey: Hashable {
        var route: String
        var method: String
        var status: UInt
    }

    private struct LatencyKey: Hashable {
        var route: String
        var method: String
    }

    private let requests = Mutex<[RequestKey: Counter]>([:])
    private let latencies = Mutex<[LatencyKey: Metrics.Timer]>([:])
    private let rejections = Mutex<[String: Counter]>([:])
    private let sessionRejections = Mutex<[String: Counter]>([:])
    private let accepted = Counter(label: "paredao_votes_accepted_total")
    private let acceptedRecently = Atomic<Int>(0)
    private let rejectedRecently = Atomic<Int>(0)

    /// A finished request's counter (by route, method and status) and latency timer.
    struct RequestHandles {
        let counter: Counter
        let timer: Metrics.Timer

        func record(nanoseconds: Int64) {
            counter.increment()
            timer.recordNanoseconds(nanoseconds)
        }
    }

    /// The handles for one kind of request; callers on the hot path keep them.
    func requestHandles(route: Route, method: HTTPMethod, status: UInt) -> RequestHandles {
        let routeLabel = route == .unmatched ? "unmatched" : route.rawValue
        let requestKey = RequestKey(route: routeLabel, method: method.rawValue, status: status)
        let counter = requests.withLock { cache in
            if let counter = cache[requestKey] { return counter }
            let counter = Counter(label: "paredao_http_requests_total", dimensions: [("route", routeLabel), ("method", method.rawValue), ("status", String(status))])
            cache[requestKey] = counter
            return counter
        }
        let latencyKey = LatencyKey(route: routeLabel, method: method.rawValue)
        let timer = latencies.withLock { cache in
            if let timer = cache[latencyKey] { return timer }
            let timer = Metrics.Timer(label: "paredao_http_request_duration_seconds", dimensions: [("route", routeLabel), ("method", method.rawValue)])
            cache[latencyKey] = timer
            return timer
        }
        return RequestHandles(counter: counter, timer: timer)
    }

    func voteAccepted() {
        accepted.increment()
        acceptedRecently.add(1, ordering: .relaxed)
    }

    /// Counts a refused vote under `reason` (token, rate, budget, participant, broker, invalid).
    func voteRejected(_ reason: String) {
        rejectedRecently.add(1, ordering: .relaxed)
        Self.counter(in: rejections, label: "paredao_votes_rejected_total", dimension: "reason", value: reason).increment()
    }

    /// Counts a refused session creation under its reason code.
    func sessionRejected(_ reason: String) {
        Self.counter(in: sessionRejections, label: "paredao_sessions_rejected_total", dimension: "reason", value: reason).increment()
    }

    /// Votes accepted and rejected since the last call (for the periodic summary log line).
    func takeRecentCounts() -> (accepted: Int, rejected: Int) {
        (acceptedRecently.exchange(0, ordering: .relaxed), rejectedRecently.exchange(0, ordering: .relaxed))
    }

    private static func counter(in cache: borrowing Mutex<[String: Counter]>, label: String, dimension: String, value: String) -> Counter {
        cache.withLock { cache in
            if let counter = cache[value] { return counter }
            let counter = Counter(label: label, dimensions: [(dimension, value)])
            cache[value] = counter
            return counter
        }
    }
}
