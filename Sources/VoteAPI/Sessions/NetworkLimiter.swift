import Synchronization
import VoteShared

/// A request rate per client network (the /24 or /48 a session token binds to), as a
/// token bucket per network in memory, bounded in size: the API's own limit on challenges
/// and sessions, so that it is protected behind any proxy, not only behind our nginx.
final class NetworkLimiter: Sendable {
    private let networks: ShardedTable<ClientNetwork, TokenBucket>
    private let rate: TokenBucketRate

    init(ratePerSecond: Double, burst: Int, maxNetworks: Int) {
        networks = ShardedTable(capacity: maxNetworks)
        rate = TokenBucketRate(perSecond: ratePerSecond, burst: burst)
    }

    /// How many networks are tracked now.
    var trackedNetworks: Int { networks.count }

    /// Spends one request of `network`'s rate: `nil` when allowed, else the seconds to wait.
    func admit(_ network: ClientNetwork, nowMillis: Int64) -> Int? {
        let capacity = networks.capacityPerShard
        return networks.withShard(UInt64(UInt(bitPattern: network.hashValue))) { buckets in
            var bucket = buckets[network] ?? TokenBucket(full: rate, at: nowMillis)
            if buckets[network] == nil, buckets.count >= capacity {
                // A full shard forgets the networks whose buckets are full again (idle ones).
                let rate = self.rate
                buckets = buckets.filter { !$0.value.isFull(at: nowMillis, rate: rate) }
                if buckets.count >= capacity { buckets.removeAll(keepingCapacity: true) }
            }
            defer { buckets[network] = bucket }
            return bucket.take(at: nowMillis, rate: rate)
        }
    }
}
