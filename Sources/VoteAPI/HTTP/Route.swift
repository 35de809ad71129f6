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

    /// The route for a request target (query string ignored).
    init(uri: String) {
        if let exact = Route(rawValue: uri) {
            self = exact
            return
        }
        let path = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? uri
        let trimmed = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        self = Route(rawValue: trimmed) ?? .unmatched
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
