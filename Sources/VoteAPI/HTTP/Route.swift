import NIOHTTP1

/// The API's routes; `rawValue` is the template used in metrics and logs.
enum Route: String, CaseIterable {
    case votes = "/api/v1/votes"
    case challenges = "/api/v1/challenges"
    case sessions = "/api/v1/sessions"
    case totals = "/api/v1/totals"
    case total = "/total"
    case poll = "/api/v1/poll"
    case healthz = "/healthz"
    case readyz = "/readyz"
    case unmatched

    /// The route for a request target, its query string ignored. Strict: a path either is
    /// a route, spelled exactly, or is unmatched (404) — no trailing-slash, double-slash,
    /// case or percent-encoded aliases, which would slip past limits set per location.
    init(uri: String) {
        if let exact = Route(rawValue: uri), exact != .unmatched {
            self = exact
            return
        }
        guard let query = uri.utf8.firstIndex(of: UInt8(ascii: "?")), let route = Route(rawValue: String(uri[..<query])), route != .unmatched else {
            self = .unmatched
            return
        }
        self = route
    }

    /// The methods the route answers.
    var methods: [HTTPMethod] {
        switch self {
        case .votes, .challenges, .sessions: [.POST]
        case .totals, .total, .poll, .healthz, .readyz: [.GET, .HEAD]
        case .unmatched: []
        }
    }
}
