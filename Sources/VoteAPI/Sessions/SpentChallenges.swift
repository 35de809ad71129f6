import Synchronization
import VoteShared

/// Nonces of challenges already exchanged for a session, kept until they expire, so a
/// solved challenge buys exactly one session.
final class SpentChallenges: Sendable {
    private struct State {
        var expiries: [VoteID: Int64] = [:]
    }

    private let state = Mutex(State())
    private let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    enum Outcome: Equatable { case fresh, spent, full }

    /// Marks the challenge spent; `.spent` when it already was, `.full` when the set is
    /// full of unexpired nonces (fail closed: no session is minted).
    func spend(nonce: VoteID, expiresAt: Int64, now: Int64) -> Outcome {
        state.withLock { state in
            if let expiry = state.expiries[nonce], expiry > now { return .spent }
            if state.expiries.count >= capacity {
                state.expiries = state.expiries.filter { $0.value > now }
                guard state.expiries.count < capacity else { return .full }
            }
            state.expiries[nonce] = expiresAt
            return .fresh
        }
    }
}
