import Foundation
public import ServiceLifecycle
import Synchronization
import VoteShared

/// A loop that must block (librabbitmq, SQLite) and so runs on a thread of its own.
public protocol BlockingWorker: Sendable {
    /// Runs until `requestStop` is called (or the work ends by itself).
    func runBlocking()
    /// Asks `runBlocking` to return soon. Called from another thread, possibly twice.
    func requestStop()
}

/// A ``BlockingWorker`` as a `Service`: `run()` starts the thread and waits for it to end
/// on a continuation; graceful shutdown or cancellation asks the worker to stop.
public struct ThreadService<Worker: BlockingWorker>: Service, CustomStringConvertible {
    public let worker: Worker
    public let threadName: String

    public init(_ worker: Worker, threadName: String) {
        self.worker = worker
        self.threadName = threadName
    }

    public var description: String { threadName }

    public func run() async {
        await withTaskCancellationOrGracefulShutdownHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let thread = Thread { [worker] in
                    worker.runBlocking()
                    continuation.resume()
                }
                thread.name = threadName
                thread.start()
            }
        } onCancelOrGracefulShutdown: { [worker] in
            worker.requestStop()
        }
    }
}

/// A stop request a blocking thread can wait on: `wait(for:)` sleeps until the duration
/// passed or a stop was requested, whichever comes first, without polling.
public final class StopRequest: Sendable {
    private let condition = NSCondition()
    private let requested = Atomic<Bool>(false)

    public init() {}

    /// Whether a stop was requested.
    public var isRequested: Bool { requested.load(ordering: .acquiring) }

    /// Requests the stop and wakes every waiter.
    public func request() {
        condition.lock()
        requested.store(true, ordering: .releasing)
        condition.broadcast()
        condition.unlock()
    }

    /// Sleeps for `duration` or until a stop is requested; returns whether one was.
    @discardableResult
    public func wait(for duration: Duration) -> Bool {
        let deadline = Date(timeIntervalSinceNow: duration.timeInterval)
        condition.lock()
        defer { condition.unlock() }
        while !requested.load(ordering: .acquiring) {
            if !condition.wait(until: deadline) { break }
        }
        return requested.load(ordering: .acquiring)
    }
}
