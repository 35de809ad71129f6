import Dispatch
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import VoteShared
import VoteStore

/// The polls as this API instance knows them: re-read from the store in the background
/// (``PollRefresher``, about once a second, so every instance sees an admin change within
/// a second or two), and changed by the admin API through ``PollLifecycle`` on the
/// directory's own thread, which is the only user of its store connection.
final class PollDirectory: Sendable {
    private struct State {
        var polls: [Poll] = []
        var hasRead = false
        var lastRead: ContinuousClock.Instant?
        var lastError: String?
        var refreshing = false
    }

    /// What an admin change came to.
    enum ChangeOutcome: Sendable {
        case changed(Poll)
        case refused(PollRuleViolation)
        /// The poll changed (or another opened) between the read and the write.
        case conflict
        case storeFailed(StoreError)
    }

    /// Who asked for a change, for the audit log.
    struct Actor: Sendable {
        var name: String
        var client: String
    }

    let closeDelayMillis: Int64
    private let refreshInterval: Duration
    private let seed: Poll?
    private let storeConfiguration: StoreConfiguration
    fileprivate let pool: NIOThreadPool
    private let state = Mutex(State())
    private let box = PollStoreBox()
    private let logger = Logger(label: "VoteAPI.polls")

    /// `seed` (the definition file's poll) becomes the first, open poll of an empty store.
    init(store: StoreConfiguration, seed: Poll?, refreshInterval: Duration, closeDelayMillis: Int64) {
        storeConfiguration = store
        self.seed = seed
        self.refreshInterval = refreshInterval
        self.closeDelayMillis = closeDelayMillis
        pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
    }

    func shutdown() async {
        try? await pool.shutdownGracefully()
    }

    // MARK: Reading

    /// Every poll known, oldest first.
    var polls: [Poll] { state.withLock { $0.polls } }

    /// Whether the polls were read from the store at least once.
    var hasRead: Bool { state.withLock { $0.hasRead } }

    /// The poll with `id`, if known.
    func poll(_ id: String) -> Poll? {
        state.withLock { state in state.polls.first { $0.id == id } }
    }

    /// The poll with `id` if it has aired (open or closed): what public routes may show. A
    /// draft exists only for the admin API, so a public route answers for it exactly as for
    /// an id that does not exist (the formation of a paredão is a live TV moment).
    func publicPoll(_ id: some StringProtocol) -> Poll? {
        state.withLock { state in state.polls.first { $0.id == id && $0.state != .draft } }
    }

    /// The rules over the polls known now.
    var lifecycle: PollLifecycle {
        PollLifecycle(polls: polls, closeDelayMillis: closeDelayMillis)
    }

    /// The poll the ballot shows at `millis`: the open one, else the one closed last.
    func current(atMillis millis: Int64) -> Poll? {
        lifecycle.current(atMillis: millis)
    }

    /// `nil` when the last read of the polls succeeded, else what went wrong.
    var storeProblem: String? { state.withLock { $0.lastError } }

    /// Reads the polls now and waits (start-up), seeding the definition into an empty store.
    func load(on eventLoop: any EventLoop) async {
        let claimed = state.withLock { state -> Bool in
            guard !state.refreshing else { return false }
            state.refreshing = true
            return true
        }
        guard claimed else { return }
        _ = try? await pool.runIfActive(eventLoop: eventLoop) { [self] in readPolls() }.get()
    }

    /// Starts a read unless one ran within the refresh interval.
    func refreshIfStale() {
        let claimed = state.withLock { state -> Bool in
            guard !state.refreshing else { return false }
            if let last = state.lastRead, ContinuousClock.now - last < refreshInterval { return false }
            state.refreshing = true
            return true
        }
        guard claimed else { return }
        pool.submit { [self] _ in readPolls() }
    }

    /// On the directory's thread: reads (and seeds) the polls into the state.
    private func readPolls() {
        let started = ContinuousClock.now
        let result: Result<[Poll], StoreError>
        do {
            result = .success(try store().pollsSeeding(seed, nowMillis: Timestamp.nowMillis()))
        } catch {
            box.store = nil
            result = .failure(error)
        }
        let changed = state.withLock { state -> Bool in
            state.refreshing = false
            state.lastRead = started
            switch result {
            case .success(let polls):
                defer { state.polls = polls }
                state.hasRead = true
                state.lastError = nil
                return polls != state.polls
            case .failure(let error):
                state.lastError = "\(error)"
                return false
            }
        }
        switch result {
        case .success(let polls) where changed:
            let open = polls.first { $0.state == .open }?.id ?? "none"
            logger.info("Polls changed", metadata: ["polls": "\(polls.count)", "open": "\(open)"])
        case .failure(let error):
            logger.error("Cannot read polls from the store", metadata: ["error": "\(error)"])
        default:
            break
        }
    }

    private func store() throws(StoreError) -> any PollStore {
        if let open = box.store { return open }
        let opened = try storeConfiguration.openPollStore()
        box.store = opened
        return opened
    }

    // MARK: Changing

    /// Decides a change on the polls as the store has them now, writes it if the stored
    /// poll is still as read, writes the audit entry (refusals too), and refreshes.
    func change(
        action: String, pollID: String, detail: String, by actor: Actor, on eventLoop: any EventLoop,
        decide: @escaping @Sendable (PollLifecycle, Int64) throws(PollRuleViolation) -> PollChange
    ) -> EventLoopFuture<ChangeOutcome> {
        pool.runIfActive(eventLoop: eventLoop) { [self] () -> ChangeOutcome in
            let now = Timestamp.nowMillis()
            let outcome: ChangeOutcome
            do {
                let store = try store()
                let rules = PollLifecycle(polls: try store.polls(), closeDelayMillis: closeDelayMillis)
                do {
                    let change = try decide(rules, now)
                    outcome = try store.write(change) == .written ? .changed(change.poll) : .conflict
                } catch let violation as PollRuleViolation {
                    outcome = .refused(violation)
                }
                try store.appendAudit(AuditEntry(
                    atMillis: now, actor: actor.name, action: Self.auditAction(action, outcome), pollID: pollID,
                    detail: Self.auditDetail(detail, outcome), client: actor.client
                ))
            } catch let error as StoreError {
                box.store = nil
                logger.error("Admin change failed in the store", metadata: ["action": "\(action)", "poll": "\(pollID)", "error": "\(error)"])
                return .storeFailed(error)
            } catch {
                box.store = nil
                return .storeFailed(StoreError(operation: action, code: -1, message: "\(error)"))
            }
            logger.notice("Admin action", metadata: ["actor": "\(actor.name)", "action": "\(action)", "poll": "\(pollID)", "client": "\(actor.client)", "outcome": "\(Self.auditAction(action, outcome))"])
            readPollsClaimed()
            return outcome
        }
    }

    /// Writes an audit entry for a request refused before any rule ran (a wrong credential).
    func audit(_ entry: AuditEntry, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        pool.runIfActive(eventLoop: eventLoop) { [self] in
            do {
                try store().appendAudit(entry)
            } catch {
                box.store = nil
                logger.error("Cannot write the audit log", metadata: ["error": "\(error)"])
            }
        }
    }

    /// The newest `limit` audit entries.
    func auditLog(limit: Int, on eventLoop: any EventLoop) -> EventLoopFuture<[AuditEntry]> {
        pool.runIfActive(eventLoop: eventLoop) { [self] in
            do {
                return try store().auditLog(limit: limit)
            } catch {
                box.store = nil
                throw error
            }
        }
    }

    fileprivate func readPollsClaimed() {
        let claimed = state.withLock { state -> Bool in
            guard !state.refreshing else { return false }
            state.refreshing = true
            return true
        }
        if claimed { readPolls() }
    }

    private static func auditAction(_ action: String, _ outcome: ChangeOutcome) -> String {
        switch outcome {
        case .changed: action
        case .refused, .conflict: "\(action)_refused"
        case .storeFailed: "\(action)_failed"
        }
    }

    private static func auditDetail(_ detail: String, _ outcome: ChangeOutcome) -> String {
        switch outcome {
        case .changed: detail
        case .refused(let violation): "\(violation)"
        case .conflict: "the poll changed meanwhile"
        case .storeFailed(let error): "\(error)"
        }
    }
}

/// Holds the directory's store connection; touched only from the directory's single thread.
private final class PollStoreBox: @unchecked Sendable {
    var store: (any PollStore)?
}

/// Keeps the polls fresh while the API runs: every instance sees an admin change within
/// a second or two, without a restart.
struct PollRefresher: Service, CustomStringConvertible {
    let directory: PollDirectory
    let interval: Duration

    var description: String { "PollRefresher" }

    func run() async {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                directory.refreshIfStale()
                try? await Task.sleep(for: interval)
            }
        }
        await directory.shutdown()
    }
}

extension PollDirectory {
    /// Reads the polls now, blocking the calling thread (tests; never on an event loop).
    func loadBlocking() {
        let done = DispatchSemaphore(value: 0)
        pool.submit { [self] _ in
            readPollsClaimed()
            done.signal()
        }
        done.wait()
    }
}
