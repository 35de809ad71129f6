import Logging
import NIOCore
import NIOHTTP1
import VoteShared

/// The vote path's shared state and the route table: each route's logic lives in the
/// extension of its concern (`Sessions/`, `Votes/`), the broker and the store behind the
/// ``VotePublishing`` and ``TotalsReading`` seams.
final class APIApplication: Sendable {
    let configuration: APIConfiguration
    let poll: Poll
    let keyring: TokenKeyring
    let publisher: any VotePublishing
    let totals: any TotalsReading
    let limiter: SessionLimiter
    let spentChallenges: SpentChallenges
    let governor: DifficultyGovernor
    /// Challenges per client network, and sessions per client network.
    let challengeLimiter: NetworkLimiter
    let sessionLimiter: NetworkLimiter
    let metrics = APIMetrics()
    let trustedProxies: Set<String>
    let connectionLimits: ConnectionLimits
    private let pollJSON: [UInt8]

    init(configuration: APIConfiguration, poll: Poll, keyring: TokenKeyring, publisher: any VotePublishing, totals: any TotalsReading) {
        self.configuration = configuration
        self.poll = poll
        self.keyring = keyring
        self.publisher = publisher
        self.totals = totals
        limiter = SessionLimiter(ratePerSecond: configuration.voteRatePerSecond, burst: configuration.voteBurst, maxSessions: configuration.maxTrackedSessions)
        spentChallenges = SpentChallenges(capacity: configuration.maxTrackedSessions)
        governor = DifficultyGovernor(base: configuration.baseDifficulty, cap: configuration.maxDifficulty)
        challengeLimiter = NetworkLimiter(ratePerSecond: configuration.networkSessionRate, burst: configuration.networkSessionBurst, maxNetworks: configuration.maxTrackedSessions)
        sessionLimiter = NetworkLimiter(ratePerSecond: configuration.networkSessionRate, burst: configuration.networkSessionBurst, maxNetworks: configuration.maxTrackedSessions)
        trustedProxies = Set(configuration.trustedProxies)
        connectionLimits = configuration.connectionLimits
        pollJSON = Self.render(poll)
    }

    /// Answers one request.
    func handle(_ request: APIRequest, on eventLoop: any EventLoop) -> APIAnswer {
        let route = request.route
        guard route != .unmatched else { return .now(APIResponse(error: .notFound(request.uri))) }
        guard route.methods.contains(request.method) else { return .now(APIResponse(error: .methodNotAllowed(route.methods))) }
        switch route {
        case .healthz:
            return .now(APIResponse(status: .ok, body: Array(#"{"status":"ok"}"#.utf8)))
        case .readyz:
            return .later(readiness(on: eventLoop))
        case .poll:
            return .now(APIResponse(status: .ok, body: pollJSON))
        case .totals, .total:
            return .later(totals.snapshot(on: eventLoop).map { APIResponse(status: .ok, body: $0.json) }
                .flatMapErrorThrowing { _ in APIResponse(error: APIError(status: .serviceUnavailable, code: "store_unavailable", message: "Totals cannot be read right now.", retryAfterSeconds: 1)) })
        case .challenges:
            return .now(issueChallenge(request))
        case .sessions:
            return .now(createSession(request))
        case .votes:
            return castVote(request, on: eventLoop)
        case .unmatched:
            return .now(APIResponse(error: .notFound(request.uri)))
        }
    }

    private func readiness(on eventLoop: any EventLoop) -> EventLoopFuture<APIResponse> {
        let brokerUp = publisher.isConnected
        let brokerBlocked = publisher.isBlocked
        return totals.storeProblem(on: eventLoop).map { storeProblem in
            var reasons: [String] = []
            if !brokerUp { reasons.append("broker connection is down") }
            if brokerBlocked { reasons.append("broker is blocked (memory or disk alarm)") }
            if let storeProblem { reasons.append("store is not readable: \(storeProblem)") }
            guard reasons.isEmpty else { return APIResponse(error: .notReady(reasons)) }
            return APIResponse(status: .ok, body: Array(#"{"status":"ready","broker":"up","store":"readable"}"#.utf8))
        }
    }

    private static func render(_ poll: Poll) -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("poll")
        writer.beginObject()
        writer.field("id", poll.id)
        writer.field("title", poll.title)
        writer.key("participants")
        writer.beginArray()
        for participant in poll.participants {
            writer.beginObject()
            writer.field("id", participant.id)
            writer.field("name", participant.name)
            writer.field("photoUrl", participant.photoUrl)
            writer.endObject()
        }
        writer.endArray()
        writer.endObject()
        writer.endObject()
        return writer.bytes
    }
}
