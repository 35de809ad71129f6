import VoteShared

/// Why a delivered message is not counted; it is dead-lettered with this reason.
enum DeliveryRejection: Error, Equatable, CustomStringConvertible {
    /// Not a vote message at all.
    case undecodable(WireFormatError)
    /// A vote for a poll this consumer does not know, accepted at `millis`.
    case unknownPoll(String, millis: Int64)
    /// A vote for someone who is not a participant of its poll, accepted at `millis`.
    case unknownParticipant(poll: String, participant: String, millis: Int64)
    /// Accepted at a time outside the window around now (in milliseconds since 1970).
    case acceptedAtOutOfWindow(millis: Int64)
    /// Accepted while its poll was not open: a draft, before the opening, at or after the close.
    case pollNotOpen(poll: String, millis: Int64)

    /// The label of `paredao_consumer_dead_lettered_total`.
    var reason: String {
        switch self {
        case .undecodable: "undecodable"
        case .unknownPoll: "unknown_poll"
        case .unknownParticipant: "unknown_participant"
        case .acceptedAtOutOfWindow: "accepted_at"
        case .pollNotOpen: "poll_not_open"
        }
    }

    var description: String {
        switch self {
        case .undecodable(let error): "\(error)"
        case .unknownPoll(let poll, _): "unknown poll \"\(poll)\""
        case .unknownParticipant(let poll, let participant, _): "\"\(participant)\" is not a participant of poll \"\(poll)\""
        case .acceptedAtOutOfWindow(let millis): "accepted at \(Timestamp.iso8601(millis: millis)), outside the accepted window"
        case .pollNotOpen(let poll, let millis): "accepted at \(Timestamp.iso8601(millis: millis)), when poll \"\(poll)\" was not open"
        }
    }

    /// When polls read again might explain the vote (a poll opened a moment ago): the
    /// accepted-at time of the vote the polls as read do not explain.
    var acceptedAtIfPollsWereStale: Int64? {
        switch self {
        case .unknownPoll(_, let millis), .unknownParticipant(_, _, let millis), .pollNotOpen(_, let millis): millis
        case .undecodable, .acceptedAtOutOfWindow: nil
        }
    }
}

/// Checks every vote of a message before anything of it counts: its poll is known, its
/// participant belongs to that poll, it was accepted inside a window around now — not
/// older than the dedup window (an older id could no longer be recognised as a repeat), and
/// not later than the allowed clock skew — and while its poll was open (the API's
/// accepted-at time against the poll's opening and closing times, the rule the API used).
/// Nothing here does arithmetic that can trap.
struct VoteValidator: Sendable {
    /// The polls, as last read from the store.
    let catalog: PollCatalog
    let maxAgeMillis: Int64
    let maxSkewMillis: Int64

    init(catalog: PollCatalog, maxAge: Duration, maxSkew: Duration) {
        self.catalog = catalog
        maxAgeMillis = maxAge.wholeMilliseconds
        maxSkewMillis = maxSkew.wholeMilliseconds
    }

    /// A validator over a fixed list of polls.
    init(polls: [Poll], maxAge: Duration, maxSkew: Duration) {
        self.init(catalog: PollCatalog(polls: polls), maxAge: maxAge, maxSkew: maxSkew)
    }

    /// The first problem of `votes` at `nowMillis`, or `nil` when every vote may count.
    func check(_ votes: [Vote], nowMillis: Int64) -> DeliveryRejection? {
        let earliest = nowMillis.subtractingReportingOverflow(maxAgeMillis)
        let latest = nowMillis.addingReportingOverflow(maxSkewMillis)
        for vote in votes {
            guard let poll = catalog.poll(vote.pollID) else { return .unknownPoll(vote.pollID, millis: vote.acceptedAtMillis) }
            guard poll.participantIndex(of: vote.participantID) != nil else {
                return .unknownParticipant(poll: vote.pollID, participant: vote.participantID, millis: vote.acceptedAtMillis)
            }
            let tooOld = !earliest.overflow && vote.acceptedAtMillis < earliest.partialValue
            let tooNew = !latest.overflow && vote.acceptedAtMillis > latest.partialValue
            if tooOld || tooNew { return .acceptedAtOutOfWindow(millis: vote.acceptedAtMillis) }
            guard poll.countsVote(acceptedAtMillis: vote.acceptedAtMillis) else { return .pollNotOpen(poll: vote.pollID, millis: vote.acceptedAtMillis) }
        }
        return nil
    }

    /// The message `body` decoded and checked at `nowMillis`.
    func votes(in body: [UInt8], nowMillis: Int64) -> Result<[Vote], DeliveryRejection> {
        let votes: [Vote]
        do {
            votes = try VoteMessage.decode(body)
        } catch {
            return .failure(.undecodable(error))
        }
        if let problem = check(votes, nowMillis: nowMillis) { return .failure(problem) }
        return .success(votes)
    }
}
