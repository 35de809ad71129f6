import NIOCore
import NIOPosix
import VoteShared

/// A vote that passed every check, for the connection to hand to the publisher (as a
/// ``PublishTicket``), with what its answer needs.
struct AdmittedVote {
    var vote: Vote
    var poll: Poll
    var token: SessionToken
    var remaining: UInt32
}

/// The vote use case: token, body, the poll open at the accepted-at time, rate and budget,
/// then the publisher; `202` only once the vote is durably queued, and the session's unit
/// refunded when it is not.
extension APIApplication {
    func castVote(_ request: APIRequest) -> APIAnswer {
        let token: SessionToken
        switch authenticate(request) {
        case .success(let verified): token = verified
        case .failure(let error): return reject(error)
        }
        if let error = request.jsonContentTypeError { return reject(error) }
        let fields: FlatJSON.Object
        do {
            fields = try FlatJSON.parseObject(request.bodyBytes)
        } catch {
            return reject(.invalidJSON(error.description))
        }
        guard case .string(let participant)? = fields["participant"] else {
            return reject(.invalidField("participant", "\"participant\" must be a participant id string."))
        }
        let now = Timestamp.nowMillis()
        guard polls.hasRead else { return reject(.pollsUnavailable) }
        // The poll open now; the consumer counts the vote by the same rule and time.
        guard let poll = polls.current(atMillis: now) else { return reject(.pollNotOpen) }
        switch fields["poll"] {
        case nil, .null?:
            break
        case .string(let asked)?:
            // A poll that aired and ended is closed; a draft is answered as an unknown id.
            if asked != poll.id { return reject(polls.publicPoll(asked) == nil ? .namedPollNotOpen : .pollClosed) }
        default:
            return reject(.invalidField("poll", "\"poll\" must be a poll id string."))
        }
        guard poll.countsVote(acceptedAtMillis: now) else { return reject(.pollClosed) }
        guard poll.participantIndex(of: participant) != nil else { return reject(.unknownParticipant(participant)) }
        let voteID: VoteID
        switch fields["voteId"] {
        case nil, .null?:
            voteID = VoteIDSource.current.next(millis: now)
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
        return .publish(AdmittedVote(vote: vote, poll: poll, token: token, remaining: remaining))
    }

    /// The answer to an admitted vote once the publisher settled it: `202` with the vote
    /// and the poll's totals, or `503` with the session's unit refunded.
    func answer(_ admitted: AdmittedVote, settled result: Result<Void, PublishError>) -> APIResponse {
        switch result {
        case .success:
            metrics.voteAccepted()
            return APIResponse(status: .accepted, body: acceptedBody(admitted.vote, poll: admitted.poll, remaining: admitted.remaining))
        case .failure(let error):
            limiter.refund(admitted.token)
            let apiError = APIError.publish(error)
            metrics.voteRejected(apiError.rejectionReason)
            return APIResponse(error: apiError)
        }
    }

    private func reject(_ error: APIError) -> APIAnswer {
        metrics.voteRejected(error.rejectionReason)
        return .now(APIResponse(error: error))
    }

    /// `{"vote":{…},"totals":<snapshot>}`, written straight into bytes (hot path).
    private func acceptedBody(_ vote: Vote, poll: Poll, remaining: UInt32) -> [UInt8] {
        let snapshot = totals.latest(of: poll) ?? totals.emptySnapshot(of: poll)
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
}

/// One fast generator per thread for server-made, time-ordered vote ids (unique, not secret).
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
