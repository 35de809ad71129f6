import Dispatch
import Foundation

/// Writes text to standard output (for `--help`).
public func writeStandardOutput(_ text: String) {
    FileHandle.standardOutput.write(Data(text.utf8))
}

/// Reports a configuration error on standard error and exits with status 2.
public func exitWithConfigurationError(_ error: any Error) -> Never {
    FileHandle.standardError.write(Data("configuration error: \(error)\nRun with --help to list the settings.\n".utf8))
    exit(2)
}

/// Suspends until SIGTERM or SIGINT arrives; returns the signal's name.
public func waitForTerminationSignal() async -> String {
    await withCheckedContinuation { (continuation: CheckedContinuation<String, Never>) in
        let queue = DispatchQueue(label: "paredao.signals")
        let once = SignalOnce(continuation)
        for (number, name) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { once.fire(name) }
            source.resume()
            once.retain(source)
        }
    }
}

private final class SignalOnce: @unchecked Sendable {
    // Touched only on the signal queue after set-up.
    private var continuation: CheckedContinuation<String, Never>?
    private var sources: [any DispatchSourceSignal] = []

    init(_ continuation: CheckedContinuation<String, Never>) {
        self.continuation = continuation
    }

    func retain(_ source: any DispatchSourceSignal) { sources.append(source) }

    func fire(_ name: String) {
        continuation?.resume(returning: name)
        continuation = nil
    }
}
