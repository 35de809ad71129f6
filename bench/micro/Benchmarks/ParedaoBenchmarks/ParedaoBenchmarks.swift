// Microbenchmarks for the per-vote hot paths in VoteShared.
//
// Each benchmark builds its input once in `setup` (and checks it round-trips, so a
// broken API fails the run instead of timing an error path), then measures only the
// operation itself. Time and mallocs are reported per operation: benchmarks with
// `scalingFactor: .kilo` run the operation 1000 times per sample and the tool divides.
//
// PAREDAO_BENCH_SMOKE=1 (bench/micro/run.sh --smoke) caps each benchmark at a few
// samples so CI checks that everything builds and runs, not how fast it is.

import Benchmark
import Foundation
import VoteShared
import VoteStore

/// A fixed clock for tokens and challenges, so `now` never crosses an expiry mid-run.
private let now: Int64 = 1_795_827_600

private struct BenchmarkSetupError: Error, CustomStringConvertible {
    var description: String
}

private func makeKeyring() throws -> TokenKeyring {
    // Two keys like a rotation in progress; the second (id 2) signs.
    try TokenKeyring(keys: [(1, [UInt8](repeating: 7, count: 32)), (2, [UInt8](repeating: 9, count: 32))])
}

private func makeClientNetwork() throws -> ClientNetwork {
    guard let network = ClientNetwork(address: "200.150.10.77") else {
        throw BenchmarkSetupError(description: "ClientNetwork(address:) refused an IPv4 address")
    }
    return network
}

private func makePoll() throws -> Poll {
    try Poll(id: "paredao-2026-11", title: "Paredão", participants: [
        Participant(id: "aline", name: "Aline", photoUrl: "/img/aline.svg"),
        Participant(id: "bruno", name: "Bruno", photoUrl: "/img/bruno.svg"),
        Participant(id: "carla", name: "Carla", photoUrl: "/img/carla.svg"),
    ])
}

/// The MongoDB store and its input are used by the benchmark's thread only.
private struct MongoBatchInput: @unchecked Sendable {
    let store: MongoVoteStore
    let votes: [Vote]
}

private struct TokenInput {
    let encoded: String
    let keyring: TokenKeyring
    let network: ClientNetwork
}

private struct ChallengeInput {
    let encoded: String
    let counter: UInt64
    let keyring: TokenKeyring
}

private struct WireInput {
    let votes: [Vote]
    let message: [UInt8]
}

private struct TotalsInput {
    let poll: Poll
    let counts: [HourlyCount]
}

let benchmarks: @Sendable () -> Void = {
    let smoke = ProcessInfo.processInfo.environment["PAREDAO_BENCH_SMOKE"] == "1"

    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        timeUnits: .nanoseconds,
        warmupIterations: smoke ? 1 : 10,
        maxDuration: smoke ? .milliseconds(50) : .seconds(2),
        maxIterations: smoke ? 3 : 10_000
    )

    func configuration(scaling: BenchmarkScalingFactor) -> Benchmark.Configuration {
        var configuration = Benchmark.defaultConfiguration
        configuration.scalingFactor = scaling
        return configuration
    }

    // 1. The session token check done on every vote request: a token seen for the first
    // time (full HMAC), and one the keyring's memo saw verify before — a voter's repeat
    // votes, which skip the HMAC (times and network are still checked).
    func tokenBenchmark(_ name: String, rememberingSlots slots: Int) {
        Benchmark(
            name,
            configuration: configuration(scaling: .kilo),
            closure: { (benchmark: Benchmark, input: TokenInput) throws in
                for _ in benchmark.scaledIterations {
                    blackHole(try SessionToken.verify(input.encoded, keyring: input.keyring, network: input.network, now: now + 60))
                }
            },
            setup: { () throws -> TokenInput in
                let keyring = try makeKeyring().rememberingVerifiedTokens(slots: slots)
                let network = try makeClientNetwork()
                let minted = SessionToken.mint(keyring: keyring, network: network, now: now, lifetimeSeconds: 1800, budget: 200)
                let verified = try SessionToken.verify(minted.encoded, keyring: keyring, network: network, now: now + 60)
                guard verified == minted.token else { throw BenchmarkSetupError(description: "minted token does not verify to itself") }
                return TokenInput(encoded: minted.encoded, keyring: keyring, network: network)
            }
        )
    }
    tokenBenchmark("SessionToken.verify", rememberingSlots: 0)
    tokenBenchmark("SessionToken.verify (remembered token)", rememberingSlots: 1024)

    // 2. Checking a solved proof-of-work challenge before minting a token.
    Benchmark(
        "Challenge.verify (difficulty 16)",
        configuration: configuration(scaling: .kilo),
        closure: { (benchmark: Benchmark, input: ChallengeInput) throws in
            for _ in benchmark.scaledIterations {
                blackHole(try Challenge.verify(input.encoded, counter: input.counter, keyring: input.keyring, now: now + 30))
            }
        },
        setup: { () throws -> ChallengeInput in
            let keyring = try makeKeyring()
            let issued = Challenge.issue(keyring: keyring, now: now, lifetimeSeconds: 300, difficulty: 16)
            let counter = issued.challenge.solve()
            let verified = try Challenge.verify(issued.encoded, counter: counter, keyring: keyring, now: now + 30)
            guard verified == issued.challenge else { throw BenchmarkSetupError(description: "issued challenge does not verify to itself") }
            return ChallengeInput(encoded: issued.encoded, counter: counter, keyring: keyring)
        }
    )

    // 3. Parsing a vote request body and its vote id.
    Benchmark(
        "Vote request decode (FlatJSON.parseObject + VoteID)",
        configuration: configuration(scaling: .kilo),
        closure: { (benchmark: Benchmark, body: [UInt8]) throws in
            for _ in benchmark.scaledIterations {
                let object = try FlatJSON.parseObject(body)
                guard case .string(let text)? = object["voteId"], let id = VoteID(text) else {
                    throw BenchmarkSetupError(description: "voteId missing or not a UUID")
                }
                blackHole(object)
                blackHole(id)
            }
        },
        setup: { () throws -> [UInt8] in
            let body = Array(#"{"participant":"aline","voteId":"f972afe7-4652-4395-8e45-44ab3e4540da"}"#.utf8)
            let object = try FlatJSON.parseObject(body)
            guard object["participant"] == .string("aline"),
                  case .string(let text)? = object["voteId"],
                  VoteID(text)?.description == "f972afe7-4652-4395-8e45-44ab3e4540da"
            else { throw BenchmarkSetupError(description: "vote request body did not parse as expected") }
            return body
        }
    )

    // 4. The AMQP message body the consumer decodes and the API encodes, 64 votes per message.
    func wireInput() throws -> WireInput {
        let participants = ["aline", "bruno", "carla"]
        let votes = (0..<64).map { index in
            Vote(id: .random(), pollID: "paredao-2026-11", participantID: participants[index % 3], acceptedAtMillis: now * 1000 + Int64(index) * 17)
        }
        let message = VoteMessage.encode(votes)
        guard try VoteMessage.decode(message) == votes else { throw BenchmarkSetupError(description: "64-vote message does not round-trip") }
        return WireInput(votes: votes, message: message)
    }

    Benchmark(
        "VoteMessage.decode (64 votes)",
        configuration: configuration(scaling: .one),
        closure: { (benchmark: Benchmark, input: WireInput) throws in
            for _ in benchmark.scaledIterations {
                blackHole(try VoteMessage.decode(input.message))
            }
        },
        setup: wireInput
    )

    Benchmark(
        "VoteMessage.encode (64 votes)",
        configuration: configuration(scaling: .one),
        closure: { (benchmark: Benchmark, input: WireInput) in
            for _ in benchmark.scaledIterations {
                blackHole(VoteMessage.encode(input.votes))
            }
        },
        setup: wireInput
    )

    // 5. Folding stored hourly counters into the totals JSON: 3 participants × 24 hours.
    Benchmark(
        "Totals fold + json (3 participants x 24 hours)",
        configuration: configuration(scaling: .one),
        closure: { (benchmark: Benchmark, input: TotalsInput) in
            for _ in benchmark.scaledIterations {
                let totals = Totals(poll: input.poll, counts: input.counts, asOfMillis: now * 1000)
                blackHole(totals.json())
            }
        },
        setup: { () throws -> TotalsInput in
            let poll = try makePoll()
            let firstHour = now - now % 3600 - 23 * 3600
            var counts: [HourlyCount] = []
            for hour in 0..<24 {
                for (index, participant) in poll.participants.enumerated() {
                    counts.append(HourlyCount(hourStart: firstHour + Int64(hour) * 3600, participantID: participant.id, votes: Int64(1000 * (index + 1) + hour)))
                }
            }
            let totals = Totals(poll: poll, counts: counts, asOfMillis: now * 1000)
            guard totals.hours.count == 24, totals.percentageTenths.reduce(0, +) == 1000, !totals.json().isEmpty else {
                throw BenchmarkSetupError(description: "totals did not fold into 24 hours")
            }
            return TotalsInput(poll: poll, counts: counts)
        }
    )

    // 6. Building one consumer batch's MongoDB commands: 10,000 votes → one id upsert each
    // ($setOnInsert) and one $inc upsert per (poll, hour), as BSON in the driver's bulk
    // writes (built, not sent: the store's URL points nowhere and nothing connects).
    Benchmark(
        "MongoDB batch commands (10,000 votes -> BSON)",
        configuration: configuration(scaling: .one),
        closure: { (benchmark: Benchmark, input: MongoBatchInput) throws in
            for _ in benchmark.scaledIterations {
                blackHole(try input.store.prepareCommands(for: input.votes))
            }
        },
        setup: { () throws -> MongoBatchInput in
            let store = try MongoVoteStore(url: "mongodb://127.0.0.1:1/paredao", voteIDRetentionSeconds: 86_400, appName: "paredao-bench")
            let poll = try makePoll()
            let votes = (0..<10_000).map { index in
                Vote(id: .random(), pollID: poll.id, participantID: poll.participants[index % 3].id, acceptedAtMillis: now * 1000 + Int64(index) * 500)
            }
            let commands = try store.prepareCommands(for: votes)
            guard commands.idUpserts == 10_000, commands.counterUpserts == 2 else {
                throw BenchmarkSetupError(description: "10,000 votes over 2 hours built \(commands) commands")
            }
            return MongoBatchInput(store: store, votes: votes)
        }
    )
}
