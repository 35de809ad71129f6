import ArgumentParser
import Foundation
import Histogram
import NIOCore
import NIOPosix

/// `paredao-load`: an open-loop vote load for bench/run.sh, with HdrHistogram percentiles.
@main
struct LoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "paredao-load",
        abstract: "Open-loop POST /api/v1/votes at a fixed rate; latency from each request's scheduled time (HdrHistogram).",
        discussion: """
            Request k is due at start + k/rate and leaves at that moment on an idle keep-alive
            connection (a new one if none is idle, up to --max-connections; else as soon as one
            frees up). Latency counts from when it was due, so a stall delays the figures of every
            request due during it, not the next send (no coordinated omission). Also reports the
            service time (from the actual send), which is what wrk's paced mode measures.
            Loopback (127.0.0.0/8, ::1) only. Prints a table and a last line
            RESULT {json} for bench/run.sh.
            """
    )

    @Option(help: "base URL: http://127.0.0.1:PORT (loopback only)") var url: String
    @Option(help: "votes per second, total") var rate: Int = 1000
    @Option(help: "seconds measured (after the warm-up)") var duration: Int = 30
    @Option(help: "seconds sent but not measured, first") var warmup: Int = 2
    @Option(help: "keep-alive connections opened before the start") var connections: Int = 64
    @Option(help: "most connections at once (more open only while all are busy)") var maxConnections: Int = 256
    @Option(help: "file of session tokens, one per line (paredao-token)") var tokens: String
    @Option(help: "participant ids, comma-separated, used in turn") var participants: String = "aline,diego,camila"
    @Option(help: "request path") var path: String = "/api/v1/votes"

    func validate() throws {
        guard (1...1_000_000).contains(rate) else { throw ValidationError("--rate must be 1–1,000,000") }
        guard (1...86_400).contains(duration), (0...600).contains(warmup) else { throw ValidationError("--duration 1–86400 s, --warmup 0–600 s") }
        guard (1...65_000).contains(connections), (connections...65_000).contains(maxConnections) else {
            throw ValidationError("--connections 1–65000 and --max-connections at least --connections")
        }
        guard target() != nil else { throw ValidationError("--url must be http://<loopback address>:PORT (127.0.0.0/8 or [::1])") }
    }

    /// Host and port of `url`, when it is plain HTTP to a loopback address.
    func target() -> (host: String, port: Int)? {
        guard let components = URLComponents(string: url), components.scheme == "http",
              let host = components.host, let port = components.port, (1...65_535).contains(port) else { return nil }
        let bare = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        let loopback = bare == "::1" || (bare.hasPrefix("127.") && bare.split(separator: ".").count == 4 && bare.split(separator: ".").allSatisfy { UInt8($0) != nil })
        return loopback ? (bare, port) : nil
    }

    func run() async throws {
        guard let (host, port) = target() else { throw ValidationError("bad --url") }
        let tokenList = try String(contentsOfFile: tokens, encoding: .utf8).split(whereSeparator: \.isNewline).map(String.init).filter { !$0.isEmpty }
        guard !tokenList.isEmpty else { throw ValidationError("no tokens in \(tokens)") }
        let participantList = participants.split(separator: ",").map(String.init)
        guard !participantList.isEmpty else { throw ValidationError("--participants is empty") }
        let plan = OpenLoopPlan(
            host: host, port: port, path: path, rate: rate, duration: .seconds(duration), warmup: .seconds(warmup),
            connections: connections, maxConnections: maxConnections, tokens: tokenList, participants: participantList
        )
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let result = try await loop.flatSubmit { OpenLoopRun(plan: plan, loop: loop).run() }.get()
        try await group.shutdownGracefully()
        report(result)
    }

    private func report(_ result: OpenLoopResult) {
        func ms(_ histogram: Histogram<UInt64>, _ percentile: Double) -> String {
            String(format: "%.2f", Double(histogram.valueAtPercentile(percentile)) / 1000)
        }
        let accepted = result.statuses[202] ?? 0
        let achieved = result.measuredSeconds > 0 ? Double(accepted) / result.measuredSeconds : 0
        let others = result.statuses.filter { $0.key != 202 }.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
        var lines = [
            "open loop: \(rate) votes/s planned for \(duration) s (after \(warmup) s warm-up), \(result.scheduled) due, \(result.completed) answered, \(accepted) × 202 (\(String(format: "%.0f", achieved))/s)",
            "  other statuses: \(others.isEmpty ? "none" : others); connection errors \(result.errors); unanswered \(result.unanswered); connections opened \(result.connectionsOpened)",
            "  latency from the scheduled time (ms): p50 \(ms(result.fromSchedule, 50)) p90 \(ms(result.fromSchedule, 90)) p99 \(ms(result.fromSchedule, 99)) p99.9 \(ms(result.fromSchedule, 99.9)) max \(String(format: "%.2f", Double(result.fromSchedule.max) / 1000))",
            "  service time from the send (ms):      p50 \(ms(result.service, 50)) p90 \(ms(result.service, 90)) p99 \(ms(result.service, 99)) p99.9 \(ms(result.service, 99.9)) max \(String(format: "%.2f", Double(result.service.max) / 1000))",
        ]
        let json = """
            {"rate":\(rate),"seconds":\(String(format: "%.3f", result.measuredSeconds)),"scheduled":\(result.scheduled),"answered":\(result.completed),\
            "accepted":\(accepted),"accepted_overall":\(result.acceptedOverall),"errors":\(result.errors),"unanswered":\(result.unanswered),"connections":\(result.connectionsOpened),\
            "p50_us":\(result.fromSchedule.valueAtPercentile(50)),"p90_us":\(result.fromSchedule.valueAtPercentile(90)),\
            "p99_us":\(result.fromSchedule.valueAtPercentile(99)),"p999_us":\(result.fromSchedule.valueAtPercentile(99.9)),"max_us":\(result.fromSchedule.max),\
            "service_p50_us":\(result.service.valueAtPercentile(50)),"service_p99_us":\(result.service.valueAtPercentile(99)),"service_p999_us":\(result.service.valueAtPercentile(99.9))}
            """
        lines.append("RESULT " + json)
        FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8))
    }
}
