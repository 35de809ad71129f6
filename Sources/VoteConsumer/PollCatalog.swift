import Foundation
import Synchronization
import VoteShared
import VoteStore

/// The clocks a catalog reads and waits by; tests move them by hand.
struct CatalogClock: Sendable {
    var now: @Sendable () -> ContinuousClock.Instant = { .now }
    /// Milliseconds since 1970, the clock the APIs stamp accepted-at times with.
    var wallClockMillis: @Sendable () -> Int64 = { Timestamp.nowMillis() }
    var sleep: @Sendable (Duration) -> Void = { duration in
        guard duration > .zero else { return }
        Thread.sleep(forTimeInterval: duration.timeInterval)
    }
}

/// The polls the consumer checks votes against, read from the store: at start (seeding
/// the definition file's poll into an empty store), about once a second, and again when a
/// vote names a poll, participant or time that the last read does not explain — a poll
/// opened after that read — at most every `minReload`.
final class PollCatalog: Sendable {
    private struct State {
        var byID: [String: Poll] = [:]
        var loaded = false
        var lastLoad: ContinuousClock.Instant?
        /// The wall clock when the last read began: every poll written before then is in `byID`.
        var lastLoadBeganMillis: Int64?
    }

    private let state: Mutex<State>
    private let load: (@Sendable () throws(StoreError) -> [Poll])?
    private let clock: CatalogClock
    let refreshInterval: Duration
    let minReload: Duration
    /// How far an API's clock may run behind the consumer's: a read that began less than
    /// this after a vote was accepted may predate the poll the API saw.
    let clockMargin: Duration

    /// A fixed catalog (tests, tools): never reloads.
    init(polls: [Poll]) {
        state = Mutex(State(byID: Self.index(polls), loaded: true))
        load = nil
        clock = CatalogClock()
        refreshInterval = .seconds(1)
        minReload = .seconds(1)
        clockMargin = .zero
    }

    /// A catalog read through `loader` (on the consumer's thread only).
    convenience init(loader: PollLoader) {
        self.init(load: { () throws(StoreError) in try loader.load() })
    }

    /// A catalog read through `load`, by `clock`.
    init(
        clock: CatalogClock = CatalogClock(), refreshInterval: Duration = .seconds(1), minReload: Duration = .milliseconds(200),
        clockMargin: Duration = .seconds(1), load: @escaping @Sendable () throws(StoreError) -> [Poll]
    ) {
        state = Mutex(State())
        self.load = load
        self.clock = clock
        self.refreshInterval = refreshInterval
        self.minReload = minReload
        self.clockMargin = clockMargin
    }

    /// The poll with `id`, as last read.
    func poll(_ id: String) -> Poll? {
        state.withLock { $0.byID[id] }
    }

    var isLoaded: Bool { state.withLock { $0.loaded } }

    /// Reads the polls now; throws when the store cannot be read (the last read stays).
    func reload() throws(StoreError) {
        guard let load else { return }
        let began = clock.now()
        let beganMillis = clock.wallClockMillis()
        let polls = try load()
        state.withLock { state in
            state.byID = Self.index(polls)
            state.loaded = true
            state.lastLoad = began
            state.lastLoadBeganMillis = beganMillis
        }
    }

    /// Reads the polls when the last read is older than the refresh interval.
    func refreshIfStale() throws(StoreError) {
        guard load != nil else { return }
        let now = clock.now()
        let stale = state.withLock { state in state.lastLoad.map { now - $0 >= refreshInterval } ?? true }
        if stale { try reload() }
    }

    /// At most how many reads `readAgain(forVoteAcceptedAt:)` takes to reach a read that
    /// postdates a vote, with a wall clock that moves: a bound for callers that loop on it.
    var catchUpReads: Int {
        Int(clockMargin / minReload) + 2
    }

    /// Reads the polls once more, first waiting out the rest of `minReload`, unless the last
    /// read began more than `clockMargin` after `acceptedAtMillis` (capped at now). Such a
    /// read holds every poll an API could have seen when it accepted the vote, so a vote it
    /// does not explain is not for a poll that opened a moment ago. Whether it read; throws
    /// when the store cannot be read.
    func readAgain(forVoteAcceptedAt acceptedAtMillis: Int64) throws(StoreError) -> Bool {
        guard load != nil else { return false }
        let (sum, overflow) = min(acceptedAtMillis, clock.wallClockMillis()).addingReportingOverflow(clockMargin.wholeMilliseconds)
        let needed = overflow ? Int64.max : sum
        let (lastLoad, lastBegan) = state.withLock { ($0.lastLoad, $0.lastLoadBeganMillis) }
        if let lastBegan, lastBegan > needed { return false }
        if let lastLoad { clock.sleep(lastLoad + minReload - clock.now()) }
        try reload()
        return true
    }

    private static func index(_ polls: [Poll]) -> [String: Poll] {
        Dictionary(polls.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
    }
}

/// Opens the store's polls on first use and reads them, seeding the definition file's
/// poll into an empty store. Used only by the consumer's thread.
final class PollLoader: @unchecked Sendable {
    private let configuration: StoreConfiguration
    private let seed: Poll?
    private var store: (any PollStore)?

    init(store: StoreConfiguration, seed: Poll?) {
        configuration = store
        self.seed = seed
    }

    func load() throws(StoreError) -> [Poll] {
        do throws(StoreError) {
            let store: any PollStore
            if let open = self.store {
                store = open
            } else {
                store = try configuration.openPollStore()
                self.store = store
            }
            return try store.pollsSeeding(seed, nowMillis: Timestamp.nowMillis())
        } catch {
            store = nil
            throw error
        }
    }
}
