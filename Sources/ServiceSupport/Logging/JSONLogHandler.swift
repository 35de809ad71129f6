public import Logging
import Synchronization
import VoteShared
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A swift-log handler that writes one JSON object per line:
/// `{"ts":…,"level":"INFO","logger":…,"message":…, <metadata keys>…}`.
///
/// Levels are folded to the four the operators query: trace/debug → DEBUG,
/// info/notice → INFO, warning → WARNING, error/critical → ERROR.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let label: String
    private let sink: LogSink

    public init(label: String, level: Logger.Level, sink: LogSink = .standardOutput) {
        self.label = label
        self.logLevel = level
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        sink.write(Self.line(level: event.level, label: label, message: event.message.description, metadata: merged, millis: Timestamp.nowMillis()))
    }

    /// The JSON line for one event.
    public static func line(level: Logger.Level, label: String, message: String, metadata: Logger.Metadata, millis: Int64) -> [UInt8] {
        var writer = JSONWriter(capacity: 160)
        writer.beginObject()
        writer.field("ts", Timestamp.iso8601(millis: millis))
        writer.field("level", levelName(level))
        writer.field("logger", label)
        writer.field("message", message)
        for key in metadata.keys.sorted() where !["ts", "level", "logger", "message"].contains(key) {
            writer.key(key)
            writeValue(metadata[key] ?? .string(""), to: &writer)
        }
        writer.endObject()
        var bytes = writer.bytes
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }

    /// The level name operators query by.
    public static func levelName(_ level: Logger.Level) -> String {
        switch level {
        case .trace, .debug: "DEBUG"
        case .info, .notice: "INFO"
        case .warning: "WARNING"
        case .error, .critical: "ERROR"
        }
    }

    private static func writeValue(_ value: Logger.Metadata.Value, to writer: inout JSONWriter) {
        switch value {
        case .string(let text): writer.string(text)
        case .stringConvertible(let convertible): writer.string(convertible.description)
        case .array(let values):
            writer.beginArray()
            for item in values { writeValue(item, to: &writer) }
            writer.endArray()
        case .dictionary(let dictionary):
            writer.beginObject()
            for key in dictionary.keys.sorted() {
                writer.key(key)
                writeValue(dictionary[key] ?? .string(""), to: &writer)
            }
            writer.endObject()
        }
    }
}

/// Where JSON log lines go: standard output, or a buffer that tests read.
public final class LogSink: Sendable {
    private let capturing: Bool
    private let lines = Mutex<[String]>([])

    /// Writes to file descriptor 1, one `write` per line.
    public static let standardOutput = LogSink(capturing: false)

    /// Keeps the lines in memory (for tests).
    public static func memory() -> LogSink { LogSink(capturing: true) }

    private init(capturing: Bool) {
        self.capturing = capturing
    }

    /// The lines written so far (memory sinks only).
    public var capturedLines: [String] {
        lines.withLock { $0 }
    }

    func write(_ bytes: [UInt8]) {
        lines.withLock { lines in
            if capturing {
                lines.append(String(decoding: bytes.dropLast(), as: UTF8.self))
                return
            }
            bytes.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let written = Glibc.write(1, raw.baseAddress.map { $0 + offset }, raw.count - offset)
                    if written <= 0 { break }
                    offset += written
                }
            }
        }
    }
}

/// Installs the JSON handler for every logger in this process.
public func bootstrapLogging(level: String) {
    let parsed = Logger.Level(rawValue: level) ?? .info
    LoggingSystem.bootstrap { label in JSONLogHandler(label: label, level: parsed) }
}
