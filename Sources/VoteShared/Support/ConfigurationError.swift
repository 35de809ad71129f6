/// A setting or a configuration file that is missing, malformed or out of range: `key` is
/// the environment variable, flag or file at fault, `message` what is wrong with it.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public var key, message: String

    public init(key: String, message: String) {
        (self.key, self.message) = (key, message)
    }

    public var description: String { "\(key): \(message)" }
}
