import NIOCore
import ServiceLifecycle
import VoteShared

/// The totals as the vote path reads them: a snapshot at once for a vote's answer, a
/// future for `/total`, and whether the store can be read for `/readyz`.
protocol TotalsReading: Sendable {
    /// The latest snapshot without waiting, if there has been one.
    func latest() -> TotalsSnapshot?
    /// Totals with zero votes, for answers given before the first read.
    var emptySnapshot: TotalsSnapshot { get }
    /// The latest snapshot; waits for the store only when there has never been one.
    func snapshot(on eventLoop: any EventLoop) -> EventLoopFuture<TotalsSnapshot>
    /// `nil` when the store can be read, else what went wrong.
    func storeProblem(on eventLoop: any EventLoop) -> EventLoopFuture<String?>
}

/// A rendered snapshot (a class: every vote's answer takes it, and one reference is
/// cheaper to hand out than its four arrays).
final class TotalsSnapshot: Sendable {
    let totals: Totals
    /// The whole snapshot, for `/total`.
    let json: [UInt8]
    /// Without `hours`, for the answer to a vote.
    let summaryJSON: [UInt8]
    let readAt: ContinuousClock.Instant

    init(totals: Totals) {
        self.totals = totals
        json = totals.json()
        summaryJSON = totals.json(includingHours: false)
        readAt = .now
    }
}


/// Keeps the totals snapshot fresh while the API runs, so a producer polling after an idle
/// minute reads totals committed a second or two ago, not the last request's.
struct TotalsRefresher: Service, CustomStringConvertible {
    let cache: TotalsCache
    let interval: Duration

    var description: String { "TotalsRefresher" }

    func run() async {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                cache.refreshIfStale()
                try? await Task.sleep(for: interval)
            }
        }
        await cache.shutdown()
    }
}
