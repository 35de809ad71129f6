import MongoDB
public import VoteShared

/// Polls and the audit log in MongoDB:
/// - `polls`: `{_id: <poll id>, title, participants: [{id, name, photoUrl}], state,
///   createdAt, openedAt, closedAt}` (dates; absent until set), with the unique partial
///   index `one_open` on `{state: 1}` where `state` is `"open"`: at most one open poll.
/// - `audit_log`: `{at: <date>, actor, action, poll, detail, client}`, read newest first.
/// Writes use write concern `majority`; a poll change is an `update` whose filter names
/// the state it was decided on, so a lost race matches nothing.
extension MongoVoteStore: PollStore {
    static let pollsCollection = "polls"
    static let auditCollection = "audit_log"
    static let oneOpenIndexName = "one_open"
    /// The server's code for a duplicate key (an existing id, or a second open poll).
    static let duplicateKeyCode: Int64 = 11000

    public func polls() throws(StoreError) -> [Poll] {
        try ensurePollIndex()
        let documents: [BSONDocument]
        do {
            documents = try client.collection(Self.pollsCollection).find(BSONDocument(), sort: BSONDocument().append("createdAt", int32: 1).append("_id", int32: 1))
        } catch {
            throw Self.storeError("read polls", error)
        }
        var polls: [Poll] = []
        for document in documents {
            polls.append(try Self.poll(from: document.fields()))
        }
        return polls
    }

    public func write(_ change: PollChange) throws(StoreError) -> PollWriteOutcome {
        try ensurePollIndex()
        let command = Self.writeCommand(for: change, majorityTimeoutMillis: majorityTimeoutMillis)
        let reply: BSONDocument
        do {
            reply = try client.runCommand(command)
        } catch where error.code == UInt32(Self.duplicateKeyCode) {
            return .conflict
        } catch {
            throw Self.storeError("write poll", error)
        }
        return try Self.writeOutcome(of: reply.fields())
    }

    public func appendAudit(_ entry: AuditEntry) throws(StoreError) {
        let command = BSONDocument()
            .append("insert", Self.auditCollection)
            .append("documents", array: [Self.auditDocument(entry)])
            .append("writeConcern", document: BSONDocument().append("w", "majority").append("wtimeout", int64: Int64(majorityTimeoutMillis)))
        do {
            let reply = try client.runCommand(command)
            guard case .written = try Self.writeOutcome(of: reply.fields()) else {
                throw StoreError(operation: "append audit", code: -2, message: "the audit entry was not inserted")
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw Self.storeError("append audit", error as? MongoError ?? .init(domain: 0, code: 0, message: "\(error)"))
        }
    }

    public func auditLog(limit: Int) throws(StoreError) -> [AuditEntry] {
        let documents: [BSONDocument]
        do {
            documents = try client.collection(Self.auditCollection).find(BSONDocument(), sort: BSONDocument().append("at", int32: -1).append("_id", int32: -1), limit: Int64(max(1, limit)))
        } catch {
            throw Self.storeError("read audit log", error)
        }
        return documents.prefix(max(0, limit)).map { Self.auditEntry(from: $0.fields()) }
    }

    private func ensurePollIndex() throws(StoreError) {
        guard !pollIndexReady else { return }
        do {
            try client.runCommand(Self.pollIndexCommand())
        } catch {
            throw Self.storeError("prepare polls", error)
        }
        pollIndexReady = true
    }

    // MARK: Documents (static, so the tests check them without a server)

    /// `createIndexes` for `polls`: `{state: 1}`, unique where `state` is `"open"`.
    static func pollIndexCommand() -> BSONDocument {
        BSONDocument()
            .append("createIndexes", pollsCollection)
            .append("indexes", array: [BSONDocument()
                .append("key", document: BSONDocument().append("state", int32: 1))
                .append("name", oneOpenIndexName)
                .append("unique", bool: true)
                .append("partialFilterExpression", document: BSONDocument().append("state", PollState.open.rawValue))])
    }

    /// The document a poll is stored as.
    static func pollDocument(_ poll: Poll) -> BSONDocument {
        let document = BSONDocument()
            .append("_id", poll.id)
            .append("title", poll.title)
            .append("participants", array: poll.participants.map {
                BSONDocument().append("id", $0.id).append("name", $0.name).append("photoUrl", $0.photoUrl)
            })
            .append("state", poll.state.rawValue)
        if let created = poll.createdAtMillis { document.append("createdAt", dateMillis: created) }
        if let opened = poll.openedAtMillis { document.append("openedAt", dateMillis: opened) }
        if let closed = poll.closedAtMillis { document.append("closedAt", dateMillis: closed) }
        return document
    }

    /// An `insert` (no expected state) or an `update` replacing the poll whose filter is
    /// `{_id, state: <expected>}`.
    static func writeCommand(for change: PollChange, majorityTimeoutMillis: Int32) -> BSONDocument {
        let document = pollDocument(change.poll)
        let command = BSONDocument()
        if let expected = change.expectedState {
            let filter = BSONDocument().append("_id", change.poll.id).append("state", expected.rawValue)
            command.append("update", pollsCollection)
                .append("updates", array: [BSONDocument().append("q", document: filter).append("u", document: document)])
        } else {
            command.append("insert", pollsCollection).append("documents", array: [document])
        }
        return command.append("writeConcern", document: BSONDocument().append("w", "majority").append("wtimeout", int64: Int64(majorityTimeoutMillis)))
    }

    /// Written when the server counted one document (`n`); a conflict when it matched none
    /// or refused a duplicate key; any other write error is a store error.
    static func writeOutcome(of reply: BSONFields) throws(StoreError) -> PollWriteOutcome {
        if case .array(let errors)? = reply["writeErrors"], !errors.isEmpty {
            for case .document(let error) in errors where error["code"]?.integer != duplicateKeyCode {
                let message = if case .string(let text)? = error["errmsg"] { text } else { "write error" }
                throw StoreError(operation: "write poll", code: Int(error["code"]?.integer ?? -1), message: message)
            }
            return .conflict
        }
        if case .document(let concern)? = reply["writeConcernError"] {
            let message = if case .string(let text)? = concern["errmsg"] { text } else { "write concern error" }
            throw StoreError(operation: "write poll", code: Int(concern["code"]?.integer ?? -1), message: message)
        }
        return (reply["n"]?.integer ?? 0) == 1 ? .written : .conflict
    }

    /// A stored poll, checked like any definition (ids, 2–4 participants, state).
    static func poll(from fields: BSONFields) throws(StoreError) -> Poll {
        let id = if case .string(let id)? = fields["_id"] { id } else { "?" }
        func corrupt(_ reason: String) -> StoreError {
            StoreError(operation: "read polls", code: -2, message: "malformed \(pollsCollection) document \(id.prefix(64)): \(reason)")
        }
        guard case .string(let title)? = fields["title"] else { throw corrupt("title is not a string") }
        guard case .string(let stateName)? = fields["state"], let state = PollState(rawValue: stateName) else { throw corrupt("unknown state") }
        guard case .array(let list)? = fields["participants"] else { throw corrupt("participants is not an array") }
        var participants: [Participant] = []
        for entry in list {
            guard case .document(let participant) = entry,
                  case .string(let participantID)? = participant["id"],
                  case .string(let name)? = participant["name"] else { throw corrupt("a participant is not {id, name, photoUrl}") }
            let photo = if case .string(let photo)? = participant["photoUrl"] { photo } else { "" }
            participants.append(Participant(id: participantID, name: name, photoUrl: photo))
        }
        func date(_ key: String) throws(StoreError) -> Int64? {
            switch fields[key] {
            case nil, .null?: return nil
            case .date(let millis)?: return millis
            default: throw corrupt("\(key) is not a date")
            }
        }
        do {
            return try Poll(
                id: id, title: title, participants: participants, state: state,
                createdAtMillis: try date("createdAt"), openedAtMillis: try date("openedAt"), closedAtMillis: try date("closedAt")
            )
        } catch let error as StoreError {
            throw error
        } catch {
            throw corrupt("\(error)")
        }
    }

    static func auditDocument(_ entry: AuditEntry) -> BSONDocument {
        BSONDocument()
            .append("at", dateMillis: entry.atMillis)
            .append("actor", entry.actor)
            .append("action", entry.action)
            .append("poll", entry.pollID)
            .append("detail", entry.detail)
            .append("client", entry.client)
    }

    static func auditEntry(from fields: BSONFields) -> AuditEntry {
        func text(_ key: String) -> String {
            if case .string(let value)? = fields[key] { return value }
            return ""
        }
        let at: Int64 = if case .date(let millis)? = fields["at"] { millis } else { 0 }
        return AuditEntry(atMillis: at, actor: text("actor"), action: text("action"), pollID: text("poll"), detail: text("detail"), client: text("client"))
    }
}
