internal import CMongoC

/// One collection of the client's database.
public final class MongoCollection {
    private let client: MongoClient
    let handle: OpaquePointer

    init(client: MongoClient, handle: OpaquePointer) {
        self.client = client
        self.handle = handle
    }

    deinit {
        mongoc_collection_destroy(handle)
    }

    /// Starts an unordered (or ordered) bulk write, in `session`'s transaction if given,
    /// else acknowledged by a majority (`w: "majority"`).
    public func bulkWrite(ordered: Bool, session: MongoSession?, majorityTimeoutMillis: Int32) throws(MongoError) -> MongoBulkWrite {
        let options = BSONDocument().append("ordered", bool: ordered)
        if let session {
            try session.append(to: options)
        } else {
            options.append("writeConcern", document: BSONDocument().append("w", "majority").append("wtimeout", int64: Int64(majorityTimeoutMillis)))
        }
        return MongoBulkWrite(handle: mongoc_collection_create_bulk_operation_with_opts(handle, options.handle))
    }

    /// Every document matching `filter`, in `sort` order, read with read concern
    /// `majority` (only what a majority has: a totals read never shows a vote that a
    /// failover could take back).
    public func find(_ filter: BSONDocument, sort: BSONDocument? = nil, limit: Int64? = nil) throws(MongoError) -> [BSONDocument] {
        let options = BSONDocument()
        if let sort { options.append("sort", document: sort) }
        if let limit { options.append("limit", int64: limit) }
        options.append("readConcern", document: BSONDocument().append("level", "majority"))
        let cursor = mongoc_collection_find_with_opts(handle, filter.handle, options.handle, nil)
        defer { mongoc_cursor_destroy(cursor) }
        var documents: [BSONDocument] = []
        var current: OpaquePointer?
        while mongoc_cursor_next(cursor, &current) {
            if let current { documents.append(BSONDocument(copying: current)) }
        }
        var error = bson_error_t()
        var reply: OpaquePointer?
        if mongoc_cursor_error_document(cursor, &error, &reply) {
            throw MongoError(error, reply: reply.map { BSONDocument(copying: $0) })
        }
        return documents
    }

    /// Deletes every document matching `filter` (write concern `majority`); returns how many.
    public func deleteMany(_ filter: BSONDocument, majorityTimeoutMillis: Int32) throws(MongoError) -> Int64 {
        let options = BSONDocument().append("writeConcern", document: BSONDocument().append("w", "majority").append("wtimeout", int64: Int64(majorityTimeoutMillis)))
        let reply = BSONDocument(replyStorage: ())
        var error = bson_error_t()
        guard mongoc_collection_delete_many(handle, filter.handle, options.handle, reply.handle, &error) else {
            throw MongoError(error, reply: reply)
        }
        return reply.fields()["deletedCount"]?.integer ?? 0
    }
}

/// What a bulk write did. `upsertedIndices` are the positions (in the order the updates
/// were added) of the updates that inserted a new document.
public struct MongoBulkWriteResult: Sendable, Equatable {
    public var matched: Int64
    public var modified: Int64
    public var upsertedIndices: [Int]
}

/// A bulk write being built: updates are copied into the command as they are added, so
/// one scratch filter and update document can be reused for every vote.
public final class MongoBulkWrite {
    let handle: OpaquePointer
    public private(set) var count = 0

    init(handle: OpaquePointer) {
        self.handle = handle
    }

    deinit {
        mongoc_bulk_operation_destroy(handle)
    }

    private static let upsertOptions = BSONDocumentBox(BSONDocument().append("upsert", bool: true))

    /// Adds `{q: filter, u: update, upsert: true, multi: false}`.
    public func upsertOne(filter: BSONDocument, update: BSONDocument) throws(MongoError) {
        var error = bson_error_t()
        guard mongoc_bulk_operation_update_one_with_opts(handle, filter.handle, update.handle, Self.upsertOptions.document.handle, &error) else {
            throw MongoError(error)
        }
        count += 1
    }

    /// Sends the bulk (in as many commands as the server's batch limits need).
    public func execute() throws(MongoError) -> MongoBulkWriteResult {
        let reply = BSONDocument(replyStorage: ())
        var error = bson_error_t()
        let server = mongoc_bulk_operation_execute(handle, reply.handle, &error)
        guard server != 0 else { throw MongoError(error, reply: reply) }
        let fields = reply.fields()
        var indices: [Int] = []
        if case .array(let upserted)? = fields["upserted"] {
            for entry in upserted {
                guard case .document(let fields) = entry, let index = fields["index"]?.integer, index >= 0, index < count else {
                    throw MongoError.wrapper("bulk write reply has a malformed upserted entry")
                }
                indices.append(Int(index))
            }
        }
        return MongoBulkWriteResult(matched: fields["nMatched"]?.integer ?? 0, modified: fields["nModified"]?.integer ?? 0, upsertedIndices: indices)
    }
}

/// A document shared read-only between threads (bulk options never change).
private final class BSONDocumentBox: @unchecked Sendable {
    // Safety: built once, then only read (the driver copies it into each command).
    let document: BSONDocument
    init(_ document: BSONDocument) { self.document = document }
}
