import Foundation
import SQLite
public import VoteShared

/// Polls and the audit log in the SQLite file: `polls` (participants as a JSON array) with
/// a partial unique index that lets at most one row be `open`, and `audit_log`.
extension SQLiteVoteStore: PollStore {
    static let pollTablesSQL = """
        CREATE TABLE IF NOT EXISTS polls (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            participants TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('draft', 'open', 'closed')),
            created_at INTEGER,
            opened_at INTEGER,
            closed_at INTEGER
        ) WITHOUT ROWID;
        CREATE UNIQUE INDEX IF NOT EXISTS polls_one_open ON polls(state) WHERE state = 'open';
        CREATE TABLE IF NOT EXISTS audit_log (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            at INTEGER NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            poll TEXT NOT NULL,
            detail TEXT NOT NULL,
            client TEXT NOT NULL
        );
        """

    public func polls() throws(StoreError) -> [Poll] {
        do {
            let select = try database.prepare("SELECT id, title, participants, state, created_at, opened_at, closed_at FROM polls ORDER BY created_at, id")
            var polls: [Poll] = []
            while try select.step() {
                let id = select.string(at: 0)
                guard let state = PollState(rawValue: select.string(at: 3)),
                      let participants = try? JSONDecoder().decode([Participant].self, from: Data(select.string(at: 2).utf8)) else {
                    throw StoreError(operation: "read polls", code: -2, message: "malformed polls row \(id.prefix(64))")
                }
                do {
                    polls.append(try Poll(
                        id: id, title: select.string(at: 1), participants: participants, state: state,
                        createdAtMillis: select.optionalInt64(at: 4), openedAtMillis: select.optionalInt64(at: 5), closedAtMillis: select.optionalInt64(at: 6)
                    ))
                } catch {
                    throw StoreError(operation: "read polls", code: -2, message: "malformed polls row \(id.prefix(64)): \(error.message)")
                }
            }
            return polls
        } catch let error as StoreError {
            throw error
        } catch {
            throw Self.storeError("read polls", error)
        }
    }

    public func write(_ change: PollChange) throws(StoreError) -> PollWriteOutcome {
        let poll = change.poll
        do {
            let participants = String(decoding: try JSONEncoder().encode(poll.participants), as: UTF8.self)
            let statement: SQLiteStatement
            if let expected = change.expectedState {
                statement = try database.prepare("""
                    UPDATE polls SET title = ?2, participants = ?3, state = ?4, created_at = ?5, opened_at = ?6, closed_at = ?7
                    WHERE id = ?1 AND state = ?8
                    """)
                try statement.bind(expected.rawValue, at: 8)
            } else {
                statement = try database.prepare("""
                    INSERT INTO polls (id, title, participants, state, created_at, opened_at, closed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                    """)
            }
            try statement.bind(poll.id, at: 1)
            try statement.bind(poll.title, at: 2)
            try statement.bind(participants, at: 3)
            try statement.bind(poll.state.rawValue, at: 4)
            try statement.bind(poll.createdAtMillis, at: 5)
            try statement.bind(poll.openedAtMillis, at: 6)
            try statement.bind(poll.closedAtMillis, at: 7)
            try statement.step()
            return database.changes == 1 ? .written : .conflict
        } catch let error as SQLiteError where error.code & 0xFF == 19 {
            // SQLITE_CONSTRAINT (extended codes: 1555, 2067): the id exists, or another poll is open (polls_one_open).
            return .conflict
        } catch {
            throw Self.storeError("write poll", error)
        }
    }

    public func appendAudit(_ entry: AuditEntry) throws(StoreError) {
        do {
            let insert = try database.prepare("INSERT INTO audit_log (at, actor, action, poll, detail, client) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
            try insert.bind(entry.atMillis, at: 1)
            try insert.bind(entry.actor, at: 2)
            try insert.bind(entry.action, at: 3)
            try insert.bind(entry.pollID, at: 4)
            try insert.bind(entry.detail, at: 5)
            try insert.bind(entry.client, at: 6)
            try insert.step()
        } catch {
            throw Self.storeError("append audit", error)
        }
    }

    public func auditLog(limit: Int) throws(StoreError) -> [AuditEntry] {
        do {
            let select = try database.prepare("SELECT at, actor, action, poll, detail, client FROM audit_log ORDER BY seq DESC LIMIT ?1")
            try select.bind(Int64(max(0, limit)), at: 1)
            var entries: [AuditEntry] = []
            while try select.step() {
                entries.append(AuditEntry(
                    atMillis: select.int64(at: 0), actor: select.string(at: 1), action: select.string(at: 2),
                    pollID: select.string(at: 3), detail: select.string(at: 4), client: select.string(at: 5)
                ))
            }
            return entries
        } catch {
            throw Self.storeError("read audit log", error)
        }
    }
}
