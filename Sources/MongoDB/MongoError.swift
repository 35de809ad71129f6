internal import CMongoC

/// A failure reported by the MongoDB C driver: its error domain and code, its message, and
/// the server's error labels (`TransientTransactionError`, `UnknownTransactionCommitResult`,
/// `RetryableWriteError`) when the reply carried any.
public struct MongoError: Error, CustomStringConvertible, Sendable, Equatable {
    /// libmongoc's error domains (error API version 2).
    public enum Domain: UInt32, Sendable {
        case client = 1
        case stream = 2
        case protocolError = 3
        case cursor = 4
        case query = 5
        case insert = 6
        case sasl = 7
        case bson = 8
        case matcher = 9
        case namespace = 10
        case command = 11
        case collection = 12
        case gridfs = 13
        case scram = 14
        case serverSelection = 15
        case writeConcern = 16
        case server = 17
        case transaction = 18
    }

    public var domain: UInt32
    public var code: UInt32
    public var message: String
    public var labels: [String]

    public init(domain: UInt32, code: UInt32, message: String, labels: [String] = []) {
        self.domain = domain
        self.code = code
        self.message = message
        self.labels = labels
    }

    /// An error made by this wrapper (a document that could not be built, a bad reply).
    static func wrapper(_ message: String) -> MongoError {
        MongoError(domain: Domain.client.rawValue, code: 0, message: message)
    }

    init(_ error: bson_error_t, reply: BSONDocument? = nil) {
        var error = error
        let message = withUnsafeBytes(of: &error.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        var labels: [String] = []
        if let reply, case .array(let values)? = reply.fields()["errorLabels"] {
            labels = values.compactMap { if case .string(let label) = $0 { label } else { nil } }
        }
        self.init(domain: error.domain, code: error.code, message: message, labels: labels)
    }

    public var description: String {
        let labelText = labels.isEmpty ? "" : " [\(labels.joined(separator: ", "))]"
        return "mongodb error \(domain).\(code): \(message)\(labelText)"
    }

    /// The server's codes for "this node is not (or no longer) the primary" and
    /// "shutting down": a new primary will take the write.
    static let notPrimaryCodes: Set<UInt32> = [91, 189, 10107, 11600, 11602, 13435, 13436]

    /// `WriteConflict`: another transaction wrote the same document first. The server
    /// labels it `TransientTransactionError` inside a transaction; the code alone is
    /// enough to run the transaction again.
    static let writeConflict: UInt32 = 112

    /// The whole transaction may be retried: the server said so, or the primary went away,
    /// or the connection was lost before an answer came.
    public var isTransient: Bool {
        labels.contains("TransientTransactionError") || labels.contains("RetryableWriteError")
            || Self.notPrimaryCodes.contains(code) || code == Self.writeConflict
            || domain == Domain.stream.rawValue || domain == Domain.serverSelection.rawValue
    }

    /// The commit may or may not have happened: retrying the commit itself is safe.
    public var isUnknownCommitResult: Bool {
        labels.contains("UnknownTransactionCommitResult")
    }
}
