import Synchronization
import VoteShared

/// Raises the proof-of-work difficulty in steps when challenge requests rise, per client
/// network and overall (mCaptcha-style), never beyond a cap.
///
/// Counts run in fixed 10-second windows. Each step is one more leading zero bit, which
/// doubles the expected work. The steps follow the load that can actually arrive: a
/// network's are fractions of what its limiter lets through in one window (so every step
/// is reachable from one network), the overall ones doublings of a configured level.
final class DifficultyGovernor: Sendable {
    private struct Window {
        var startedAt: Int64 = 0
        var overall = 0
        var perNetwork: [ClientNetwork: Int] = [:]
    }

    static let windowMillis: Int64 = 10_000
    /// The network steps as eighths of the most a network can ask in one window.
    static let networkStepEighths = [1, 2, 4, 6]
    /// The overall steps as multiples of the first.
    static let overallStepMultiples = [1, 2, 4, 8]
    private static let maxNetworksPerWindow = 200_000

    private let window = Mutex(Window())
    let base: Int
    let cap: Int
    /// A network asking more than these many challenges per window adds one step each.
    let networkSteps: [Int]
    /// All networks together asking more than these (at this instance) add one step each.
    let overallSteps: [Int]

    /// - Parameters:
    ///   - networkWindowMax: the most challenges one network can be given in a window
    ///     (``networkWindowMax(ratePerSecond:burst:)`` of its limiter).
    ///   - overallStep: challenges per window, all networks together, that add the first
    ///     overall step; each doubling adds another.
    init(base: Int, cap: Int, networkWindowMax: Int, overallStep: Int) {
        self.base = base
        self.cap = cap
        networkSteps = Self.networkStepEighths.map { max(1, networkWindowMax * $0 / 8) }
        overallSteps = Self.overallStepMultiples.map { max(1, overallStep) * $0 }
    }

    /// The most challenges a token bucket of `ratePerSecond` and `burst` lets through in
    /// one window: a full burst, then the rate for the whole window.
    static func networkWindowMax(ratePerSecond: Double, burst: Int) -> Int {
        let perWindow = ratePerSecond * Double(windowMillis) / 1000
        return perWindow >= Double(Int.max / 2) ? Int.max / 2 : Int(perWindow) + burst
    }

    /// Counts one challenge request from `network` and returns the difficulty to ask.
    func difficulty(for network: ClientNetwork, nowMillis: Int64) -> Int {
        // A finished window is freed after the lock is released, not under it.
        var finished: Window?
        let (forNetwork, overall) = window.withLock { window -> (Int, Int) in
            if nowMillis - window.startedAt >= Self.windowMillis {
                finished = window
                window = Window(startedAt: nowMillis)
            }
            window.overall += 1
            if window.perNetwork.count < Self.maxNetworksPerWindow || window.perNetwork[network] != nil {
                window.perNetwork[network, default: 0] += 1
            }
            return (window.perNetwork[network] ?? window.overall, window.overall)
        }
        withExtendedLifetime(finished) {}
        let steps = networkSteps.count { forNetwork > $0 } + overallSteps.count { overall > $0 }
        return min(cap, base + steps)
    }
}
