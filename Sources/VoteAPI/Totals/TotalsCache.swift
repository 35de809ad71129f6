import Logging
import NIOCore
import NIOPosix
import Synchronization
import VoteShared
import VoteStore

/// The totals producers poll, re-read from the store in the background (``TotalsRefresher``)
/// and when a reader finds them older than the refresh interval, with a single read in
/// flight however many requests ask.
///
/// Readers get the latest snapshot at once (stale-while-revalidate); only the very first
/// read waits for the store. One cache per poll; every cache reads on the one thread of
/// their shared ``TotalsStoreReader``.
final class TotalsCache: Sendable {
    private struct State {
        var latest: TotalsSnapshot?
        var lastError: StoreError?
        var lastAttempt: ContinuousClock.Instant?
        var refreshing = false
        var waiters: [EventLoopPromise<TotalsSnapshot>] = []
    }

    let poll: Poll
    private let refreshInterval: Duration
    private let reader: TotalsStoreReader
    private let state = Mutex(State())
    private let logger = Logger(label: "VoteAPI.totals")

    init(poll: Poll, refreshInterval: Duration, reader: TotalsStoreReader) {
        self.poll = poll
        self.refreshInterval = refreshInterval
        self.reader = reader
    }

    /// Starts a read unless one ran within the refresh interval (the background refresh).
    func refreshIfStale() {
        if state.withLock({ Self.claimRefresh(&$0, interval: refreshInterval) }) { startRefresh() }
    }

    /// Totals with zero votes, for answers given before the first read.
    var emptySnapshot: TotalsSnapshot {
        TotalsSnapshot(totals: Totals(poll: poll, counts: [], asOfMillis: Timestamp.nowMillis()))
    }

    /// The latest snapshot without waiting (starting a refresh if it is stale).
    func latest() -> TotalsSnapshot? {
        let (snapshot, refresh) = state.withLock { state -> (TotalsSnapshot?, Bool) in
            (state.latest, Self.claimRefresh(&state, interval: refreshInterval))
        }
        if refresh { startRefresh() }
        return snapshot
    }

    /// The latest snapshot; waits for the store only when there has never been one.
    func snapshot(on eventLoop: any EventLoop) -> EventLoopFuture<TotalsSnapshot> {
        let (snapshot, refresh, waiter) = state.withLock { state -> (TotalsSnapshot?, Bool, EventLoopPromise<TotalsSnapshot>?) in
            let refresh = Self.claimRefresh(&state, interval: refreshInterval)
            if let latest = state.latest { return (latest, refresh, nil) }
            let promise = eventLoop.makePromise(of: TotalsSnapshot.self)
            state.waiters.append(promise)
            if !state.refreshing {
                state.refreshing = true
                return (nil, true, promise)
            }
            return (nil, refresh, promise)
        }
        if refresh { startRefresh() }
        if let snapshot { return eventLoop.makeSucceededFuture(snapshot) }
        return waiter?.futureResult ?? eventLoop.makeSucceededFuture(emptySnapshot)
    }

    /// Whether the store can be read: `nil` when a read succeeded within the last 5 s (or
    /// one made now succeeds), else what went wrong. An idle API reads the store again
    /// instead of calling an old read stale.
    func storeProblem(on eventLoop: any EventLoop) -> EventLoopFuture<String?> {
        let (waiter, refresh) = state.withLock { state -> (EventLoopPromise<TotalsSnapshot>?, Bool) in
            if let latest = state.latest, state.lastError == nil, ContinuousClock.now - latest.readAt < .seconds(5) {
                return (nil, false)
            }
            let promise = eventLoop.makePromise(of: TotalsSnapshot.self)
            state.waiters.append(promise)
            guard !state.refreshing else { return (promise, false) }
            state.refreshing = true
            return (promise, true)
        }
        if refresh { startRefresh() }
        guard let waiter else { return eventLoop.makeSucceededFuture(nil) }
        return waiter.futureResult.map { _ in nil }.recover { error in "\(error)" }
    }

    private static func claimRefresh(_ state: inout State, interval: Duration) -> Bool {
        guard !state.refreshing else { return false }
        if let attempt = state.lastAttempt, ContinuousClock.now - attempt < interval { return false }
        state.refreshing = true
        return true
    }

    private func startRefresh() {
        reader.submit { [self] store in
            let started = ContinuousClock.now
            let result: Result<TotalsSnapshot, StoreError>
            do throws(StoreError) {
                let counts = try store().hourlyCounts(pollID: poll.id)
                result = .success(TotalsSnapshot(totals: Totals(poll: poll, counts: counts, asOfMillis: Timestamp.nowMillis())))
            } catch {
                reader.forgetStore()
                result = .failure(error)
            }
            let waiters = state.withLock { state -> [EventLoopPromise<TotalsSnapshot>] in
                state.refreshing = false
                state.lastAttempt = started
                switch result {
                case .success(let snapshot):
                    state.latest = snapshot
                    state.lastError = nil
                case .failure(let error):
                    state.lastError = error
                }
                defer { state.waiters.removeAll() }
                return state.waiters
            }
            if case .failure(let error) = result {
                logger.error("Cannot read totals from the store", metadata: ["error": "\(error)"])
            }
            for waiter in waiters { waiter.completeWith(result.mapError { $0 as any Error }) }
        }
    }
}

/// The one thread and store connection every ``TotalsCache`` reads through; the store is
/// opened lazily on that thread, which is its only user.
final class TotalsStoreReader: Sendable {
    private let configuration: StoreConfiguration
    private let pool: NIOThreadPool
    private let box = StoreBox()
    private let guarantee = Mutex<CountingGuarantee?>(nil)

    /// What the store promised when it was last opened (`/readyz` says it).
    var counting: CountingGuarantee? { guarantee.withLock { $0 } }

    init(store: StoreConfiguration) {
        configuration = store
        pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
    }

    /// Runs `body` on the reader's thread with a function that opens (or reuses) the store.
    func submit(_ body: @escaping @Sendable (_ store: () throws(StoreError) -> any VoteStore) -> Void) {
        pool.submit { [self] _ in
            body { () throws(StoreError) -> any VoteStore in
                if let open = box.store { return open }
                let opened = try configuration.open()
                let promise = try opened.countingGuarantee()
                guarantee.withLock { $0 = promise }
                box.store = opened
                return opened
            }
        }
    }

    /// Drops the connection after a failure (called on the reader's thread).
    func forgetStore() {
        box.store = nil
    }

    func shutdown() async {
        try? await pool.shutdownGracefully()
    }
}

/// Holds the reader's store connection; touched only from the reader's single thread.
private final class StoreBox: @unchecked Sendable {
    var store: (any VoteStore)?
}

/// The totals of every poll asked for: one ``TotalsCache`` per poll (a season has a few
/// dozen), all reading through one ``TotalsStoreReader``.
final class TotalsBoard: TotalsReading {
    private let refreshInterval: Duration
    private let reader: TotalsStoreReader
    private let caches = Mutex<[String: TotalsCache]>([:])

    init(refreshInterval: Duration, store: StoreConfiguration) {
        self.refreshInterval = refreshInterval
        reader = TotalsStoreReader(store: store)
    }

    /// The cache of `poll` (a new one when the poll's definition changed).
    func cache(of poll: Poll) -> TotalsCache {
        caches.withLock { caches in
            if let cache = caches[poll.id], cache.poll.participants == poll.participants, cache.poll.title == poll.title { return cache }
            let cache = TotalsCache(poll: poll, refreshInterval: refreshInterval, reader: reader)
            caches[poll.id] = cache
            return cache
        }
    }

    func latest(of poll: Poll) -> TotalsSnapshot? { cache(of: poll).latest() }

    func emptySnapshot(of poll: Poll) -> TotalsSnapshot { cache(of: poll).emptySnapshot }

    func snapshot(of poll: Poll, on eventLoop: any EventLoop) -> EventLoopFuture<TotalsSnapshot> {
        cache(of: poll).snapshot(on: eventLoop)
    }

    func storeProblem(of poll: Poll, on eventLoop: any EventLoop) -> EventLoopFuture<String?> {
        cache(of: poll).storeProblem(on: eventLoop)
    }

    func refreshIfStale(_ poll: Poll) {
        cache(of: poll).refreshIfStale()
    }

    var counting: CountingGuarantee? { reader.counting }

    func shutdown() async {
        await reader.shutdown()
    }
}
