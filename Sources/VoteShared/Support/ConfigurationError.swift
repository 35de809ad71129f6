/// A setting or a configuration file that is missing, malformed or out of range.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    /// The environment variable, flag or file at fault.
    public var key: String
    public var message: String

    public init(key: String, message: String) {
        self.key = key
        self.message = message
    }

    public var description: String { "\(key): \(message)" }
}
