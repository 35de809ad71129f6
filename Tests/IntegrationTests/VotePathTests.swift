import Foundation
import Synchronization
import RabbitMQ
import Testing
import VoteShared

/// Fails the run in CI when the integration suite below would be skipped.
@Test("Integration environment is configured when CI=true")
func integrationEnvironmentIsConfiguredInCI() {
    if IntegrationEnvironment.isCI {
        #expect(IntegrationEnvironment.isConfigured, "CI=true but PAREDAO_TEST_AMQP_URL / PAREDAO_TEST_BROKER_CTL are missing: run the tests with ./run.sh test")
    }
}

/// What a batch of votes over HTTP came back with.
struct VoteTally: Sendable {
    var accepted: [String: Int] = [:]
    /// Accepted votes per UTC hour ("2026-11-22T13:00:00Z") and participant.
    var acceptedByHour: [String: [String: Int]] = [:]
    var statuses: [Int: Int] = [:]
    var acceptedCount: Int { accepted.values.reduce(0, +) }

    mutating func record(_ participant: String, _ response: HTTPClient.Response) {
        statuses[response.status, default: 0] += 1
        guard response.status == 202, let vote = response.json["vote"] as? [String: Any], let acceptedAt = vote["acceptedAt"] as? String else { return }
        accepted[participant, default: 0] += 1
        acceptedByHour[String(acceptedAt.prefix(13)) + ":00:00Z", default: [:]][participant, default: 0] += 1
    }
}

/// Posts `count` votes with at most `concurrency` in flight; `progress` sees the running count of 202s.
func postVotes(_ count: Int, concurrency: Int, stack: TestStack, token: String, participant: @Sendable @escaping (Int) -> String, progress: Progress? = nil) async -> VoteTally {
    await withTaskGroup(of: (String, HTTPClient.Response?).self) { group in
        var tally = VoteTally()
        var next = 0
        func launch() {
            guard next < count else { return }
            let index = next
            next += 1
            group.addTask {
                let who = participant(index)
                return (who, try? await stack.vote(who, token: token))
            }
        }
        for _ in 0..<concurrency { launch() }
        for await (who, response) in group {
            if let response {
                tally.record(who, response)
                if response.status == 202 { progress?.count.add(1, ordering: .relaxed) }
            } else {
                tally.statuses[0, default: 0] += 1
            }
            launch()
        }
        return tally
    }
}

/// A running count shared with the task that posts votes.
final class Progress: Sendable {
    let count = Atomic<Int>(0)
}

/// Skewed on purpose so a mix-up between participants shows.
@Sendable func skewedParticipant(_ index: Int) -> String {
    switch index % 10 {
    case 0..<5: "aline"
    case 5..<8: "diego"
    default: "camila"
    }
}

/// Waits until the store's total reaches `expected` and the queue is empty, then checks it
/// stays there over three more snapshots read from the store after that.
func expectTotalsSettle(_ stack: TestStack, at expected: Int, timeout: Duration = .seconds(90)) async throws -> [String: Any] {
    try await waitUntil("the total reaches \(expected) and the queue is empty", timeout: timeout, every: .milliseconds(250)) {
        let counted = try await stack.totals()["total"] as? Int ?? -1
        return try counted >= expected && stack.queueDepth() == 0
    }
    var snapshots: [String] = []
    var totals: [String: Any] = [:]
    try await waitUntil("three more snapshots are read", timeout: .seconds(30), every: .milliseconds(100)) {
        totals = try await stack.totals()
        let asOf = totals["asOf"] as? String ?? ""
        if snapshots.last != asOf { snapshots.append(asOf) }
        #expect(totals["total"] as? Int == expected, "votes counted more than once")
        return snapshots.count > 3
    }
    return totals
}

func votesByParticipant(_ totals: [String: Any]) -> [String: Int] {
    var result: [String: Int] = [:]
    for entry in totals["participants"] as? [[String: Any]] ?? [] {
        if let id = entry["id"] as? String { result[id] = entry["votes"] as? Int ?? -1 }
    }
    return result
}

func votesByHour(_ totals: [String: Any]) -> [String: [String: Int]] {
    var result: [String: [String: Int]] = [:]
    for hour in totals["hours"] as? [[String: Any]] ?? [] {
        guard let name = hour["hour"] as? String, let votes = hour["votes"] as? [String: Int] else { continue }
        result[name] = votes.filter { $0.value > 0 }
    }
    return result
}

extension RealBrokerSuites {
    @Suite("Vote path on a real RabbitMQ")
    struct VotePathTests {
        @Test func tenThousandVotesAreCountedOverallPerParticipantAndPerHour() async throws {
            let stack = try await TestStack.running()
            defer { stack.stopAll() }
            let tally = await postVotes(10_000, concurrency: 32, stack: stack, token: stack.token(), participant: skewedParticipant)
            #expect(tally.statuses == [202: 10_000])
            let totals = try await expectTotalsSettle(stack, at: tally.acceptedCount)
            #expect(votesByParticipant(totals) == tally.accepted)
            #expect(votesByHour(totals) == tally.acceptedByHour)
            let hours = totals["hours"] as? [[String: Any]] ?? []
            #expect(hours.reduce(0) { $0 + ($1["total"] as? Int ?? 0) } == 10_000)
            let shares = (totals["participants"] as? [[String: Any]] ?? []).compactMap { $0["percentage"] as? Double }
            #expect(abs(shares.reduce(0, +) - 100) < 0.05)
        }

        @Test func aRetriedClickWithTheSameVoteIdIsCountedOnce() async throws {
            let stack = try await TestStack.running()
            defer { stack.stopAll() }
            let token = stack.token()
            let click = UUID().uuidString
            for _ in 0..<3 {
                #expect(try await stack.vote("diego", token: token, voteID: click).status == 202)
            }
            #expect(try await stack.vote("camila", token: token).status == 202)
            let totals = try await expectTotalsSettle(stack, at: 2)
            #expect(votesByParticipant(totals) == ["aline": 0, "diego": 1, "camila": 1])
        }

        @Test func aConsumerKilledMidStreamStillCountsEveryAcceptedVoteExactlyOnce() async throws {
            let stack = try await TestStack.running(extraEnvironment: ["PAREDAO_CONSUMER_BATCH_SIZE": "200", "PAREDAO_CONSUMER_BATCH_MS": "20"])
            defer { stack.stopAll() }
            let accepted = Progress()
            let token = stack.token()
            let sender = Task { await postVotes(6000, concurrency: 16, stack: stack, token: token, participant: skewedParticipant, progress: accepted) }
            try await waitUntil("1,500 votes were accepted", timeout: .seconds(120)) { accepted.count.load(ordering: .relaxed) >= 1500 }
            let killedConsumer = try #require(stack.consumer)
            killedConsumer.kill()
            let acceptedAtKill = accepted.count.load(ordering: .relaxed)
            try stack.startConsumer()
            let tally = await sender.value
            #expect(acceptedAtKill < tally.acceptedCount, "the consumer must die while votes are still flowing")
            #expect(tally.statuses == [202: 6000])
            let totals = try await expectTotalsSettle(stack, at: tally.acceptedCount)
            #expect(votesByParticipant(totals) == tally.accepted)
            #expect(votesByHour(totals) == tally.acceptedByHour)
        }

        @Test func underLoadVotesShareAMQPMessagesAndEachIsStillCountedOnce() async throws {
            // Linger at any rate, 5 ms: 32 voters at once must share messages.
            let metricsPort = try TestStack.freePort()
            let stack = try await TestStack.running(extraEnvironment: [
                "PAREDAO_PUBLISH_LINGER_ABOVE": "0", "PAREDAO_PUBLISH_LINGER_US": "5000", "PAREDAO_API_METRICS_PORT": String(metricsPort),
            ])
            defer { stack.stopAll() }
            let tally = await postVotes(3000, concurrency: 32, stack: stack, token: stack.token(), participant: skewedParticipant)
            #expect(tally.statuses == [202: 3000])
            let totals = try await expectTotalsSettle(stack, at: 3000)
            #expect(votesByParticipant(totals) == tally.accepted)
            let metrics = try await stack.http.send("GET", "http://127.0.0.1:\(metricsPort)/metrics").text
            let messages = metrics.split(separator: "\n").first { $0.hasPrefix("paredao_publish_messages_total ") }
                .flatMap { Double($0.split(separator: " ").last ?? "") }
            let published = try #require(messages, "the API exports paredao_publish_messages_total")
            #expect(published >= 3000 / 512, "at most 512 votes per message")
            #expect(published <= 3000 / 4, "votes are packed: \(Int(published)) messages for 3,000 votes")
        }

        /// Each kind of poison message — from anyone who can publish to the queue — is
        /// dead-lettered with an ERROR line and counts nothing, and counting goes on.
        @Test func everyKindOfPoisonMessageIsDeadLetteredAndCountsNothing() async throws {
            let stack = try await TestStack.running()
            defer { stack.stopAll() }
            #expect(try await stack.vote("aline", token: stack.token()).status == 202)
            let url = try #require(AMQPURL(IntegrationEnvironment.amqpURL ?? ""))
            func poison(_ poll: String = "bbb26-paredao-10", _ participant: String = "aline", at millis: Int64) -> [UInt8] {
                VoteMessage.encode([Vote(id: .random(), pollID: poll, participantID: participant, acceptedAtMillis: millis)])
            }
            let now = Timestamp.nowMillis()
            let kinds: [(String, [UInt8])] = [
                ("undecodable", Array(#"{"participant":"aline"}"#.utf8)),
                ("accepted_at", poison(at: Int64.min)),
                ("accepted_at", poison(at: -99_999_999_999_999)),  // year −1199
                ("accepted_at", poison(at: Int64.max)),
                ("unknown_poll", poison("another-poll", at: now)),
                ("unknown_participant", poison("bbb26-paredao-10", "boninho", at: now)),
            ]
            let publisher = try AMQPConnection(url: url)
            for (_, body) in kinds {
                try body.withUnsafeBytes { try publisher.publish(to: stack.queue, tag: 1, body: $0) }
            }
            try await waitUntil("every poison message reaches the dead-letter queue", timeout: .seconds(20)) {
                try AMQPConnection(url: url).messageCount(ofQueue: stack.queue + ".dead") == UInt32(kinds.count)
            }
            #expect(try stack.queueDepth() == 0)
            let errorLines = stack.consumer?.log.split(separator: "\n").filter { $0.contains("\"level\":\"ERROR\"") && $0.contains("dead-letter") } ?? []
            #expect(errorLines.map { line in kinds.map(\.0).first { line.contains("\"reason\":\"\($0)\"") } ?? "?" } == kinds.map(\.0), "one ERROR line with its reason per poison message")
            #expect(try await stack.vote("camila", token: stack.token()).status == 202)
            let totals = try await expectTotalsSettle(stack, at: 2)
            #expect(votesByParticipant(totals) == ["aline": 1, "diego": 0, "camila": 1])
            #expect(totals["hours"].map { "\($0)" }?.contains("1969") == false)
        }

        @Test func withTheBrokerStoppedVotesGet503AndReadinessFailsUntilItIsBack() async throws {
            let stack = try await TestStack.running()
            defer { stack.stopAll() }
            let token = stack.token()
            #expect(try await stack.vote("aline", token: token).status == 202)

            try controlBroker("stop")
            var restarted = false
            defer { if !restarted { try? controlBroker("start") } }
            try await waitUntil("/readyz fails", timeout: .seconds(20)) { try await stack.get("/readyz").status == 503 }
            let refused = try await stack.vote("aline", token: token)
            #expect(refused.status == 503)
            #expect(["broker_unavailable", "broker_timeout"].contains(refused.errorCode ?? ""))
            #expect(refused.headers["retry-after"] != nil)
            #expect(try await stack.get("/healthz").status == 200)

            try controlBroker("start")
            restarted = true
            try await waitUntil("/readyz succeeds again", timeout: .seconds(60)) { try await stack.get("/readyz").status == 200 }
            try await waitUntil("a vote is accepted again", timeout: .seconds(30)) { try await stack.vote("camila", token: token).status == 202 }
            let totals = try await expectTotalsSettle(stack, at: 2)
            #expect(votesByParticipant(totals) == ["aline": 1, "diego": 0, "camila": 1])
        }
    }
}
