import Foundation
import Testing
import VoteShared
import VoteStore

extension RealBrokerSuites {
    /// Polls as the show runs them, on real processes: two API instances and a consumer
    /// on the real broker and one store.
    @Suite("Polls on a real RabbitMQ")
    struct PollLifecycleIntegrationTests {
        static let adminToken = "produtor:integration-admin-secret-42"
        static let seedPoll = "bbb26-paredao-10"

        func adminCall(_ stack: TestStack, _ method: String, _ path: String, body: String? = nil) async throws -> HTTPClient.Response {
            var headers = ["Authorization": "Bearer \(Self.adminToken)"]
            if body != nil { headers["Content-Type"] = "application/json" }
            return try await stack.http.send(method, stack.baseURL + path, body: body.map { Data($0.utf8) }, headers: headers)
        }

        func vote(_ stack: TestStack, port: Int, _ participant: String) async throws -> HTTPClient.Response {
            try await stack.http.send("POST", "http://127.0.0.1:\(port)/api/v1/votes", body: Data(#"{"participant":"\#(participant)"}"#.utf8),
                                      headers: ["Content-Type": "application/json", "Authorization": "Bearer \(stack.token())"])
        }

        func counted(_ store: any VoteStore, _ poll: String) throws -> Int64 {
            try store.hourlyCounts(pollID: poll).reduce(0) { $0 + $1.votes }
        }

        @Test func votesInFlightAcrossTheCloseCountAndBothInstancesRefuseAfterItThenANewParedaoOpens() async throws {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("paredao-admin-it-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let tokenFile = folder.appendingPathComponent("admin-token")
            try Data((Self.adminToken + "\n").utf8).write(to: tokenFile)
            let stack = try await TestStack.running(extraEnvironment: [
                "PAREDAO_ADMIN_TOKEN_FILE": tokenFile.path, "PAREDAO_POLLS_REFRESH_MS": "200", "PAREDAO_POLL_CLOSE_DELAY_MS": "1000",
            ])
            defer { stack.stopAll() }
            // A second API instance on the same broker and store.
            let secondPort = try TestStack.freePort()
            var secondEnvironment = stack.environment
            secondEnvironment["PAREDAO_API_PORT"] = String(secondPort)
            let second = try ChildProcess(name: "api-2", executable: "VoteAPI", environment: secondEnvironment, folder: stack.folder)
            defer { _ = second.terminate() }
            try await waitUntil("the second API is ready", timeout: .seconds(30)) {
                try await stack.http.send("GET", "http://127.0.0.1:\(secondPort)/readyz").status == 200
            }
            // Votes accepted while the consumer is stopped wait in the queue across the close.
            let consumer = try #require(stack.consumer)
            #expect(consumer.terminate())
            for index in 0..<20 {
                #expect(try await vote(stack, port: index % 2 == 0 ? stack.apiPort : secondPort, "aline").status == 202)
            }
            let close = try await adminCall(stack, "POST", "/api/v1/admin/polls/\(Self.seedPoll)/close")
            #expect(close.status == 200, "close answered \(close.status): \(close.text)")
            let closedAt = try #require(((close.json["poll"] as? [String: Any])?["closedAt"] as? String).flatMap { ISO8601DateFormatter.withFractions.date(from: $0) })
            // After the closing time both instances refuse votes with 409 poll_closed.
            try await waitUntil("the closing time has passed", timeout: .seconds(10)) { Date() > closedAt.addingTimeInterval(0.05) }
            for port in [stack.apiPort, secondPort] {
                let refused = try await vote(stack, port: port, "aline")
                #expect(refused.status == 409 && refused.errorCode == "poll_closed", "port \(port) answered \(refused.status): \(refused.text)")
                let poll = try await stack.http.send("GET", "http://127.0.0.1:\(port)/api/v1/poll")
                #expect((poll.json["poll"] as? [String: Any])?["state"] as? String == "closed")
            }
            // The consumer comes back: the 20 votes accepted before the close count, nothing else.
            try stack.startConsumer()
            let store = try stack.openStore()
            try await waitUntil("the queued votes are counted", timeout: .seconds(30)) { try counted(store, Self.seedPoll) == 20 }
            try await waitUntil("the queue is empty", timeout: .seconds(30)) { try stack.queueDepth() == 0 }
            #expect(try counted(store, Self.seedPoll) == 20)
            let final = try await stack.get("/total?poll=\(Self.seedPoll)")
            try await waitUntil("/total?poll= shows the final result", timeout: .seconds(10)) {
                try await stack.get("/total?poll=\(Self.seedPoll)").json["total"] as? Int == 20
            }
            #expect(final.status == 200)
            // A new paredão with three participants, created and opened through the first
            // instance, is open on the second within seconds, without a restart.
            let participants = #"[{"id":"ana","name":"Ana","photoUrl":"/img/sem-foto.svg"},{"id":"bruno","name":"Bruno"},{"id":"carla","name":"Carla"}]"#
            let created = try await adminCall(stack, "POST", "/api/v1/admin/polls", body: #"{"id":"bbb26-paredao-11","title":"Paredão 11","participants":\#(participants)}"#)
            #expect(created.status == 201, "create answered \(created.status): \(created.text)")
            let opened = try await adminCall(stack, "POST", "/api/v1/admin/polls/bbb26-paredao-11/open")
            #expect(opened.status == 200, "open answered \(opened.status): \(opened.text)")
            try await waitUntil("the second instance shows the new paredão", timeout: .seconds(5)) {
                let poll = try await stack.http.send("GET", "http://127.0.0.1:\(secondPort)/api/v1/poll")
                return (poll.json["poll"] as? [String: Any])?["id"] as? String == "bbb26-paredao-11"
            }
            #expect(try await vote(stack, port: secondPort, "carla").status == 202)
            #expect(try await vote(stack, port: secondPort, "aline").status == 422)
            try await waitUntil("the vote in the new paredão is counted", timeout: .seconds(30)) { try counted(store, "bbb26-paredao-11") == 1 }
            #expect(try counted(store, Self.seedPoll) == 20)
            // Every admin action is in the audit log, with who and from where.
            let audit = try await adminCall(stack, "GET", "/api/v1/admin/audit")
            let actions = (audit.json["entries"] as? [[String: Any]] ?? []).compactMap { $0["action"] as? String }
            #expect(actions == ["open", "create", "close"])
        }
    }
}

extension ISO8601DateFormatter {
    /// `2026-11-22T13:00:00.123Z`.
    static var withFractions: ISO8601DateFormatter {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }
}
