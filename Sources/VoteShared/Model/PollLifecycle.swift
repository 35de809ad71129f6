/// Where a poll is at a given instant (a closed poll stays open until its closing time).
public enum PollPhase: String, Sendable, Equatable {
    case draft
    case open
    case closed
}

extension Poll {
    /// The poll's phase at `millis`: a poll closed with a closing time still ahead is open
    /// until then (every API instance learns of the close before it takes effect).
    public func phase(atMillis millis: Int64) -> PollPhase {
        switch state {
        case .draft: return .draft
        case .open: return .open
        case .closed:
            if let closedAtMillis, millis < closedAtMillis { return .open }
            return .closed
        }
    }

    /// Whether a vote the API accepted at `millis` counts for this poll: not a draft, not
    /// before it opened, and before it closed. The API and the consumer both decide by it.
    public func countsVote(acceptedAtMillis millis: Int64) -> Bool {
        guard state != .draft else { return false }
        if let openedAtMillis, millis < openedAtMillis { return false }
        if let closedAtMillis, millis >= closedAtMillis { return false }
        return true
    }
}

/// Why an admin action on the polls is refused.
public enum PollRuleViolation: Error, Equatable, Sendable, CustomStringConvertible {
    case unknownPoll(String)
    case alreadyExists(String)
    /// Only drafts may be edited or opened.
    case notDraft(id: String, state: PollState)
    /// Only an open poll may be closed.
    case notOpen(id: String, state: PollState)
    /// At most one poll is open (or still closing) at a time.
    case anotherPollOpen(String)
    case invalid(String)

    public var description: String {
        switch self {
        case .unknownPoll(let id): "there is no poll \"\(id)\""
        case .alreadyExists(let id): "a poll \"\(id)\" already exists"
        case .notDraft(let id, let state): "poll \"\(id)\" is \(state.rawValue): only a draft can be changed or opened"
        case .notOpen(let id, let state): "poll \"\(id)\" is \(state.rawValue): only an open poll can be closed"
        case .anotherPollOpen(let id): "poll \"\(id)\" is open: close it before opening another"
        case .invalid(let problem): problem
        }
    }
}

/// A change the rules allow: the poll as it must be written, and the state the stored
/// poll must still have for the write to apply (`nil`: the poll must not exist yet).
public struct PollChange: Sendable, Equatable {
    public var poll: Poll
    public var expectedState: PollState?

    public init(poll: Poll, expectedState: PollState?) {
        self.poll = poll
        self.expectedState = expectedState
    }
}

/// The rules of the polls of a season: draft → open → closed, at most one open at a time,
/// only drafts edited, 2–4 participants. Pure: the polls and the time come in, the change
/// to write comes out; the store applies it only if the poll is still as it was read.
public struct PollLifecycle: Sendable {
    public let polls: [Poll]
    /// How far ahead of "close now" the closing time is set: longer than the time every
    /// API instance needs to re-read the polls, so that none accepts a vote after it.
    public let closeDelayMillis: Int64

    public init(polls: [Poll], closeDelayMillis: Int64) {
        self.polls = polls
        self.closeDelayMillis = closeDelayMillis
    }

    public func poll(_ id: String) -> Poll? {
        polls.first { $0.id == id }
    }

    /// The poll the ballot shows at `millis`: the open one, else the one closed last.
    public func current(atMillis millis: Int64) -> Poll? {
        if let open = polls.first(where: { $0.phase(atMillis: millis) == .open }) { return open }
        return polls.filter { $0.state == .closed }.max { ($0.closedAtMillis ?? .min) < ($1.closedAtMillis ?? .min) }
    }

    /// A new draft.
    public func create(id: String, title: String, participants: [Participant], nowMillis: Int64) throws(PollRuleViolation) -> PollChange {
        guard poll(id) == nil else { throw .alreadyExists(id) }
        let draft: Poll
        do {
            draft = try Poll(id: id, title: title, participants: participants, state: .draft, createdAtMillis: nowMillis)
        } catch {
            throw .invalid(error.message)
        }
        return PollChange(poll: draft, expectedState: nil)
    }

    /// A draft with a new title and/or participants.
    public func edit(id: String, title: String?, participants: [Participant]?) throws(PollRuleViolation) -> PollChange {
        guard var edited = poll(id) else { throw .unknownPoll(id) }
        guard edited.state == .draft else { throw .notDraft(id: id, state: edited.state) }
        if let title { edited.title = title }
        if let participants { edited.participants = participants }
        if let problem = edited.validationProblem { throw .invalid(problem) }
        return PollChange(poll: edited, expectedState: .draft)
    }

    /// A draft opened now, when no other poll is open or still closing.
    public func open(id: String, nowMillis: Int64) throws(PollRuleViolation) -> PollChange {
        guard var opened = poll(id) else { throw .unknownPoll(id) }
        guard opened.state == .draft else { throw .notDraft(id: id, state: opened.state) }
        if let other = polls.first(where: { $0.id != id && $0.phase(atMillis: nowMillis) == .open }) {
            throw .anotherPollOpen(other.id)
        }
        opened.state = .open
        opened.openedAtMillis = nowMillis
        return PollChange(poll: opened, expectedState: .draft)
    }

    /// An open poll closed: votes accepted from `nowMillis + closeDelayMillis` on do not count.
    public func close(id: String, nowMillis: Int64) throws(PollRuleViolation) -> PollChange {
        guard var closed = poll(id) else { throw .unknownPoll(id) }
        guard closed.state == .open else { throw .notOpen(id: id, state: closed.state) }
        closed.state = .closed
        let (closing, overflow) = nowMillis.addingReportingOverflow(closeDelayMillis)
        closed.closedAtMillis = max(overflow ? .max : closing, closed.openedAtMillis ?? .min)
        return PollChange(poll: closed, expectedState: .open)
    }

    /// The definition file's poll, opened now, when the store has no poll at all.
    public func seed(_ definition: Poll, nowMillis: Int64) -> PollChange? {
        guard polls.isEmpty else { return nil }
        var seeded = definition
        seeded.state = .open
        seeded.createdAtMillis = nowMillis
        seeded.openedAtMillis = nowMillis
        seeded.closedAtMillis = nil
        return PollChange(poll: seeded, expectedState: nil)
    }
}
