import Synchronization
import VoteShared

/// Per-session rate (token bucket) and budget, in memory, bounded in size.
///
/// Sessions are spread over shards by id so event loops rarely meet on one lock. When a
/// shard is full, expired sessions are dropped first, then the least recently seen.
/// Counters live per process: they restart with the API, and each API instance keeps
/// its own (the budget is then per instance).
final class SessionLimiter: Sendable {
    enum Decision: Equatable {
        case allowed(remaining: UInt32)
        case rateLimited(retryAfterSeconds: Int)
        case exhausted
    }

    private struct Entry {
        var tokens: Double
        var refilledAt: Int64
        var used: UInt32
        var expiresAt: Int64
        var lastSeen: Int64
    }

    private static let shardCount = 16
    private final class Shard: Sendable {
        let sessions = Mutex<[VoteID: Entry]>([:])
    }

    private let shards: [Shard]
    private let ratePerMillisecond: Double
    private let burst: Double
    private let capacityPerShard: Int

    init(ratePerSecond: Double, burst: Int, maxSessions: Int) {
        shards = (0..<Self.shardCount).map { _ in Shard() }
        ratePerMillisecond = ratePerSecond / 1000
        self.burst = Double(burst)
        capacityPerShard = max(1, maxSessions / Self.shardCount)
    }

    /// Spends one vote of `token`'s rate and budget, or says why not.
    func admit(_ token: SessionToken, nowMillis: Int64) -> Decision {
        shard(for: token.sessionID).sessions.withLock { sessions in
            var entry = sessions[token.sessionID] ?? Entry(tokens: burst, refilledAt: nowMillis, used: 0, expiresAt: token.expiresAt * 1000, lastSeen: nowMillis)
            if sessions[token.sessionID] == nil, sessions.count >= capacityPerShard {
                Self.makeRoom(in: &sessions, nowMillis: nowMillis)
            }
            entry.tokens = min(burst, entry.tokens + Double(max(0, nowMillis - entry.refilledAt)) * ratePerMillisecond)
            entry.refilledAt = nowMillis
            entry.lastSeen = nowMillis
            defer { sessions[token.sessionID] = entry }
            guard entry.used < token.budget else { return .exhausted }
            guard entry.tokens >= 1 else {
                let wait = (1 - entry.tokens) / ratePerMillisecond / 1000
                return .rateLimited(retryAfterSeconds: max(1, Int(wait.rounded(.up))))
            }
            entry.tokens -= 1
            entry.used += 1
            return .allowed(remaining: token.budget - entry.used)
        }
    }

    /// Gives back a vote that was admitted but not accepted (the broker said no).
    func refund(_ token: SessionToken) {
        shard(for: token.sessionID).sessions.withLock { sessions in
            guard var entry = sessions[token.sessionID], entry.used > 0 else { return }
            entry.used -= 1
            entry.tokens = min(burst, entry.tokens + 1)
            sessions[token.sessionID] = entry
        }
    }

    /// How many sessions are tracked now.
    var trackedSessions: Int {
        shards.reduce(0) { sum, shard in sum + shard.sessions.withLock { $0.count } }
    }

    private func shard(for id: VoteID) -> Shard {
        shards[Int(id.low % UInt64(Self.shardCount))]
    }

    private static func makeRoom(in sessions: inout [VoteID: Entry], nowMillis: Int64) {
        let before = sessions.count
        sessions = sessions.filter { $0.value.expiresAt > nowMillis }
        guard sessions.count == before else { return }
        // Everything is live: forget the eighth seen least recently.
        let victims = sessions.sorted { $0.value.lastSeen < $1.value.lastSeen }.prefix(max(1, before / 8))
        for (id, _) in victims { sessions.removeValue(forKey: id) }
    }
}
