import Synchronization
import VoteShared
import VoteStore

/// Who may reach the admin routes, and how often.
///
/// A credential is checked first, so a stranger cannot throttle the producers: an
/// authenticated request spends only its own credential's (generous) rate. A refused one —
/// no credential or a wrong one — spends its client network's small failure budget (`429`
/// once it is spent) and is counted per network and claimed name in a bounded table; the
/// counts become one audit row per window (``takeSummary(nowMillis:)``), never one row per
/// refusal, so guesses cannot grow the audit log or load the store.
final class AdminGate: Sendable {
    /// A refused attempt's kind, for its metric.
    enum Refusal: String, CaseIterable, Sendable {
        case missing, wrong, limited
    }

    /// The refusals of one window, summed, for the audit log.
    struct Summary: Sendable, Equatable {
        var refused: Int
        var networks: Int
        /// The most refused (client address seen first, claimed name, count), most first.
        var top: [(client: String, name: String, count: Int)]

        static func == (lhs: Summary, rhs: Summary) -> Bool {
            lhs.refused == rhs.refused && lhs.networks == rhs.networks
                && lhs.top.elementsEqual(rhs.top) { $0.client == $1.client && $0.name == $1.name && $0.count == $1.count }
        }
    }

    private struct Key: Hashable {
        var network: ClientNetwork?
        /// A name of one of our credentials, else `unknown`: clients cannot add names.
        var name: String
    }

    private struct Tally {
        var client: String
        var count: Int
    }

    private struct Window {
        var tallies: [Key: Tally] = [:]
        /// Refusals that found the table full: counted, not itemized.
        var untracked = 0
        var authenticated: [String: TokenBucket] = [:]
    }

    private let failures: NetworkLimiter
    private let authenticatedRate: TokenBucketRate
    private let maxTallies: Int
    private let window = Mutex(Window())

    init(authenticatedRate: Double, authenticatedBurst: Int, failureRate: Double, failureBurst: Int, maxTallies: Int = 1024) {
        failures = NetworkLimiter(ratePerSecond: failureRate, burst: failureBurst, maxNetworks: 65_536)
        self.authenticatedRate = TokenBucketRate(perSecond: authenticatedRate, burst: authenticatedBurst)
        self.maxTallies = maxTallies
    }

    /// Spends one request of credential `name`'s rate: `nil` when allowed, else the seconds
    /// to wait. Names are our credentials' only, so the table has one bucket per credential.
    func admitAuthenticated(name: String, nowMillis: Int64) -> Int? {
        window.withLock { window in
            var bucket = window.authenticated[name] ?? TokenBucket(full: authenticatedRate, at: nowMillis)
            defer { window.authenticated[name] = bucket }
            return bucket.take(at: nowMillis, rate: authenticatedRate)
        }
    }

    /// Counts a refused attempt from `client` (its network, when it has one) claiming
    /// `name`; returns the seconds to wait when the network has spent its failure budget,
    /// in which case the attempt is answered `429` whatever it carried.
    func refuse(client: String, network: ClientNetwork?, claimedName name: String?, nowMillis: Int64) -> Int? {
        let retryAfter = network.flatMap { failures.admit($0, nowMillis: nowMillis) }
        let key = Key(network: network, name: name ?? "unknown")
        window.withLock { window in
            if window.tallies[key] != nil {
                window.tallies[key]?.count += 1
            } else if window.tallies.count < maxTallies {
                window.tallies[key] = Tally(client: client, count: 1)
            } else {
                window.untracked += 1
            }
        }
        return retryAfter
    }

    /// The refusals counted since the last call (`nil` when there were none), and a new
    /// window begun.
    func takeSummary(top limit: Int = 10) -> Summary? {
        let (tallies, untracked) = window.withLock { window in
            defer {
                window.tallies.removeAll(keepingCapacity: true)
                window.untracked = 0
            }
            return (window.tallies, window.untracked)
        }
        guard !tallies.isEmpty || untracked > 0 else { return nil }
        let refused = tallies.values.reduce(untracked) { $0 + $1.count }
        let networks = Set(tallies.keys.map(\.network)).count
        let top = tallies.sorted { $0.value.count != $1.value.count ? $0.value.count > $1.value.count : $0.value.client < $1.value.client }
            .prefix(limit)
            .map { (client: $0.value.client, name: $0.key.name, count: $0.value.count) }
        return Summary(refused: refused, networks: networks, top: top)
    }

    /// The audit row for `summary`: who was refused most, in a small JSON object.
    static func auditEntry(_ summary: Summary, windowSeconds: Int, atMillis: Int64) -> AuditEntry {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("seconds", Int64(windowSeconds))
        writer.field("refused", Int64(summary.refused))
        writer.field("networks", Int64(summary.networks))
        writer.key("top")
        writer.beginArray()
        for entry in summary.top {
            writer.beginObject()
            writer.field("client", entry.client)
            writer.field("name", entry.name)
            writer.field("refused", Int64(entry.count))
            writer.endObject()
        }
        writer.endArray()
        writer.endObject()
        let client = summary.top.first?.client ?? "-"
        return AuditEntry(atMillis: atMillis, actor: "-", action: "auth_refused", pollID: "", detail: String(decoding: writer.bytes, as: UTF8.self), client: client)
    }
}
