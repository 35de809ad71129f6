import Synchronization
import VoteShared
import VoteStore

/// The polls the consumer checks votes against, read from the store: at start (seeding
/// the definition file's poll into an empty store), about once a second, and at once when
/// a vote names a poll, participant or time the last read does not explain (a poll opened
/// a moment ago), at most every `minReload`.
final class PollCatalog: Sendable {
    private struct State {
        var byID: [String: Poll] = [:]
        var loaded = false
        var lastLoad: ContinuousClock.Instant?
    }

    private let state: Mutex<State>
    private let loader: PollLoader?
    let refreshInterval: Duration
    let minReload: Duration

    /// A fixed catalog (tests, tools): never reloads.
    init(polls: [Poll]) {
        state = Mutex(State(byID: Self.index(polls), loaded: true, lastLoad: nil))
        loader = nil
        refreshInterval = .seconds(1)
        minReload = .seconds(1)
    }

    /// A catalog read through `loader` (on the consumer's thread only).
    init(loader: PollLoader, refreshInterval: Duration = .seconds(1), minReload: Duration = .milliseconds(200)) {
        state = Mutex(State())
        self.loader = loader
        self.refreshInterval = refreshInterval
        self.minReload = minReload
    }

    /// The poll with `id`, as last read.
    func poll(_ id: String) -> Poll? {
        state.withLock { $0.byID[id] }
    }

    var isLoaded: Bool { state.withLock { $0.loaded } }

    /// Reads the polls now; throws when the store cannot be read (the last read stays).
    func reload(now: ContinuousClock.Instant = .now) throws(StoreError) {
        guard let loader else { return }
        let polls = try loader.load()
        state.withLock { state in
            state.byID = Self.index(polls)
            state.loaded = true
            state.lastLoad = now
        }
    }

    /// Reads the polls when the last read is older than the refresh interval.
    func refreshIfStale(now: ContinuousClock.Instant = .now) throws(StoreError) {
        guard loader != nil else { return }
        let stale = state.withLock { state in state.lastLoad.map { now - $0 >= refreshInterval } ?? true }
        if stale { try reload(now: now) }
    }

    /// Reads the polls again unless that was done within `minReload`; whether it was.
    func reloadIfAllowed(now: ContinuousClock.Instant = .now) throws(StoreError) -> Bool {
        guard loader != nil else { return false }
        let allowed = state.withLock { state in state.lastLoad.map { now - $0 >= minReload } ?? true }
        guard allowed else { return false }
        try reload(now: now)
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
