/// A failure reported by SQLite, with its result code and message.
public struct SQLiteError: Error, CustomStringConvertible, Sendable {
    /// The SQLite result code (`SQLITE_BUSY` is 5, `SQLITE_CONSTRAINT` is 19, …).
    public var code: Int32
    /// SQLite's own explanation.
    public var message: String
    /// The SQL being run, when there was one.
    public var sql: String?

    public init(code: Int32, message: String, sql: String? = nil) {
        self.code = code
        self.message = message
        self.sql = sql
    }

    public var description: String {
        if let sql { return "SQLite error \(code): \(message) [\(sql)]" }
        return "SQLite error \(code): \(message)"
    }
}
