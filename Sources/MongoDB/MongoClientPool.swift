internal import CMongoC
import Logging

/// `mongoc_init` once per process, and the driver's own log lines sent to swift-log
/// (it writes them to stderr otherwise).
private let driverInitialized: Void = {
    mongoc_init()
    mongoc_log_set_handler({ level, domain, message, _ in
        // Errors and warnings only; the driver's info and debug lines are noise in a service log.
        guard level.rawValue <= MONGOC_LOG_LEVEL_WARNING.rawValue, let message else { return }
        let logger = Logger(label: "mongoc")
        let text = String(cString: message)
        let source = domain.map { String(cString: $0) } ?? "mongoc"
        if level.rawValue <= MONGOC_LOG_LEVEL_CRITICAL.rawValue {
            logger.error("MongoDB driver error", metadata: ["driver_domain": "\(source)", "driver_message": "\(text)"])
        } else {
            logger.warning("MongoDB driver warning", metadata: ["driver_domain": "\(source)", "driver_message": "\(text)"])
        }
    }, nil)
}()

/// The kind of deployment the client talks to, as the driver discovered it.
public enum MongoServerKind: String, Sendable {
    case standalone
    case replicaSetPrimary
    case mongos
    case loadBalancer
    case other

    /// Multi-document transactions exist on replica sets and sharded clusters only.
    public var supportsTransactions: Bool { self == .replicaSetPrimary || self == .mongos || self == .loadBalancer }
}

/// A thread-safe pool of driver clients for one connection string. Each thread that talks
/// to MongoDB takes a ``MongoClient`` from it and keeps it.
public final class MongoClientPool: @unchecked Sendable {
    // Safety: mongoc_client_pool_t is thread-safe; the URI is read-only after init.
    let pool: OpaquePointer
    private let uri: OpaquePointer

    /// The database named in the URL's path, or `defaultDatabase`.
    public let databaseName: String

    /// The URL with its password replaced, for logs.
    public let redactedURL: String

    /// Parses `url` (a `mongodb://` connection string) and makes the pool; no connection is
    /// made yet. Time-outs the URL leaves unset get service-friendly defaults: server
    /// selection 5 s (the driver's is 30 s) and socket 30 s (the driver's is 5 min).
    public init(url: String, appName: String, defaultDatabase: String = "paredao") throws(MongoError) {
        _ = driverInitialized
        var error = bson_error_t()
        guard let uri = mongoc_uri_new_with_error(url, &error) else { throw MongoError(error) }
        if !mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS) {
            mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 5000)
        }
        if !mongoc_uri_has_option(uri, MONGOC_URI_SOCKETTIMEOUTMS) {
            mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, 30000)
        }
        if mongoc_uri_get_appname(uri) == nil {
            mongoc_uri_set_appname(uri, appName)
        }
        guard let pool = mongoc_client_pool_new_with_error(uri, &error) else {
            mongoc_uri_destroy(uri)
            throw MongoError(error)
        }
        mongoc_client_pool_set_error_api(pool, 2)
        self.uri = uri
        self.pool = pool
        databaseName = mongoc_uri_get_database(uri).map { String(cString: $0) } ?? defaultDatabase
        redactedURL = Self.redacting(url)
    }

    /// Checks that the driver can parse `url`, without making a pool or connecting.
    public static func check(url: String) throws(MongoError) {
        _ = driverInitialized
        var error = bson_error_t()
        guard let uri = mongoc_uri_new_with_error(url, &error) else { throw MongoError(error) }
        mongoc_uri_destroy(uri)
    }

    deinit {
        mongoc_client_pool_destroy(pool)
        mongoc_uri_destroy(uri)
    }

    /// Takes a client from the pool (waits if the pool's `maxPoolSize` are all taken); it
    /// goes back when the ``MongoClient`` is released.
    public func client() -> MongoClient {
        MongoClient(pool: self, handle: mongoc_client_pool_pop(pool))
    }

    /// `url` naming `database` instead of its own: `mongodb://h1,h2/old?x=1` →
    /// `mongodb://h1,h2/NEW?x=1` (a test's own database on a shared server).
    public static func url(_ url: String, withDatabase database: String) -> String {
        let characters = Array(url)
        guard let schemeEnd = (0..<max(characters.count - 2, 0)).first(where: { characters[$0] == ":" && characters[$0 + 1] == "/" && characters[$0 + 2] == "/" }) else { return url }
        let start = schemeEnd + 3
        let hostsEnd = characters[start...].firstIndex { $0 == "/" || $0 == "?" } ?? characters.endIndex
        let query = characters[hostsEnd...].firstIndex(of: "?").map { String(characters[$0...]) } ?? ""
        return String(characters[..<hostsEnd]) + "/" + database + query
    }

    /// `mongodb://user:secret@host/` → `mongodb://user:***@host/`.
    public static func redacting(_ url: String) -> String {
        let characters = Array(url)
        guard let schemeEnd = (0..<max(characters.count - 2, 0)).first(where: { characters[$0] == ":" && characters[$0 + 1] == "/" && characters[$0 + 2] == "/" }) else { return url }
        let start = schemeEnd + 3
        guard let at = characters[start...].firstIndex(of: "@"), let colon = characters[start..<at].firstIndex(of: ":") else { return url }
        return String(characters[..<(colon + 1)]) + "***" + String(characters[at...])
    }
}

/// One driver client, used by one thread at a time.
public final class MongoClient {
    private let pool: MongoClientPool
    let handle: OpaquePointer

    init(pool: MongoClientPool, handle: OpaquePointer) {
        self.pool = pool
        self.handle = handle
    }

    deinit {
        mongoc_client_pool_push(pool.pool, handle)
    }

    /// The database this client works in (the URL's).
    public var databaseName: String { pool.databaseName }

    /// Selects the primary (waiting up to the server selection time-out) and says what
    /// kind of server it is.
    public func primaryKind() throws(MongoError) -> MongoServerKind {
        var error = bson_error_t()
        guard let description = mongoc_client_select_server(handle, true, nil, &error) else { throw MongoError(error) }
        defer { mongoc_server_description_destroy(description) }
        switch String(cString: mongoc_server_description_type(description)) {
        case "Standalone": return .standalone
        case "RSPrimary": return .replicaSetPrimary
        case "Mongos": return .mongos
        case "LoadBalancer": return .loadBalancer
        default: return .other
        }
    }

    /// Runs `command` on this client's database (or `database`) and returns the reply.
    @discardableResult
    public func runCommand(_ command: BSONDocument, database: String? = nil) throws(MongoError) -> BSONDocument {
        let reply = BSONDocument(replyStorage: ())
        var error = bson_error_t()
        guard mongoc_client_write_command_with_opts(handle, database ?? databaseName, command.handle, nil, reply.handle, &error) else {
            throw MongoError(error, reply: reply)
        }
        return reply
    }

    /// A handle on `name` in this client's database.
    public func collection(_ name: String) -> MongoCollection {
        MongoCollection(client: self, handle: mongoc_client_get_collection(handle, databaseName, name))
    }

    /// Starts a logical session (for a transaction).
    public func startSession() throws(MongoError) -> MongoSession {
        var error = bson_error_t()
        guard let session = mongoc_client_start_session(handle, nil, &error) else { throw MongoError(error) }
        return MongoSession(client: self, handle: session)
    }
}

/// A logical session: the `lsid` and `txnNumber` of a multi-document transaction.
public final class MongoSession {
    private let client: MongoClient
    let handle: OpaquePointer

    init(client: MongoClient, handle: OpaquePointer) {
        self.client = client
        self.handle = handle
    }

    deinit {
        mongoc_client_session_destroy(handle)
    }

    /// Starts a transaction that reads a snapshot (read concern `snapshot`, what reads in a
    /// transaction are documented to guarantee) and whose commit waits for a majority of
    /// the replica set.
    public func startTransaction(majorityTimeoutMillis: Int32) throws(MongoError) {
        let options = mongoc_transaction_opts_new()
        let concern = mongoc_write_concern_new()
        let readConcern = mongoc_read_concern_new()
        defer {
            mongoc_read_concern_destroy(readConcern)
            mongoc_write_concern_destroy(concern)
            mongoc_transaction_opts_destroy(options)
        }
        mongoc_write_concern_set_wmajority(concern, majorityTimeoutMillis)
        mongoc_transaction_opts_set_write_concern(options, concern)
        _ = mongoc_read_concern_set_level(readConcern, "snapshot")
        mongoc_transaction_opts_set_read_concern(options, readConcern)
        var error = bson_error_t()
        guard mongoc_client_session_start_transaction(handle, options, &error) else { throw MongoError(error) }
    }

    /// Commits; an error's labels say whether retrying the commit (or the whole
    /// transaction) is safe.
    public func commitTransaction() throws(MongoError) {
        let reply = BSONDocument(replyStorage: ())
        var error = bson_error_t()
        guard mongoc_client_session_commit_transaction(handle, reply.handle, &error) else {
            throw MongoError(error, reply: reply)
        }
    }

    /// Aborts the transaction in progress, if any (errors are ignored: the server aborts
    /// an abandoned transaction by itself).
    public func abortTransaction() {
        guard mongoc_client_session_in_transaction(handle) else { return }
        var error = bson_error_t()
        _ = mongoc_client_session_abort_transaction(handle, &error)
    }

    /// Adds `lsid` (and the transaction fields) to an operation's options.
    func append(to options: BSONDocument) throws(MongoError) {
        var error = bson_error_t()
        guard mongoc_client_session_append(handle, options.handle, &error) else { throw MongoError(error) }
    }
}
