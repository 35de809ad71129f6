import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import MongoDB
import RabbitMQ
import Testing
import VoteShared
import VoteStore

/// What the integration suite needs from its environment (see `./run.sh test`).
enum IntegrationEnvironment {
    static let environment = ProcessInfo.processInfo.environment
    /// The broker the suite runs against.
    static let amqpURL = environment["PAREDAO_TEST_AMQP_URL"]
    /// A command taking `stop` or `start` that stops and restarts that broker.
    static let brokerControl = environment["PAREDAO_TEST_BROKER_CTL"]
    /// Where the test broker's role users have their passwords (scripts/test.sh exports it).
    static let secretsDir = environment["PAREDAO_SECRETS_DIR"]
    static var isConfigured: Bool { amqpURL != nil && brokerControl != nil }
    /// A real MongoDB (e.g. `mongodb://127.0.0.1:27017/?replicaSet=rs0`): when set, every
    /// stack stores there (PAREDAO_STORE=mongodb) instead of in SQLite.
    static let mongoURL = environment["MONGO_URL"].flatMap { $0.isEmpty ? nil : $0 }
    static var isCI: Bool { environment["CI"] == "true" }

    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static var binaryFolder: URL {
        if let folder = environment["PAREDAO_BIN_DIR"] { return URL(fileURLWithPath: folder) }
        return packageRoot.appendingPathComponent(".build/debug")
    }
}

/// The integration suites share one broker, and one of their tests stops it: they run one
/// at a time (`.serialized` reaches every nested suite), never beside each other.
@Suite("Integration on a real RabbitMQ", .serialized, .enabled(if: IntegrationEnvironment.isConfigured, "needs PAREDAO_TEST_AMQP_URL and PAREDAO_TEST_BROKER_CTL (./run.sh test sets them)"))
struct RealBrokerSuites {}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A child process (VoteAPI or VoteConsumer) with its output in a log file.
///
/// Spawned with posix_spawn and reaped with waitpid: Foundation's `Process` can miss the
/// exit of a child whose own children outlive it (the broker script does that).
final class ChildProcess: @unchecked Sendable {
    let name: String
    let logFile: URL
    let pid: pid_t

    init(name: String, executable: String, arguments: [String] = [], environment: [String: String], folder: URL) throws {
        self.name = name
        logFile = folder.appendingPathComponent("\(name).log")
        let path = IntegrationEnvironment.binaryFolder.appendingPathComponent(executable).path
        pid = try spawn([path] + arguments, environment: environment, output: logFile.path)
    }

    init(name: String, pid: pid_t, logFile: URL) {
        self.name = name
        self.pid = pid
        self.logFile = logFile
    }

    /// The wait status once the process exited.
    private(set) var exitStatus: Int32?

    /// SIGKILL: the process gets no chance to finish anything.
    func kill() {
        Foundation.kill(pid, SIGKILL)
        _ = reap(within: .seconds(10))
    }

    /// SIGTERM, then wait up to `deadline` for a clean exit; a process that hangs is killed.
    /// Returns whether it exited by itself.
    @discardableResult
    func terminate(deadline: Duration = .seconds(15)) -> Bool {
        guard exitStatus == nil else { return true }
        Foundation.kill(pid, SIGTERM)
        if reap(within: deadline) { return true }
        kill()
        return false
    }

    /// Waits up to `timeout` for the process to exit; returns whether it did.
    func reap(within timeout: Duration) -> Bool {
        if exitStatus != nil { return true }
        let deadline = ContinuousClock.now + timeout
        var status: Int32 = 0
        while ContinuousClock.now < deadline {
            if waitpid(pid, &status, WNOHANG) == pid {
                exitStatus = status
                return true
            }
            usleep(10_000)
        }
        return false
    }

    /// Whether it exited with status 0 (and not by a signal).
    var exitedCleanly: Bool { exitStatus.map { $0 & 0x7f == 0 && ($0 >> 8) & 0xff == 0 } ?? false }

    var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }
}

/// Starts `arguments` with `environment`, standard output and error appended to `output`.
func spawn(_ arguments: [String], environment: [String: String], output: String) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
        for pointer in argv { free(pointer) }
        for pointer in envp { free(pointer) }
    }
    var pid: pid_t = 0
    let status = posix_spawn(&pid, arguments[0], &actions, nil, argv, envp)
    guard status == 0 else { throw HarnessError("cannot start \(arguments[0]): error \(status)") }
    return pid
}

/// One API and one consumer on the test broker, with their own queue, store and ports.
final class TestStack: @unchecked Sendable {
    let folder: URL
    let queue: String
    let apiPort: Int
    let keyring: TokenKeyring
    let environment: [String: String]
    private(set) var api: ChildProcess?
    private(set) var consumer: ChildProcess?
    let http = HTTPClient()

    init(extraEnvironment: [String: String] = [:]) throws {
        guard let amqpURL = IntegrationEnvironment.amqpURL else { throw HarnessError("PAREDAO_TEST_AMQP_URL is not set") }
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("paredao-it-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        queue = "votes-it-\(UUID().uuidString.prefix(8).lowercased())"
        apiPort = try Self.freePort()
        let secret = TokenKeyring.generateSecret()
        keyring = try TokenKeyring(parsing: "1:\(secret)", source: "test")
        var environment = ProcessInfo.processInfo.environment
        environment.merge([
            "PAREDAO_AMQP_URL": amqpURL,
            "PAREDAO_QUEUE": queue,
            "PAREDAO_SQLITE_PATH": folder.appendingPathComponent("votes.sqlite").path,
            "PAREDAO_POLL_FILE": IntegrationEnvironment.packageRoot.appendingPathComponent("config/poll.json").path,
            "PAREDAO_TOKEN_KEYS": "1:\(secret)",
            "PAREDAO_API_PORT": String(apiPort),
            "PAREDAO_API_METRICS_PORT": "0",
            "PAREDAO_CONSUMER_METRICS_PORT": "0",
            "PAREDAO_SESSION_BUDGET": "1000000",
            "PAREDAO_VOTE_RATE": "1000000",
            "PAREDAO_VOTE_BURST": "1000000",
            "PAREDAO_POW_DIFFICULTY": "8",
            "PAREDAO_POW_MAX_DIFFICULTY": "10",
            "PAREDAO_TOTALS_REFRESH_MS": "200",
            "PAREDAO_CONFIRM_TIMEOUT_MS": "3000",
            "PAREDAO_LOG_LEVEL": "info",
        ]) { $1 }
        // With MONGO_URL (a real MongoDB), every stack stores in a database of its own there.
        if let mongoURL = IntegrationEnvironment.mongoURL {
            environment["PAREDAO_STORE"] = "mongodb"
            environment["PAREDAO_MONGO_URL"] = MongoClientPool.url(mongoURL, withDatabase: "paredao_it_\(queue.suffix(8))")
        }
        environment.merge(extraEnvironment) { $1 }
        self.environment = environment
    }

    var baseURL: String { "http://127.0.0.1:\(apiPort)" }

    /// The store the stack's consumer writes (SQLite in its folder, or MongoDB).
    func openStore() throws -> any VoteStore {
        try StoreConfiguration(
            kind: environment["PAREDAO_STORE"] ?? "sqlite", sqlitePath: environment["PAREDAO_SQLITE_PATH"] ?? "",
            mongoURL: environment["PAREDAO_MONGO_URL"] ?? ""
        ).open()
    }

    /// A stack whose consumer runs and whose API is ready (the caller stops it).
    static func running(extraEnvironment: [String: String] = [:]) async throws -> TestStack {
        let stack = try TestStack(extraEnvironment: extraEnvironment)
        try stack.startConsumer()
        do {
            try await stack.startAPI()
        } catch {
            stack.stopAll()
            throw error
        }
        return stack
    }

    func startConsumer() throws {
        consumer = try ChildProcess(name: "consumer", executable: "VoteConsumer", environment: environment, folder: folder)
    }

    func startAPI() async throws {
        api = try ChildProcess(name: "api", executable: "VoteAPI", environment: environment, folder: folder)
        try await waitUntil("VoteAPI is ready", timeout: .seconds(30)) { try await self.get("/readyz").status == 200 }
    }

    func stopAll() {
        api?.terminate()
        consumer?.terminate()
    }

    /// A session token for 127.0.0.1, signed with the stack's key.
    func token() -> String {
        SessionToken.mint(keyring: keyring, network: ClientNetwork(address: "127.0.0.1")!, now: Timestamp.nowMillis() / 1000, lifetimeSeconds: 3600, budget: 1_000_000).encoded
    }

    func get(_ path: String) async throws -> HTTPClient.Response {
        try await http.send("GET", baseURL + path)
    }

    func vote(_ participant: String, token: String?, voteID: String? = nil) async throws -> HTTPClient.Response {
        var body = #"{"participant":"\#(participant)""#
        if let voteID { body += #","voteId":"\#(voteID)""# }
        body += "}"
        var headers = ["Content-Type": "application/json"]
        if let token { headers["Authorization"] = "Bearer \(token)" }
        return try await http.send("POST", baseURL + "/api/v1/votes", body: Data(body.utf8), headers: headers)
    }

    /// The totals as producers see them.
    func totals() async throws -> [String: Any] {
        let response = try await get("/total")
        guard response.status == 200 else { throw HarnessError("/total answered \(response.status)") }
        return response.json
    }

    /// Ready messages in the stack's queue, asked of the broker itself.
    func queueDepth() throws -> UInt32 {
        guard let url = AMQPURL(IntegrationEnvironment.amqpURL ?? "") else { throw HarnessError("bad PAREDAO_TEST_AMQP_URL") }
        return try AMQPConnection(url: url).messageCount(ofQueue: queue)
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw HarnessError("no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// A plain TCP connection to 127.0.0.1, for requests a URL session will not send.
final class RawConnection {
    private let descriptor: Int32

    init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else {
            close(descriptor)
            throw HarnessError("cannot connect to 127.0.0.1:\(port)")
        }
    }

    deinit { close(descriptor) }

    /// This end's port.
    var localPort: Int {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) == 0 }
        }
        return ok ? Int(UInt16(bigEndian: address.sin_port)) : 0
    }

    /// Whether the server (listening on `serverPort`) has read everything this connection
    /// sent: its socket's receive queue is empty (/proc/net/tcp, IPv4 loopback).
    func serverHasReadEverything(serverPort: Int) -> Bool {
        // procfs files report a size of 0, so read until the end rather than by size.
        guard let handle = FileHandle(forReadingAtPath: "/proc/net/tcp"),
              let data = try? handle.readToEnd(), let table = String(data: data, encoding: .utf8) else { return false }
        try? handle.close()
        let local = String(format: ":%04X", serverPort)
        let remote = String(format: ":%04X", localPort)
        for line in table.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ")
            guard fields.count > 4, fields[1].hasSuffix(local), fields[2].hasSuffix(remote) else { continue }
            // tx_queue:rx_queue in hex; rx_queue is what the server has not read yet.
            return fields[4].split(separator: ":").last.map { Int($0, radix: 16) == 0 } ?? false
        }
        return false
    }

    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        guard bytes.withUnsafeBytes({ Foundation.send(descriptor, $0.baseAddress, $0.count, 0) }) == bytes.count else {
            throw HarnessError("send failed")
        }
    }
}

/// Runs the broker control command (`stop` / `start`), killed if it takes over 2 minutes.
func controlBroker(_ action: String) throws {
    guard let command = IntegrationEnvironment.brokerControl else { throw HarnessError("PAREDAO_TEST_BROKER_CTL is not set") }
    let log = FileManager.default.temporaryDirectory.appendingPathComponent("paredao-broker-control.log")
    let control = ChildProcess(name: "broker-\(action)", pid: try spawn(["/bin/sh", "-c", "\(command) \(action)"], environment: ProcessInfo.processInfo.environment, output: log.path), logFile: log)
    guard control.reap(within: .seconds(120)) else {
        control.kill()
        throw HarnessError("broker \(action) hung for 2 minutes and was killed; see \(log.path)")
    }
    guard control.exitedCleanly else { throw HarnessError("broker \(action) failed (wait status \(control.exitStatus ?? -1)); see \(log.path)") }
}

/// Polls `condition` until it holds or `timeout` passes.
func waitUntil(_ what: String, timeout: Duration, every interval: Duration = .milliseconds(100), _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if (try? await condition()) == true { return }
        try await Task.sleep(for: interval)
    }
    throw HarnessError("timed out after \(timeout) waiting until \(what)")
}

/// A small HTTP client on URLSession with enough connections for concurrent votes.
final class HTTPClient: Sendable {
    struct Response: Sendable {
        var status: Int
        var headers: [String: String]
        var body: Data
        var json: [String: Any] { ((try? JSONSerialization.jsonObject(with: body)) as? [String: Any]) ?? [:] }
        var text: String { String(decoding: body, as: UTF8.self) }
        var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
    }

    private let session: URLSession

    init() {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpMaximumConnectionsPerHost = 64
        configuration.timeoutIntervalForRequest = 30
        session = URLSession(configuration: configuration)
    }

    func send(_ method: String, _ url: String, body: Data? = nil, headers: [String: String] = [:]) async throws -> Response {
        guard let target = URL(string: url) else { throw HarnessError("bad URL \(url)") }
        var request = URLRequest(url: target)
        request.httpMethod = method
        request.httpBody = body
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let (data, response) = try await session.data(for: request)
        guard let http = response as? HTTPURLResponse else { throw HarnessError("not an HTTP response") }
        var fields: [String: String] = [:]
        for (name, value) in http.allHeaderFields { fields["\(name)".lowercased()] = "\(value)" }
        return Response(status: http.statusCode, headers: fields, body: data)
    }
}
