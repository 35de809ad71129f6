import Synchronization
import VoteShared

/// Raises the proof-of-work difficulty in steps when challenge requests rise, per client
/// network and overall (mCaptcha-style), never beyond a cap.
///
/// Counts run in fixed 10-second windows. Each step is one more leading zero bit, which
/// doubles the expected work.
final class DifficultyGovernor: Sendable {
    private struct Window {
        var startedAt: Int64 = 0
        var overall = 0
        var perNetwork: [ClientNetwork: Int] = [:]
    }

    static let windowMillis: Int64 = 10_000
    /// A network asking more than these many challenges per window adds one step each.
    static let networkSteps = [20, 100, 500, 2_000]
    /// All networks together asking more than these adds one step each.
    static let overallSteps = [2_000, 20_000, 100_000]
    private static let maxNetworksPerWindow = 200_000

    private let window = Mutex(Window())
    let base: Int
    let cap: Int

    init(base: Int, cap: Int) {
        self.base = base
        self.cap = cap
    }

    /// Counts one challenge request from `network` and returns the difficulty to ask.
    func difficulty(for network: ClientNetwork, nowMillis: Int64) -> Int {
        let (forNetwork, overall) = window.withLock { window -> (Int, Int) in
            if nowMillis - window.startedAt >= Self.windowMillis {
                window = Window(startedAt: nowMillis)
            }
            window.overall += 1
            if window.perNetwork.count < Self.maxNetworksPerWindow || window.perNetwork[network] != nil {
                window.perNetwork[network, default: 0] += 1
            }
            return (window.perNetwork[network] ?? window.overall, window.overall)
        }
        let steps = Self.networkSteps.filter { forNetwork > $0 }.count + Self.overallSteps.filter { overall > $0 }.count
        return min(cap, base + steps)
    }
}

