import Synchronization
import VoteShared

/// A request rate per client network (the /24 or /48 a session token binds to), as a
/// token bucket per network in memory, bounded in size: the API's own limit on challenges
/// and sessions, so that it is protected behind any proxy, not only behind our nginx.
final class NetworkLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var refilledAt: Int64
    }

    private static let shardCount = 16
    private final class Shard: Sendable {
        let buckets = Mutex<[ClientNetwork: Bucket]>([:])
    }

    private let shards: [Shard]
    private let ratePerMillisecond: Double
    private let burst: Double
    private let capacityPerShard: Int

    init(ratePerSecond: Double, burst: Int, maxNetworks: Int) {
        shards = (0..<Self.shardCount).map { _ in Shard() }
        ratePerMillisecond = ratePerSecond / 1000
        self.burst = Double(burst)
        capacityPerShard = max(1, maxNetworks / Self.shardCount)
    }

    /// How many networks are tracked now.
    var trackedNetworks: Int {
        shards.reduce(0) { sum, shard in sum + shard.buckets.withLock { $0.count } }
    }

    /// Spends one request of `network`'s rate: `nil` when allowed, else the seconds to wait.
    func admit(_ network: ClientNetwork, nowMillis: Int64) -> Int? {
        shards[Int(UInt(bitPattern: network.hashValue) % UInt(Self.shardCount))].buckets.withLock { buckets in
            var bucket = buckets[network] ?? Bucket(tokens: burst, refilledAt: nowMillis)
            if buckets[network] == nil, buckets.count >= capacityPerShard {
                // A full shard forgets the networks whose buckets are full again (idle ones).
                let full = burst
                let rate = ratePerMillisecond
                buckets = buckets.filter { $0.value.tokens + Double(max(0, nowMillis - $0.value.refilledAt)) * rate < full }
                if buckets.count >= capacityPerShard { buckets.removeAll(keepingCapacity: true) }
            }
            bucket.tokens = min(burst, bucket.tokens + Double(max(0, nowMillis - bucket.refilledAt)) * ratePerMillisecond)
            bucket.refilledAt = nowMillis
            defer { buckets[network] = bucket }
            guard bucket.tokens >= 1 else {
                return max(1, Int(((1 - bucket.tokens) / ratePerMillisecond / 1000).rounded(.up)))
            }
            bucket.tokens -= 1
            return nil
        }
    }
}
