import Synchronization
import VoteShared

/// Nonces of challenges already exchanged for a session, kept until they expire, so a
/// solved challenge buys exactly one session.
///
/// Nonces are kept in buckets by expiry time (``bucketSeconds`` wide). A challenge's expiry
/// is signed into it, so a nonce is only ever looked up in its own bucket, and expiring is
/// dropping whole buckets whose every nonce has expired: no pass over the whole set, ever,
/// and a set full of live nonces refuses new ones at once (fail closed) instead of
/// rebuilding itself under the lock.
final class SpentChallenges: Sendable {
    private struct State {
        var buckets: [Int64: Set<VoteID>] = [:]
        var count = 0
        /// The first second at which the oldest bucket may be dropped.
        var nextExpiry = Int64.max
    }

    private let state = Mutex(State())
    private let capacity: Int
    let bucketSeconds: Int64

    init(capacity: Int, bucketSeconds: Int64 = 10) {
        self.capacity = capacity
        self.bucketSeconds = max(1, bucketSeconds)
    }

    enum Outcome: Equatable { case fresh, spent, full }

    /// How many nonces are kept now, and in how many buckets.
    var size: (nonces: Int, buckets: Int) { state.withLock { ($0.count, $0.buckets.count) } }

    /// Marks the challenge spent; `.spent` when it already was, `.full` when the set is
    /// full of unexpired nonces (fail closed: no session is minted).
    func spend(nonce: VoteID, expiresAt: Int64, now: Int64) -> Outcome {
        let key = expiresAt.dividedRoundingDown(by: bucketSeconds)
        // Dropped buckets are freed after the lock is released.
        var dropped: [Set<VoteID>] = []
        let outcome = state.withLock { state -> Outcome in
            if now >= state.nextExpiry { dropped = Self.dropExpired(&state, now: now, width: bucketSeconds) }
            if state.buckets[key]?.contains(nonce) == true { return .spent }
            guard state.count < capacity else { return .full }
            state.buckets[key, default: []].insert(nonce)
            state.count += 1
            // Every nonce in bucket `key` has expired once `now` reaches the bucket's end.
            state.nextExpiry = min(state.nextExpiry, (key + 1) * bucketSeconds)
            return .fresh
        }
        withExtendedLifetime(dropped) {}
        return outcome
    }

    private static func dropExpired(_ state: inout State, now: Int64, width: Int64) -> [Set<VoteID>] {
        var dropped: [Set<VoteID>] = []
        var next = Int64.max
        for key in Array(state.buckets.keys) {
            let end = (key + 1) * width
            if end <= now, let bucket = state.buckets.removeValue(forKey: key) {
                state.count -= bucket.count
                dropped.append(bucket)
            } else {
                next = min(next, end)
            }
        }
        state.nextExpiry = next
        return dropped
    }
}

extension Int64 {
    /// The quotient rounded towards negative infinity (so negative times bucket correctly).
    fileprivate func dividedRoundingDown(by divisor: Int64) -> Int64 {
        let (quotient, remainder) = quotientAndRemainder(dividingBy: divisor)
        return remainder < 0 ? quotient - 1 : quotient
    }
}
