import Foundation
import Testing

extension RealBrokerSuites {
    /// The processes as an operator runs them: flags are checked, SIGTERM goes through the
    /// service group and ends the process cleanly.
    @Suite("Processes on a real RabbitMQ")
    struct ProcessLifecycleTests {
        @Test func anUnknownFlagExits2WithTheUsage() throws {
            for executable in ["VoteAPI", "VoteConsumer"] {
                let folder = FileManager.default.temporaryDirectory.appendingPathComponent("paredao-flags-\(UUID().uuidString.prefix(8))")
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                let process = try ChildProcess(name: executable, executable: executable, arguments: ["--bogus"], environment: [:], folder: folder)
                #expect(process.reap(within: .seconds(10)), "\(executable) --bogus exits at once")
                #expect(process.exitStatus.map { ($0 >> 8) & 0xff } == 2)
                #expect(process.log.contains("Unknown option '--bogus'"))
                #expect(process.log.contains("Usage: \(executable)"))
            }
        }

        @Test func sigtermStopsBothServicesCleanly() async throws {
            let stack = try await TestStack.running()
            defer { stack.stopAll() }
            #expect(try await stack.vote("aline", token: stack.token()).status == 202)
            _ = try await expectTotalsSettle(stack, at: 1)
            for process in [stack.api, stack.consumer].compactMap({ $0 }) {
                #expect(process.terminate(deadline: .seconds(15)), "\(process.name) ends by itself after SIGTERM")
                #expect(process.exitedCleanly, "\(process.name) exits 0")
                #expect(process.log.contains(#""message":"Shutting down""#) && process.log.contains("SIGTERM"), "\(process.name) logs the signal")
            }
            #expect(stack.api?.log.contains("Publisher stopped") == true)
            #expect(stack.consumer?.log.contains("Consumer stopped") == true)
        }

        /// Votes waiting for their confirm when SIGTERM arrives are finished (202), not cut off
        /// (503): the HTTP service drains before the publisher stops.
        @Test func sigtermLetsVotesWaitingForTheirConfirmFinish() async throws {
            // Every vote waits 100 ms in the publisher's mailbox: they are in flight when the signal comes.
            let stack = try await TestStack.running(extraEnvironment: ["PAREDAO_PUBLISH_LINGER_ABOVE": "0", "PAREDAO_PUBLISH_LINGER_US": "100000"])
            defer { stack.stopAll() }
            let token = stack.token()
            #expect(try await stack.vote("aline", token: token).status == 202)
            let api = try #require(stack.api)
            let votes = Task { await postVotes(40, concurrency: 40, stack: stack, token: token, participant: skewedParticipant) }
            try await Task.sleep(for: .milliseconds(30))
            #expect(api.terminate(deadline: .seconds(15)), "VoteAPI ends by itself after SIGTERM")
            #expect(api.exitedCleanly)
            let tally = await votes.value
            #expect(tally.statuses[503] == nil, "no vote in flight was cut off with a 503: \(tally.statuses)")
            #expect(tally.acceptedCount > 0, "votes were in flight at the signal: \(tally.statuses)")
            let draining = api.log.split(separator: "\n").first { $0.contains("Draining connections") } ?? ""
            #expect(!draining.contains(#""connections":"0""#), "connections were open at the signal")
            #expect(api.log.contains("Connections drained"))
            try await stack.startAPI()
            _ = try await expectTotalsSettle(stack, at: tally.acceptedCount + 1)
        }

        /// A drain that cannot finish (a client stuck in the middle of its body) keeps the
        /// API up until its deadline; a second SIGTERM ends it at once.
        @Test func aSecondSignalExitsAtOnce() async throws {
            let stack = try await TestStack.running(extraEnvironment: ["PAREDAO_DRAIN_SECONDS": "60", "PAREDAO_BODY_TIMEOUT_SECONDS": "120"])
            defer { stack.stopAll() }
            let api = try #require(stack.api)
            let stuck = try RawConnection(port: stack.apiPort)
            try stuck.send("POST /api/v1/votes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
            // The drain waits only for a request that has begun: wait until the API has read
            // the stuck request's bytes before the first signal.
            try await waitUntil("the API read the stuck request", timeout: .seconds(10)) { stuck.serverHasReadEverything(serverPort: stack.apiPort) }
            kill(api.pid, SIGTERM)
            try await waitUntil("the drain started", timeout: .seconds(10)) { api.log.contains("Draining connections") }
            #expect(!api.reap(within: .milliseconds(500)), "the drain waits for the stuck request")
            let second = ContinuousClock.now
            kill(api.pid, SIGTERM)
            #expect(api.reap(within: .seconds(5)), "a second signal ends the process")
            #expect(ContinuousClock.now - second < .seconds(5))
            #expect(api.exitStatus.map { ($0 >> 8) & 0xff } == 1)
            #expect(api.log.contains("Second signal"))
        }
    }
}
