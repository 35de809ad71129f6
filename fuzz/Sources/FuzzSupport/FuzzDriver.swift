internal import CLibFuzzer
#if canImport(Glibc)
internal import Glibc
#endif

/// What libFuzzer calls once per input: the bytes and their count; returns 0.
public typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

/// Runs libFuzzer's driver over the process's arguments (libFuzzer flags, corpus folders or
/// files to replay) and exits with its status.
public enum FuzzDriver {
    public static func run(_ callback: FuzzCallback) -> Never {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        let status = withUnsafeMutablePointer(to: &argv) { pointer in
            pointer.withMemoryRebound(to: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?.self, capacity: 1) { rebound in
                LLVMFuzzerRunDriver(&argc, rebound, callback)
            }
        }
        exit(status)
    }

    /// The input as a buffer (libFuzzer may pass a null pointer for the empty input).
    public static func bytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: size == 0 ? nil : data, count: size)
    }
}

/// Stops the run with `message` when a property does not hold: a trap is what libFuzzer
/// reports as a crash and saves the input for.
public func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) {
    if !condition() { fatalError("property violated: \(message())", file: file, line: line) }
}

/// Whether `PAREDAO_FUZZ_TRACE` is set: then each input's outcome goes to standard error,
/// to see what a seed or a crash file does when replayed (`FuzzX FILE`).
private let tracing = getenv("PAREDAO_FUZZ_TRACE") != nil

/// Writes `message` to standard error when tracing.
public func trace(_ message: @autoclosure () -> String) {
    guard tracing else { return }
    var line = message() + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}
