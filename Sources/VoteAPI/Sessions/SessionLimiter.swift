import Synchronization
import VoteShared

/// Per-session rate (token bucket) and budget, in memory, bounded in size.
///
/// Sessions are spread over shards by id so event loops rarely meet on one lock. When a
/// shard is full, expired sessions are dropped first, then the least recently seen.
/// Counters live per process and restart with it. With several API instances, nginx sends
/// every vote of a session to one instance (a consistent hash of the session id, see
/// nginx/README.md), so that instance's counters are the session's fleet-wide counters.
final class SessionLimiter: Sendable {
    enum Decision: Equatable {
        case allowed(remaining: UInt32)
        case rateLimited(retryAfterSeconds: Int)
        case exhausted
    }

    private struct Entry {
        var bucket: TokenBucket
        var used: UInt32
        var expiresAt: Int64
        var lastSeen: Int64
    }

    private let sessions: ShardedTable<VoteID, Entry>
    private let rate: TokenBucketRate

    init(ratePerSecond: Double, burst: Int, maxSessions: Int) {
        sessions = ShardedTable(capacity: maxSessions)
        rate = TokenBucketRate(perSecond: ratePerSecond, burst: burst)
    }

    /// Spends one vote of `token`'s rate and budget, or says why not.
    func admit(_ token: SessionToken, nowMillis: Int64) -> Decision {
        let capacity = self.sessions.capacityPerShard
        return self.sessions.withShard(token.sessionID.low) { sessions in
            var entry = sessions[token.sessionID] ?? Entry(bucket: TokenBucket(full: rate, at: nowMillis), used: 0, expiresAt: token.expiresAt * 1000, lastSeen: nowMillis)
            if sessions[token.sessionID] == nil, sessions.count >= capacity {
                Self.makeRoom(in: &sessions, nowMillis: nowMillis)
            }
            entry.lastSeen = nowMillis
            defer { sessions[token.sessionID] = entry }
            guard entry.used < token.budget else { return .exhausted }
            if let wait = entry.bucket.take(at: nowMillis, rate: rate) { return .rateLimited(retryAfterSeconds: wait) }
            entry.used += 1
            return .allowed(remaining: token.budget - entry.used)
        }
    }

    /// Gives back a vote that was admitted but not accepted (the broker said no).
    func refund(_ token: SessionToken) {
        sessions.withShard(token.sessionID.low) { sessions in
            guard var entry = sessions[token.sessionID], entry.used > 0 else { return }
            entry.used -= 1
            entry.bucket.giveBack(rate: rate)
            sessions[token.sessionID] = entry
        }
    }

    /// How many sessions are tracked now.
    var trackedSessions: Int { sessions.count }

    private static func makeRoom(in sessions: inout [VoteID: Entry], nowMillis: Int64) {
        let before = sessions.count
        sessions = sessions.filter { $0.value.expiresAt > nowMillis }
        guard sessions.count == before else { return }
        // Everything is live: forget the eighth seen least recently.
        let victims = sessions.sorted { $0.value.lastSeen < $1.value.lastSeen }.prefix(max(1, before / 8))
        for (id, _) in victims { sessions.removeValue(forKey: id) }
    }
}
