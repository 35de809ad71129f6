import NIOHTTP1
import VoteShared

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
    case adminPolls = "/api/v1/admin/polls"
    case adminPoll = "/api/v1/admin/polls/{id}"
    case adminPollOpen = "/api/v1/admin/polls/{id}/open"
    case adminPollClose = "/api/v1/admin/polls/{id}/close"
    case adminAudit = "/api/v1/admin/audit"
    case unmatched

    static let adminPrefix = "/api/v1/admin/"
    static let adminPollsPrefix = "/api/v1/admin/polls/"

    /// Whether the template has a `{id}` segment (never matched literally). A switch, not a
    /// search of `rawValue`: every request asks (Foundation's `contains` was 1 % of the API).
    var isTemplate: Bool {
        switch self {
        case .adminPoll, .adminPollOpen, .adminPollClose: true
        default: false
        }
    }

    /// The route for a request target, its query string ignored. Strict: a path either is
    /// a route, spelled exactly, or is unmatched (404) — no trailing-slash, double-slash,
    /// case or percent-encoded aliases, which would slip past limits set per location. A
    /// `{id}` segment is a poll id (`[a-z0-9_-]{1,64}`) and nothing else.
    init(uri: String) {
        let path = uri.utf8.firstIndex(of: UInt8(ascii: "?")).map { String(uri[..<$0]) } ?? uri
        if let exact = Route(rawValue: path), exact != .unmatched, !exact.isTemplate {
            self = exact
            return
        }
        self = Self.admin(path: path) ?? .unmatched
    }

    private static func admin(path: String) -> Route? {
        guard path.hasPrefix(adminPollsPrefix) else { return nil }
        let segments = path.dropFirst(adminPollsPrefix.count).split(separator: "/", omittingEmptySubsequences: false)
        guard let id = segments.first, Poll.isValidID(id) else { return nil }
        switch segments.count {
        case 1: return .adminPoll
        case 2 where segments[1] == "open": return .adminPollOpen
        case 2 where segments[1] == "close": return .adminPollClose
        default: return nil
        }
    }

    /// The poll id of a `{id}` route's request target.
    static func pollID(in uri: String) -> String? {
        let path = uri.utf8.firstIndex(of: UInt8(ascii: "?")).map { String(uri[..<$0]) } ?? uri
        guard path.hasPrefix(adminPollsPrefix), let id = path.dropFirst(adminPollsPrefix.count).split(separator: "/").first, Poll.isValidID(id) else { return nil }
        return String(id)
    }

    /// A request path of the route (the template with a sample id).
    var samplePath: String { rawValue.replacingOccurrences(of: "{id}", with: "p1") }

    /// Whether the route belongs to the admin API (credential, strict rate, audit log).
    var isAdmin: Bool { rawValue.hasPrefix(Self.adminPrefix) }

    /// Whether the route answers `method` (no array per request, unlike `methods`).
    func allows(_ method: HTTPMethod) -> Bool {
        switch self {
        case .votes, .challenges, .sessions, .adminPollOpen, .adminPollClose: method == .POST
        case .totals, .total, .poll, .healthz, .readyz, .adminAudit: method == .GET || method == .HEAD
        case .adminPolls: method == .GET || method == .HEAD || method == .POST
        case .adminPoll: method == .GET || method == .HEAD || method == .PUT
        case .unmatched: false
        }
    }

    /// The methods the route answers (for `Allow`).
    var methods: [HTTPMethod] {
        switch self {
        case .votes, .challenges, .sessions, .adminPollOpen, .adminPollClose: [.POST]
        case .totals, .total, .poll, .healthz, .readyz, .adminAudit: [.GET, .HEAD]
        case .adminPolls: [.GET, .HEAD, .POST]
        case .adminPoll: [.GET, .HEAD, .PUT]
        case .unmatched: []
        }
    }
}

extension APIRequest {
    /// The value of query parameter `name` (the first one), without percent-decoding: the
    /// only parameters read are poll ids and small numbers, which need none.
    func queryValue(_ name: String) -> Substring? {
        guard let mark = uri.firstIndex(of: "?") else { return nil }
        for pair in uri[uri.index(after: mark)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if parts.first == Substring(name) { return parts.count == 2 ? parts[1] : "" }
        }
        return nil
    }
}
