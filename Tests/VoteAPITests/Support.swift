import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
@testable import VoteAPI
import VoteShared
import VoteStore

/// An application built by `buildAPIApplication` like production, with a scripted
/// publisher (by default the broker is down) and the real totals cache on a store in a
/// temporary folder.
struct TestApplication {
    static let keyring = try! TokenKeyring(keys: [(1, Array(repeating: 42, count: 32))])
    static let adminToken = "produtor:test-admin-secret-0123456789"
    /// An admin credentials file shared by every test application.
    static let adminTokenFile: String = {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("paredao-admin-\(UUID().uuidString)").path
        FileManager.default.createFile(atPath: path, contents: Data((adminToken + "\n").utf8))
        return path
    }()
    let application: APIApplication
    let publisher: ScriptedPublisher

    init(environment: [String: String] = [:], publisher: ScriptedPublisher = ScriptedPublisher(outcome: .failure(.unavailable))) throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("paredao-api-\(UUID().uuidString)")
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        var env = [
            "PAREDAO_SQLITE_PATH": folder.appendingPathComponent("votes.sqlite").path,
            "PAREDAO_POLL_FILE": root.appendingPathComponent("config/poll.json").path,
            "PAREDAO_TOKEN_KEYS": "1:" + Data(repeating: 42, count: 32).base64EncodedString(),
            "PAREDAO_POW_DIFFICULTY": "4",
            "PAREDAO_POW_MAX_DIFFICULTY": "8",
            "PAREDAO_ADMIN_TOKEN_FILE": Self.adminTokenFile,
        ]
        env.merge(environment) { $1 }
        let configuration = try APIConfiguration(environment: env)
        let totals = TotalsBoard(refreshInterval: .milliseconds(10), store: configuration.store)
        let polls = try buildPollDirectory(configuration: configuration)
        polls.loadBlocking()
        self.publisher = publisher
        application = try buildAPIApplication(configuration: configuration, polls: polls, publisher: publisher, totals: totals)
    }

    /// Sends one request and returns its answer, waiting for a deferred one. Deferred
    /// answers complete from other threads (the store, the publisher), so they run on a
    /// real event loop, not the embedded one. A `peer` of `unix` is a connection on the
    /// proxy's unix socket.
    func send(_ method: HTTPMethod, _ uri: String, body: String? = nil, headers: [(String, String)] = [], peer: String = "127.0.0.1") throws -> (APIResponse, [String: Any]) {
        var httpHeaders = HTTPHeaders(headers)
        if body != nil, !headers.contains(where: { $0.0.lowercased() == "content-type" }) { httpHeaders.add(name: "Content-Type", value: "application/json") }
        let request = APIRequest(method: method, uri: uri, route: Route(uri: uri), headers: httpHeaders, body: body.map { ByteBuffer(string: $0) }, peer: application.peer(address: peer, onProxySocket: peer == "unix"), requestID: "test")
        let response: APIResponse
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        switch application.handle(request, on: eventLoop) {
        case .now(let answer): response = answer
        case .later(let future):
            response = try future.wait()
        case .publish(let admitted):
            // As the connection does it: publish on the event loop, answer when settled.
            let ticket = AnswerTicket(admitted.vote, eventLoop: eventLoop) { [application] in application.answer(admitted, settled: $0) }
            try eventLoop.submit { application.publisher.publish(ticket) }.wait()
            response = try ticket.answer.futureResult.wait()
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

/// A ticket that turns the vote's fate into its answer, as the connection would.
final class AnswerTicket: PublishTicket {
    let vote: Vote
    let eventLoop: any EventLoop
    let answer: EventLoopPromise<APIResponse>
    private let respond: @Sendable (Result<Void, PublishError>) -> APIResponse

    init(_ vote: Vote, eventLoop: any EventLoop, respond: @escaping @Sendable (Result<Void, PublishError>) -> APIResponse) {
        self.vote = vote
        self.eventLoop = eventLoop
        self.respond = respond
        answer = eventLoop.makePromise()
    }

    func settle(_ result: Result<Void, PublishError>) {
        eventLoop.preconditionInEventLoop()
        answer.succeed(respond(result))
    }
}

/// A publisher whose every vote gets `outcome` (at once, or when `release` is called while
/// `holding`), and which remembers what it was given.
final class ScriptedPublisher: VotePublishing {
    private struct State {
        var outcome: Result<Void, PublishError>
        var published: [Vote] = []
        var held: [any PublishTicket] = []
        var holding = false
    }

    private let state: Mutex<State>

    init(outcome: Result<Void, PublishError>, holding: Bool = false) {
        state = Mutex(State(outcome: outcome, holding: holding))
    }

    var isConnected: Bool {
        state.withLock { if case .failure(.unavailable) = $0.outcome { return false } else { return true } }
    }

    var isBlocked: Bool {
        state.withLock { if case .failure(.blocked) = $0.outcome { return true } else { return false } }
    }

    var published: [Vote] { state.withLock { $0.published } }

    func setOutcome(_ outcome: Result<Void, PublishError>) {
        state.withLock { $0.outcome = outcome }
    }

    func publish(_ ticket: any PublishTicket) {
        let outcome = state.withLock { state -> Result<Void, PublishError>? in
            state.published.append(ticket.vote)
            if state.holding {
                state.held.append(ticket)
                return nil
            }
            return state.outcome
        }
        if let outcome { ticket.settle(outcome) }
    }

    /// Settles the votes held so far with the current outcome, each on its event loop.
    func release() {
        let (held, outcome) = state.withLock { state in
            defer { state.held = [] }
            return (state.held, state.outcome)
        }
        for ticket in held { ticket.eventLoop.execute { ticket.settle(outcome) } }
    }
}

extension [String: Any] {
    var errorCode: String? { (self["error"] as? [String: Any])?["code"] as? String }
}
