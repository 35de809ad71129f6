import Logging
import Metrics
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import VoteShared

/// A request as the application sees it, after the HTTP layer framed it.
struct APIRequest {
    var method: HTTPMethod
    var uri: String
    var route: Route
    var headers: HTTPHeaders
    var body: ByteBuffer?
    /// The socket peer (before trusting any proxy header).
    var peer: Peer
    var requestID: String
}

/// A connection's peer, worked out once per connection rather than once per request.
struct Peer {
    /// Whether its X-Real-IP / X-Forwarded-For header is believed.
    var isTrustedProxy: Bool
    /// The peer's own network, used when it is not a trusted proxy.
    var network: ClientNetwork?
}

/// An answer: status, JSON body and extra headers.
struct APIResponse {
    var status: HTTPResponseStatus
    var body: [UInt8]
    var headers: [(String, String)] = []

    init(status: HTTPResponseStatus, body: [UInt8], headers: [(String, String)] = []) {
        self.status = status
        self.body = body
        self.headers = headers
    }

    init(error: APIError) {
        status = error.status
        body = error.body()
        if let retry = error.retryAfterSeconds { headers.append(("Retry-After", String(retry))) }
        if !error.allow.isEmpty { headers.append(("Allow", error.allow.map(\.rawValue).joined(separator: ", "))) }
    }
}

/// Either an answer now, or one that comes later: after a store read, or when the broker
/// confirmed a vote (one future per vote, answered by `respond`).
enum APIAnswer {
    case now(APIResponse)
    case later(EventLoopFuture<APIResponse>)
    case afterPublish(EventLoopFuture<Void>, respond: (Result<Void, any Error>) -> APIResponse)
}

/// The vote path's shared services and the logic of every route.
final class APIApplication: Sendable {
    let configuration: APIConfiguration
    let poll: Poll
    let keyring: TokenKeyring
    let publisher: VotePublisher
    let totals: TotalsCache
    let limiter: SessionLimiter
    let spentChallenges: SpentChallenges
    let governor: DifficultyGovernor
    let metrics = APIMetrics()
    private let pollJSON: [UInt8]
    private let trustedProxies: Set<String>
    private let logger = Logger(label: "VoteAPI")

    init(configuration: APIConfiguration, poll: Poll, keyring: TokenKeyring, publisher: VotePublisher, totals: TotalsCache) {
        self.configuration = configuration
        self.poll = poll
        self.keyring = keyring
        self.publisher = publisher
        self.totals = totals
        limiter = SessionLimiter(ratePerSecond: configuration.voteRatePerSecond, burst: configuration.voteBurst, maxSessions: configuration.maxTrackedSessions)
        spentChallenges = SpentChallenges(capacity: configuration.maxTrackedSessions)
        governor = DifficultyGovernor(base: configuration.baseDifficulty, cap: configuration.maxDifficulty)
        trustedProxies = Set(configuration.trustedProxies)
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
        pollJSON = writer.bytes
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

    // MARK: Readiness

    private func readiness(on eventLoop: any EventLoop) -> EventLoopFuture<APIResponse> {
        let brokerUp = publisher.isConnected
        return totals.storeProblem(on: eventLoop).map { storeProblem in
            var reasons: [String] = []
            if !brokerUp { reasons.append("broker connection is down") }
            if let storeProblem { reasons.append("store is not readable: \(storeProblem)") }
            guard reasons.isEmpty else { return APIResponse(error: .notReady(reasons)) }
            return APIResponse(status: .ok, body: Array(#"{"status":"ready","broker":"up","store":"readable"}"#.utf8))
        }
    }

    // MARK: Client address

    /// The client's network: the proxy's header when the peer is a trusted proxy, else the peer.
    func clientNetwork(_ request: APIRequest) -> ClientNetwork? {
        if request.peer.isTrustedProxy {
            if let real = request.headers.first(name: "X-Real-IP"), let network = ClientNetwork(address: real.trimmingSpaces) {
                return network
            }
            if let forwarded = request.headers.first(name: "X-Forwarded-For"),
               let last = forwarded.split(separator: ",").last,
               let network = ClientNetwork(address: last.trimmingSpaces) {
                return network
            }
        }
        return request.peer.network
    }

    /// What the API needs to know of a connection's peer address.
    func peer(address: String?) -> Peer {
        let address = address ?? ""
        return Peer(isTrustedProxy: trustedProxies.contains(address), network: ClientNetwork(address: address))
    }

    // MARK: Challenges and sessions

    private func issueChallenge(_ request: APIRequest) -> APIResponse {
        guard let network = clientNetwork(request) else { return APIResponse(error: .invalidField("client", "Unknown client address.")) }
        let now = Timestamp.nowMillis()
        let difficulty = governor.difficulty(for: network, nowMillis: now)
        let issued = Challenge.issue(keyring: keyring, now: now / 1000, lifetimeSeconds: Int64(configuration.challengeLifetimeSeconds), difficulty: difficulty)
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("challenge", issued.encoded)
        writer.field("difficulty", Int64(difficulty))
        writer.field("algorithm", "SHA-256")
        writer.field("expiresAt", Timestamp.iso8601(millis: issued.challenge.expiresAt * 1000, fractional: false))
        writer.endObject()
        return APIResponse(status: .created, body: writer.bytes)
    }

    private func createSession(_ request: APIRequest) -> APIResponse {
        if let error = checkJSONContentType(request) { return APIResponse(error: error) }
        let fields: FlatJSON.Object
        do {
            fields = try FlatJSON.parseObject(request.body?.readableBytesView ?? ByteBuffer().readableBytesView)
        } catch {
            return APIResponse(error: .invalidJSON(error.description))
        }
        guard case .string(let encoded)? = fields["challenge"] else {
            return APIResponse(error: .invalidField("challenge", "\"challenge\" must be the string from /api/v1/challenges."))
        }
        guard case .number(_, let text)? = fields["counter"], let counter = UInt64(text) else {
            return APIResponse(error: .invalidField("counter", "\"counter\" must be a whole number from 0 to 2^64-1."))
        }
        guard let network = clientNetwork(request) else { return APIResponse(error: .invalidField("client", "Unknown client address.")) }
        let now = Timestamp.nowMillis() / 1000
        let challenge: Challenge
        do {
            challenge = try Challenge.verify(encoded, counter: counter, keyring: keyring, now: now)
        } catch {
            metrics.sessionRejected(error.code)
            return APIResponse(error: .challenge(error))
        }
        switch spentChallenges.spend(nonce: challenge.nonce, expiresAt: challenge.expiresAt, now: now) {
        case .spent:
            metrics.sessionRejected(ChallengeRejection.spent.code)
            return APIResponse(error: .challenge(.spent))
        case .full:
            return APIResponse(error: .challengeStoreFull)
        case .fresh:
            break
        }
        let minted = SessionToken.mint(keyring: keyring, network: network, now: now, lifetimeSeconds: Int64(configuration.sessionLifetimeSeconds), budget: UInt32(configuration.sessionBudget))
        var writer = JSONWriter(capacity: 200)
        writer.beginObject()
        writer.field("token", minted.encoded)
        writer.field("expiresAt", Timestamp.iso8601(millis: minted.token.expiresAt * 1000, fractional: false))
        writer.field("votesRemaining", Int64(minted.token.budget))
        writer.endObject()
        return APIResponse(status: .created, body: writer.bytes)
    }

    // MARK: Votes

    private func castVote(_ request: APIRequest, on eventLoop: any EventLoop) -> APIAnswer {
        let token: SessionToken
        switch authenticate(request) {
        case .success(let verified): token = verified
        case .failure(let error): return reject(error)
        }
        if let error = checkJSONContentType(request) { return reject(error) }
        let fields: FlatJSON.Object
        do {
            fields = try FlatJSON.parseObject(request.body?.readableBytesView ?? ByteBuffer().readableBytesView)
        } catch {
            return reject(.invalidJSON(error.description))
        }
        guard case .string(let participant)? = fields["participant"] else {
            return reject(.invalidField("participant", "\"participant\" must be a participant id string."))
        }
        guard poll.participantIndex(of: participant) != nil else { return reject(.unknownParticipant(participant)) }
        let now = Timestamp.nowMillis()
        let voteID: VoteID
        switch fields["voteId"] {
        case nil, .null?:
            voteID = Self.newVoteID(millis: now)
        case .string(let text)?:
            guard let parsed = VoteID(text) else { return reject(.invalidField("vote_id", "\"voteId\" must be a UUID.")) }
            voteID = parsed
        default:
            return reject(.invalidField("vote_id", "\"voteId\" must be a UUID string."))
        }
        let remaining: UInt32
        switch limiter.admit(token, nowMillis: now) {
        case .allowed(let left): remaining = left
        case .rateLimited(let retryAfter): return reject(.rateLimited(retryAfter: retryAfter))
        case .exhausted: return reject(.sessionExhausted)
        }
        let vote = Vote(id: voteID, pollID: poll.id, participantID: participant, acceptedAtMillis: now)
        return .afterPublish(publisher.publish(vote, on: eventLoop)) { [self] result in
            switch result {
            case .success:
                metrics.voteAccepted()
                return APIResponse(status: .accepted, body: acceptedBody(vote, remaining: remaining))
            case .failure(let error):
                limiter.refund(token)
                let apiError = APIError.publish(error as? PublishError ?? .unavailable)
                metrics.voteRejected(apiError.rejectionReason)
                return APIResponse(error: apiError)
            }
        }
    }

    private func reject(_ error: APIError) -> APIAnswer {
        metrics.voteRejected(error.rejectionReason)
        return .now(APIResponse(error: error))
    }

    private func authenticate(_ request: APIRequest) -> Result<SessionToken, APIError> {
        guard let header = request.headers.first(name: "Authorization") else { return .failure(.token(.missing)) }
        guard header.utf8.count > 7, header.utf8.prefix(7).elementsEqual("bearer ".utf8, by: { $0 | 0x20 == $1 }) else {
            return .failure(.token(.malformed))
        }
        guard let network = clientNetwork(request) else { return .failure(.token(.wrongNetwork)) }
        do {
            return .success(try SessionToken.verify(header.dropFirst(7), keyring: keyring, network: network, now: Timestamp.nowMillis() / 1000))
        } catch {
            return .failure(.token(error))
        }
    }

    private func checkJSONContentType(_ request: APIRequest) -> APIError? {
        guard let type = request.headers.first(name: "Content-Type") else {
            return (request.body?.readableBytes ?? 0) == 0 ? nil : .unsupportedMediaType
        }
        if type == "application/json" { return nil }
        let mediaType = type.split(separator: ";", maxSplits: 1).first?.trimmingSpaces.lowercased()
        return mediaType == "application/json" ? nil : .unsupportedMediaType
    }

    /// `{"vote":{…},"totals":<snapshot>}`, written straight into bytes (hot path).
    private func acceptedBody(_ vote: Vote, remaining: UInt32) -> [UInt8] {
        let snapshot = totals.latest() ?? totals.emptySnapshot
        var bytes: [UInt8] = []
        bytes.reserveCapacity(160 + snapshot.summaryJSON.count)
        Self.append(#"{"vote":{"id":""#, to: &bytes)
        vote.id.appendDescription(to: &bytes)
        Self.append(#"","participant":""#, to: &bytes)
        bytes.append(contentsOf: vote.participantID.utf8) // a poll id: [a-z0-9_-] only
        Self.append(#"","acceptedAt":""#, to: &bytes)
        Timestamp.appendISO8601(millis: vote.acceptedAtMillis, to: &bytes)
        Self.append(#"","votesRemaining":"#, to: &bytes)
        bytes.appendDecimal(Int64(remaining))
        Self.append(#"},"totals":"#, to: &bytes)
        bytes.append(contentsOf: snapshot.summaryJSON)
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }

    private static func append(_ text: StaticString, to bytes: inout [UInt8]) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    /// A server-made, time-ordered vote id from a per-thread fast generator (unique, not secret).
    static func newVoteID(millis: Int64) -> VoteID {
        VoteIDSource.current.next(millis: millis)
    }
}

/// One fast generator per thread for server-made vote ids.
final class VoteIDSource: @unchecked Sendable {  // used only by the thread that owns it
    private var generator = FastRandom()

    func next(millis: Int64) -> VoteID {
        VoteID.timeOrdered(millis: millis, using: &generator)
    }

    static var current: VoteIDSource {
        if let existing = threadLocal.currentValue { return existing }
        let source = VoteIDSource()
        threadLocal.currentValue = source
        return source
    }

    private static let threadLocal = ThreadSpecificVariable<VoteIDSource>()
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs (header values; no copy, no Foundation).
    var trimmingSpaces: Substring {
        let text = Substring(self)
        let utf8 = text.utf8
        var start = utf8.startIndex
        var end = utf8.endIndex
        while start < end, utf8[start] == 0x20 || utf8[start] == 0x09 { start = utf8.index(after: start) }
        while start < end {
            let last = utf8.index(before: end)
            guard utf8[last] == 0x20 || utf8[last] == 0x09 else { break }
            end = last
        }
        return text[start..<end]
    }
}
