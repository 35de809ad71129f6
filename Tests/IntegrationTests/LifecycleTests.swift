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
            let stack = try TestStack()
            defer { stack.stopAll() }
            try stack.startConsumer()
            try await stack.startAPI()
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
    }
}
