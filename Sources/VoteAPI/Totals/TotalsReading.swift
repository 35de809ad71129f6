import NIOCore
import ServiceLifecycle
import VoteShared
import VoteStore

/// The totals of a poll as the vote path reads them: a snapshot at once for a vote's
/// answer, a future for `/total`, and whether the store can be read for `/readyz`.
protocol TotalsReading: Sendable {
    /// The latest snapshot without waiting, if there has been one.
    func latest(of poll: Poll) -> TotalsSnapshot?
    /// Totals with zero votes, for answers given before the first read.
    func emptySnapshot(of poll: Poll) -> TotalsSnapshot
    /// The latest snapshot; waits for the store only when there has never been one.
    func snapshot(of poll: Poll, on eventLoop: any EventLoop) -> EventLoopFuture<TotalsSnapshot>
    /// `nil` when the store can be read, else what went wrong.
    func storeProblem(of poll: Poll, on eventLoop: any EventLoop) -> EventLoopFuture<String?>
    /// What the store promises about a redelivered vote, once it has been asked.
    var counting: CountingGuarantee? { get }
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


/// Keeps the current poll's totals fresh while the API runs, so a producer polling after
/// an idle minute reads totals committed a second or two ago, not the last request's.
struct TotalsRefresher: Service, CustomStringConvertible {
    let board: TotalsBoard
    let polls: PollDirectory
    let interval: Duration

    var description: String { "TotalsRefresher" }

    func run() async {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                if let current = polls.current(atMillis: Timestamp.nowMillis()) { board.refreshIfStale(current) }
                try? await Task.sleep(for: interval)
            }
        }
        await board.shutdown()
    }
}
