import Foundation
import Testing
import VoteShared
import VoteStore

extension RealBrokerSuites {
    /// What a producer polling `/total` every 20 s sees.
    @Suite("Totals freshness on a real RabbitMQ")
    struct TotalsFreshnessTests {
        @Test func aSingleReadAfterAnIdlePeriodShowsWhatTheStoreCommitted() async throws {
            let stack = try await TestStack.running(extraEnvironment: ["PAREDAO_TOTALS_REFRESH_MS": "200"])
            defer { stack.stopAll() }
            #expect(try await stack.totals()["total"] as? Int == 0)
            #expect(try await stack.vote("diego", token: stack.token()).status == 202)
            // Watch the store itself, not the API, until the vote is committed.
            let store = try stack.openStore()
            try await waitUntil("the consumer committed the vote", timeout: .seconds(30)) {
                try store.hourlyCounts(pollID: "bbb26-paredao-10").reduce(0) { $0 + $1.votes } == 1
            }
            // The producer comes back after a quiet spell (five refresh intervals) and reads once.
            try await Task.sleep(for: .seconds(1))
            let totals = try await stack.totals()
            #expect(totals["total"] as? Int == 1, "one read after an idle spell sees the committed vote, not the previous read's snapshot")
        }
    }
}
