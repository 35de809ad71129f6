import MongoDB
import Testing
import VoteShared
@testable import VoteStore

/// The `polls` and `audit_log` documents the MongoDB store writes and reads, without a server.
@Suite("MongoDB poll documents")
struct MongoPollDocumentTests {
    let poll = try! Poll(
        id: "p11", title: "Paredão 11", participants: [
            Participant(id: "aline", name: "Aline", photoUrl: "/img/aline.svg"),
            Participant(id: "diego", name: "Diego", photoUrl: ""),
        ], state: .closed, createdAtMillis: 1_000, openedAtMillis: 2_000, closedAtMillis: 3_000
    )

    @Test func aPollDocumentReadsBackAsThePoll() throws {
        let fields = MongoVoteStore.pollDocument(poll).fields()
        #expect(fields["_id"] == .string("p11"))
        #expect(fields["state"] == .string("closed"))
        #expect(fields["openedAt"] == .date(millis: 2_000))
        #expect(fields["closedAt"] == .date(millis: 3_000))
        #expect(try MongoVoteStore.poll(from: fields) == poll)
    }

    @Test func unsetTimesAreLeftOutOfTheDocument() throws {
        var draft = poll
        draft.state = .draft
        draft.openedAtMillis = nil
        draft.closedAtMillis = nil
        let fields = MongoVoteStore.pollDocument(draft).fields()
        #expect(fields["openedAt"] == nil && fields["closedAt"] == nil)
        #expect(try MongoVoteStore.poll(from: fields) == draft)
    }

    @Test(arguments: [
        #"{"_id": "p", "title": "t", "state": "paused", "participants": [{"id": "a", "name": "A"}, {"id": "b", "name": "B"}]}"#,
        #"{"_id": "p", "title": "t", "state": "open", "participants": [{"id": "a", "name": "A"}]}"#,
        #"{"_id": "p", "title": "t", "state": "open", "participants": [{"id": "A B", "name": "A"}, {"id": "b", "name": "B"}]}"#,
        #"{"_id": "p", "title": "t", "state": "open", "participants": [{"id": "a", "name": "A"}, {"id": "b", "name": "B"}], "openedAt": 5}"#,
        #"{"_id": "p", "state": "open", "participants": [{"id": "a", "name": "A"}, {"id": "b", "name": "B"}]}"#,
        #"{"_id": "Bad Id", "title": "t", "state": "open", "participants": [{"id": "a", "name": "A"}, {"id": "b", "name": "B"}]}"#,
        #"{"_id": "p", "title": "t", "state": "open", "participants": "a,b"}"#,
    ])
    func aMalformedPollDocumentIsAStoreError(_ json: String) throws {
        let fields = try BSONDocument(json: json).fields()
        #expect(throws: StoreError.self) { try MongoVoteStore.poll(from: fields) }
    }

    @Test func aChangeOfAnExistingPollIsAnUpdateFilteredOnItsExpectedState() throws {
        let command = MongoVoteStore.writeCommand(for: PollChange(poll: poll, expectedState: .open), majorityTimeoutMillis: 10_000).fields()
        #expect(command["update"] == .string("polls"))
        guard case .array(let updates)? = command["updates"], case .document(let update)? = updates.first,
              case .document(let filter)? = update["q"], case .document(let replacement)? = update["u"] else {
            Issue.record("no update in \(command)")
            return
        }
        #expect(filter == BSONFields(elements: [.init(key: "_id", value: .string("p11")), .init(key: "state", value: .string("open"))]))
        #expect(try MongoVoteStore.poll(from: replacement) == poll)
        guard case .document(let concern)? = command["writeConcern"] else { Issue.record("no write concern"); return }
        #expect(concern["w"] == .string("majority"))
    }

    @Test func aNewPollIsAnInsert() {
        let command = MongoVoteStore.writeCommand(for: PollChange(poll: poll, expectedState: nil), majorityTimeoutMillis: 10_000).fields()
        #expect(command["insert"] == .string("polls"))
        guard case .array(let documents)? = command["documents"] else { Issue.record("no documents"); return }
        #expect(documents.count == 1)
    }

    @Test func theOneOpenIndexIsUniqueAndPartialOnOpen() {
        let command = MongoVoteStore.pollIndexCommand().fields()
        guard case .array(let indexes)? = command["indexes"], case .document(let index)? = indexes.first else { Issue.record("no index"); return }
        #expect(index["unique"] == .bool(true))
        #expect(index["partialFilterExpression"] == .document(BSONFields(elements: [.init(key: "state", value: .string("open"))])))
    }

    @Test func writeRepliesAreWrittenConflictOrError() throws {
        #expect(try MongoVoteStore.writeOutcome(of: BSONDocument(json: #"{"ok": 1, "n": 1}"#).fields()) == .written)
        #expect(try MongoVoteStore.writeOutcome(of: BSONDocument(json: #"{"ok": 1, "n": 0, "nModified": 0}"#).fields()) == .conflict)
        let duplicate = #"{"ok": 1, "n": 0, "writeErrors": [{"index": 0, "code": 11000, "errmsg": "E11000 duplicate key"}]}"#
        #expect(try MongoVoteStore.writeOutcome(of: BSONDocument(json: duplicate).fields()) == .conflict)
        let other = #"{"ok": 1, "n": 0, "writeErrors": [{"index": 0, "code": 2, "errmsg": "bad"}]}"#
        #expect(throws: StoreError.self) { try MongoVoteStore.writeOutcome(of: BSONDocument(json: other).fields()) }
        let concern = #"{"ok": 1, "n": 1, "writeConcernError": {"code": 64, "errmsg": "waiting for replication timed out"}}"#
        #expect(throws: StoreError.self) { try MongoVoteStore.writeOutcome(of: BSONDocument(json: concern).fields()) }
    }

    @Test func anAuditEntryRoundTrips() {
        let entry = AuditEntry(atMillis: 1_795_352_400_123, actor: "produtor", action: "close", pollID: "p11", detail: "{}", client: "203.0.113.7")
        #expect(MongoVoteStore.auditEntry(from: MongoVoteStore.auditDocument(entry).fields()) == entry)
    }
}
