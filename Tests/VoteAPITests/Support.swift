import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import RabbitMQ
@testable import VoteAPI
import VoteShared
import VoteStore

/// An application wired like production, but with a publisher that was never started
/// (so the broker counts as down) and a store in a temporary folder.
struct TestApplication {
    static let keyring = try! TokenKeyring(keys: [(1, Array(repeating: 42, count: 32))])
    let application: APIApplication

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

    /// Sends one request and returns its answer, waiting for a deferred one. Deferred
    /// answers complete from other threads (the store, the publisher), so they run on a
    /// real event loop, not the embedded one.
    func send(_ method: HTTPMethod, _ uri: String, body: String? = nil, headers: [(String, String)] = [], peer: String = "127.0.0.1") throws -> (APIResponse, [String: Any]) {
        var httpHeaders = HTTPHeaders(headers)
        if body != nil, !headers.contains(where: { $0.0.lowercased() == "content-type" }) { httpHeaders.add(name: "Content-Type", value: "application/json") }
        let request = APIRequest(method: method, uri: uri, route: Route(uri: uri), headers: httpHeaders, body: body.map { ByteBuffer(string: $0) }, peer: application.peer(address: peer), requestID: "test")
        let response: APIResponse
        switch application.handle(request, on: MultiThreadedEventLoopGroup.singleton.next()) {
        case .now(let answer): response = answer
        case .later(let future):
            response = try future.wait()
        case .afterPublish(let published, let respond):
            response = try published.map { Result<Void, any Error>.success(()) }.recover { .failure($0) }.map(respond).wait()
        }
        let object = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] ?? [:]
        return (response, object)
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
