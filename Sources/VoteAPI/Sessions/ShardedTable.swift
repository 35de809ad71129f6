import Synchronization

/// A dictionary split over several locks by the caller's shard index, so that event loops
/// rarely meet on one lock; each shard holds at most `capacityPerShard` entries by the
/// caller's own eviction rule.
final class ShardedTable<Key: Hashable & Sendable, Entry: Sendable>: Sendable {
    private final class Shard: Sendable {
        let entries = Mutex<[Key: Entry]>([:])
    }

    private let shards: [Shard]
    let capacityPerShard: Int

    init(capacity: Int, shardCount: Int = 16) {
        shards = (0..<shardCount).map { _ in Shard() }
        capacityPerShard = max(1, capacity / shardCount)
    }

    /// Runs `body` on shard `index % shardCount`, under its lock.
    func withShard<Result: Sendable>(_ index: UInt64, _ body: (inout [Key: Entry]) -> Result) -> Result {
        shards[Int(index % UInt64(shards.count))].entries.withLock { body(&$0) }
    }

    /// Entries in all shards now.
    var count: Int {
        shards.reduce(0) { sum, shard in sum + shard.entries.withLock { $0.count } }
    }
}

/// A sustained rate with a burst.
struct TokenBucketRate: Sendable {
    let perMillisecond: Double
    let burst: Double

    init(perSecond: Double, burst: Int) {
        perMillisecond = perSecond / 1000
        self.burst = Double(burst)
    }
}

/// One client's bucket: tokens refill at the rate up to the burst; a request takes one.
struct TokenBucket: Sendable {
    private(set) var tokens: Double
    private(set) var refilledAt: Int64

    /// A full bucket at `now`.
    init(full rate: TokenBucketRate, at now: Int64) {
        tokens = rate.burst
        refilledAt = now
    }

    /// Whether the bucket would be full again at `now` (nothing to remember).
    func isFull(at now: Int64, rate: TokenBucketRate) -> Bool {
        tokens + Double(max(0, now - refilledAt)) * rate.perMillisecond >= rate.burst
    }

    /// Takes a token at `now`: `nil` when there was one, else the whole seconds (at least
    /// 1) until there is one again, the `Retry-After`.
    mutating func take(at now: Int64, rate: TokenBucketRate) -> Int? {
        tokens = min(rate.burst, tokens + Double(max(0, now - refilledAt)) * rate.perMillisecond)
        refilledAt = now
        guard tokens >= 1 else { return max(1, Int(((1 - tokens) / rate.perMillisecond / 1000).rounded(.up))) }
        tokens -= 1
        return nil
    }

    /// Gives back a token taken for a request that was not served.
    mutating func giveBack(rate: TokenBucketRate) {
        tokens = min(rate.burst, tokens + 1)
    }
}
