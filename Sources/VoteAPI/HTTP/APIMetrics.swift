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
    private let adminRefusals: [AdminGate.Refusal: Counter] = Dictionary(uniqueKeysWithValues: AdminGate.Refusal.allCases.map {
        ($0, Counter(label: "paredao_admin_refused_total", dimensions: [("reason", $0.rawValue)]))
    })
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
    ///
    /// Every label comes from a closed set, whatever a client sends: the route is a template
    /// (or `unmatched`), the method one the route serves (else `other`), the status one the
    /// API writes. At most `Route.allCases.count × 4` method labels, so the series are bounded
    /// (``maxRequestSeries``).
    func requestHandles(route: Route, method: HTTPMethod, status: UInt) -> RequestHandles {
        let routeLabel = route == .unmatched ? "unmatched" : route.rawValue
        let methodLabel = Self.methodLabel(route: route, method: method)
        let statusLabel = Self.statusLabel(status)
        let requestKey = RequestKey(route: routeLabel, method: methodLabel, status: statusLabel)
        let counter = requests.withLock { cache in
            if let counter = cache[requestKey] { return counter }
            let counter = Counter(label: "paredao_http_requests_total", dimensions: [("route", routeLabel), ("method", methodLabel), ("status", statusLabel == 0 ? "other" : String(statusLabel))])
            cache[requestKey] = counter
            return counter
        }
        let latencyKey = LatencyKey(route: routeLabel, method: methodLabel)
        let timer = latencies.withLock { cache in
            if let timer = cache[latencyKey] { return timer }
            let timer = Metrics.Timer(label: "paredao_http_request_duration_seconds", dimensions: [("route", routeLabel), ("method", methodLabel)])
            cache[latencyKey] = timer
            return timer
        }
        return RequestHandles(counter: counter, timer: timer)
    }

    /// The method as a label: one the route serves, else `other` (an unknown route serves none).
    static func methodLabel(route: Route, method: HTTPMethod) -> String {
        route.allows(method) ? method.rawValue : "other"
    }

    /// The status for its label: one the API writes, else 0 (labelled `other`; not reached
    /// today, since statuses come from the API's own answers, not from a client).
    static func statusLabel(_ status: UInt) -> UInt {
        knownStatuses.contains(status) ? status : 0
    }

    /// Every status the API answers with.
    static let knownStatuses: Set<UInt> = [100, 200, 201, 202, 204, 400, 401, 403, 404, 405, 408, 409, 411, 413, 415, 422, 429, 431, 500, 501, 503, 505]

    /// The most `paredao_http_requests_total` series there can be: every route with each
    /// method it serves and `other`, times every status.
    static var maxRequestSeries: Int {
        Route.allCases.reduce(0) { sum, route in sum + route.methods.count + 1 } * knownStatuses.count
    }

    /// How many request counter and latency series exist now (each at most
    /// ``maxRequestSeries``).
    var requestSeriesCount: (counters: Int, timers: Int) {
        (requests.withLock { $0.count }, latencies.withLock { $0.count })
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

    /// Counts a refused admin attempt (no credential, a wrong one, or over the failure budget).
    func adminRefused(_ refusal: AdminGate.Refusal) {
        adminRefusals[refusal]?.increment()
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
