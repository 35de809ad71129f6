import Logging
import NIOCore
import NIOHTTP1
import VoteShared

/// The vote path's shared state and the route table: each route's logic lives in the
/// extension of its concern (`Sessions/`, `Votes/`, `Polls/`, `Admin/`), the broker and the
/// store behind the ``VotePublishing`` and ``TotalsReading`` seams.
final class APIApplication: Sendable {
    let configuration: APIConfiguration
    let polls: PollDirectory
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
    let adminCredentials: AdminCredentials
    /// Admin requests: per credential once authenticated, per network when refused.
    let adminGate: AdminGate

    init(
        configuration: APIConfiguration, polls: PollDirectory, keyring: TokenKeyring, adminCredentials: AdminCredentials,
        publisher: any VotePublishing, totals: any TotalsReading
    ) {
        self.configuration = configuration
        self.polls = polls
        self.adminCredentials = adminCredentials
        self.keyring = keyring
        self.publisher = publisher
        self.totals = totals
        limiter = SessionLimiter(ratePerSecond: configuration.voteRatePerSecond, burst: configuration.voteBurst, maxSessions: configuration.maxTrackedSessions)
        spentChallenges = SpentChallenges(capacity: configuration.maxTrackedSessions)
        governor = DifficultyGovernor(
            base: configuration.baseDifficulty, cap: configuration.maxDifficulty,
            networkWindowMax: DifficultyGovernor.networkWindowMax(ratePerSecond: configuration.networkSessionRate, burst: configuration.networkSessionBurst),
            overallStep: configuration.powOverallStep
        )
        challengeLimiter = NetworkLimiter(ratePerSecond: configuration.networkSessionRate, burst: configuration.networkSessionBurst, maxNetworks: configuration.maxTrackedSessions)
        sessionLimiter = NetworkLimiter(ratePerSecond: configuration.networkSessionRate, burst: configuration.networkSessionBurst, maxNetworks: configuration.maxTrackedSessions)
        trustedProxies = Set(configuration.trustedProxies)
        connectionLimits = configuration.connectionLimits
        adminGate = AdminGate(
            authenticatedRate: configuration.adminRate, authenticatedBurst: configuration.adminBurst,
            failureRate: configuration.adminFailureRate, failureBurst: configuration.adminFailureBurst
        )
    }

    /// Answers one request.
    func handle(_ request: APIRequest, on eventLoop: any EventLoop) -> APIAnswer {
        let route = request.route
        guard route != .unmatched else { return .now(APIResponse(error: .notFound(request.uri))) }
        guard route.allows(request.method) else { return .now(APIResponse(error: .methodNotAllowed(route.methods))) }
        switch route {
        case .healthz:
            return .now(APIResponse(status: .ok, body: Array(#"{"status":"ok"}"#.utf8)))
        case .readyz:
            return .later(readiness(on: eventLoop))
        case .poll:
            return .now(currentPoll())
        case .totals, .total:
            return pollTotals(request, on: eventLoop)
        case .challenges:
            return .now(issueChallenge(request))
        case .sessions:
            return .now(createSession(request))
        case .votes:
            return castVote(request)
        case .adminPolls, .adminPoll, .adminPollOpen, .adminPollClose, .adminAudit:
            return admin(request, on: eventLoop)
        case .unmatched:
            return .now(APIResponse(error: .notFound(request.uri)))
        }
    }

    private func readiness(on eventLoop: any EventLoop) -> EventLoopFuture<APIResponse> {
        let brokerUp = publisher.isConnected
        let brokerBlocked = publisher.isBlocked
        let pollsProblem = polls.hasRead ? polls.storeProblem : (polls.storeProblem ?? "not read yet")
        let totalsProblem = polls.current(atMillis: Timestamp.nowMillis()).map { totals.storeProblem(of: $0, on: eventLoop) } ?? eventLoop.makeSucceededFuture(nil)
        return totalsProblem.map { storeProblem in
            var reasons: [String] = []
            if !brokerUp { reasons.append("broker connection is down") }
            if brokerBlocked { reasons.append("broker is blocked (memory or disk alarm)") }
            if let pollsProblem { reasons.append("polls are not readable: \(pollsProblem)") }
            if let storeProblem { reasons.append("store is not readable: \(storeProblem)") }
            guard reasons.isEmpty else { return APIResponse(error: .notReady(reasons)) }
            let counting = self.totals.counting.map { #","counting":"\#($0.rawValue)""# } ?? ""
            return APIResponse(status: .ok, body: Array(#"{"status":"ready","broker":"up","store":"readable"\#(counting)}"#.utf8))
        }
    }
}
