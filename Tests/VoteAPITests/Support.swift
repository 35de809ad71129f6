import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOEmbedded
import RabbitMQ
@testable import VoteAPI
import VoteShared
import VoteStore

/// An application wired like production, but with a publisher that was never started
/// (so the broker counts as down) and a store in a temporary folder.
struct TestApplication {
    static let keyring = try! TokenKeyring(keys: [(1, Array(repeating: 42, count: 32))])
    let application: APIApplication
    let loop = EmbeddedEventLoop()

    init(environment: [String: String] = [:]) throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("paredao-api-\(UUID().uuidString)")
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        var env = [
            "PAREDAO_SQLITE_PATH": folder.appendingPathComponent("votes.sqlite").path,
            "PAREDAO_POLL_FILE": root.appendingPathComponent("config/poll.json").path,
            "PAREDAO_POW_DIFFICULTY": "4",
            "PAREDAO_POW_MAX_DIFFICULTY": "8",
        ]
        env.merge(environment) { $1 }
        let configuration = try APIConfiguration(ConfigurationReader(environment: env))
        let poll = try Poll.load(from: configuration.common.pollFile)
        let publisher = VotePublisher(settings: .init(
            url: AMQPURLForTests.url, queue: "unused", quorum: true, deadLetterQueue: "unused.dead",
            confirmTimeout: .seconds(1), maxVotesPerMessage: 1, maxInFlight: 1, maxQueued: 1
        ))
        let settings = configuration.common
        let totals = TotalsCache(poll: poll, refreshInterval: .milliseconds(10)) { () throws(StoreError) -> any VoteStore in
            try openVoteStore(settings)
        }
        application = APIApplication(configuration: configuration, poll: poll, keyring: Self.keyring.rememberingVerifiedTokens(slots: configuration.verifiedTokenSlots), publisher: publisher, totals: totals)
    }

    /// Sends one request and returns the immediate answer (or runs the loop for a deferred one).
    func send(_ method: HTTPMethod, _ uri: String, body: String? = nil, headers: [(String, String)] = [], peer: String = "127.0.0.1") throws -> (APIResponse, [String: Any]) {
        var httpHeaders = HTTPHeaders(headers)
        if body != nil, !headers.contains(where: { $0.0.lowercased() == "content-type" }) { httpHeaders.add(name: "Content-Type", value: "application/json") }
        let request = APIRequest(method: method, uri: uri, route: Route(uri: uri), headers: httpHeaders, body: body.map { ByteBuffer(string: $0) }, peer: application.peer(address: peer), requestID: "test")
        let response: APIResponse
        switch application.handle(request, on: loop) {
        case .now(let answer): response = answer
        case .later(let future):
            response = try wait(for: future)
        case .afterPublish(let published, let respond):
            response = try wait(for: published.map { Result<Void, any Error>.success(()) }.recover { .failure($0) }.map(respond))
        }
        let object = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] ?? [:]
        return (response, object)
    }

    /// Runs the embedded loop until `future` completes (the publisher completes from its thread).
    private func wait<T>(for future: EventLoopFuture<T>) throws -> T {
        var result: T?
        future.whenSuccess { result = $0 }
        for _ in 0..<500 where result == nil {
            loop.run()
            if result == nil { Thread.sleep(forTimeInterval: 0.01) }
        }
        guard let result else { throw TestFailure("deferred answer never came") }
        return result
    }

    func token(network: String = "127.0.0.1", budget: UInt32 = 200) -> String {
        SessionToken.mint(keyring: Self.keyring, network: ClientNetwork(address: network)!, now: Timestamp.nowMillis() / 1000, lifetimeSeconds: 600, budget: budget).encoded
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

enum AMQPURLForTests {
    static let url = AMQPURL("amqp://guest:guest@127.0.0.1:1/")!
}

extension [String: Any] {
    var errorCode: String? { (self["error"] as? [String: Any])?["code"] as? String }
}
