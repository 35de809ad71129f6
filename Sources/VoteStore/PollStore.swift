public import VoteShared

/// One line of the admin audit log: who did what, when, from where.
public struct AuditEntry: Sendable, Equatable {
    /// When, in milliseconds since 1970.
    public var atMillis: Int64
    /// Who: the name of the admin credential (`-` when none matched).
    public var actor: String
    /// What: `create`, `edit`, `open`, `close`, `refused`, …
    public var action: String
    /// The poll acted on (empty when none).
    public var pollID: String
    /// What changed or why it was refused, in a sentence or a small JSON object.
    public var detail: String
    /// From where: the client address as the API determined it.
    public var client: String

    public init(atMillis: Int64, actor: String, action: String, pollID: String, detail: String, client: String) {
        self.atMillis = atMillis
        self.actor = actor
        self.action = action
        self.pollID = pollID
        self.detail = detail
        self.client = client
    }
}

/// Whether a poll change was written, or lost a race: the poll was no longer in the state
/// the change was decided on, already existed, or another poll was opened meanwhile.
public enum PollWriteOutcome: Sendable, Equatable {
    case written
    case conflict
}

/// Where the polls and the audit log live (the same database as the votes). One owner at
/// a time: implementations are not thread-safe.
public protocol PollStore: AnyObject {
    /// Every poll, oldest first.
    func polls() throws(StoreError) -> [Poll]

    /// Writes `change` only if the stored poll is still in `change.expectedState` (or,
    /// with no expected state, does not exist), and never leaves two polls open.
    func write(_ change: PollChange) throws(StoreError) -> PollWriteOutcome

    /// Appends one entry to the audit log.
    func appendAudit(_ entry: AuditEntry) throws(StoreError)

    /// The newest `limit` entries of the audit log, newest first.
    func auditLog(limit: Int) throws(StoreError) -> [AuditEntry]
}

extension PollStore {
    /// The polls, after writing `definition` as the first, open poll if there is none
    /// (another process seeding at the same time is not an error).
    public func pollsSeeding(_ definition: Poll?, nowMillis: Int64) throws(StoreError) -> [Poll] {
        let polls = try polls()
        guard let definition, let seed = PollLifecycle(polls: polls, closeDelayMillis: 0).seed(definition, nowMillis: nowMillis) else { return polls }
        _ = try write(seed)
        return try self.polls()
    }
}
