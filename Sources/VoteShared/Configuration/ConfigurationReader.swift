public import Foundation

/// A setting that is missing, malformed or out of range.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    /// The environment variable (or file) at fault.
    public var key: String
    public var message: String

    public init(key: String, message: String) {
        self.key = key
        self.message = message
    }

    public var description: String { "\(key): \(message)" }
}

/// One documented setting, for `--help` and the README.
public struct SettingDescription: Sendable {
    public var key: String
    public var defaultValue: String
    public var help: String

    public init(_ key: String, _ defaultValue: String, _ help: String) {
        self.key = key
        self.defaultValue = defaultValue
        self.help = help
    }
}

/// Reads settings from the environment, falling back to documented defaults.
public struct ConfigurationReader: Sendable {
    public var environment: [String: String]

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
    }

    public func string(_ key: String, default defaultValue: String) -> String {
        guard let value = environment[key], !value.isEmpty else { return defaultValue }
        return value
    }

    public func int(_ key: String, default defaultValue: Int, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        guard let text = environment[key], !text.isEmpty else { return defaultValue }
        guard let value = Int(text.trimmingCharacters(in: .whitespaces)), range.contains(value) else {
            throw ConfigurationError(key: key, message: "expected a whole number in \(range.lowerBound)...\(range.upperBound), got \"\(text)\"")
        }
        return value
    }

    public func double(_ key: String, default defaultValue: Double, in range: ClosedRange<Double>) throws(ConfigurationError) -> Double {
        guard let text = environment[key], !text.isEmpty else { return defaultValue }
        guard let value = Double(text.trimmingCharacters(in: .whitespaces)), range.contains(value) else {
            throw ConfigurationError(key: key, message: "expected a number in \(range.lowerBound)...\(range.upperBound), got \"\(text)\"")
        }
        return value
    }

    public func list(_ key: String, default defaultValue: [String]) -> [String] {
        guard let text = environment[key], !text.isEmpty else { return defaultValue }
        return text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    public func oneOf(_ key: String, default defaultValue: String, allowed: [String]) throws(ConfigurationError) -> String {
        let value = string(key, default: defaultValue).lowercased()
        guard allowed.contains(value) else {
            throw ConfigurationError(key: key, message: "expected one of \(allowed.joined(separator: ", ")), got \"\(value)\"")
        }
        return value
    }
}

/// Prints `--help` text for an executable and its settings.
public func helpText(command: String, summary: String, settings: [SettingDescription]) -> String {
    var text = "\(summary)\n\nUsage: \(command) [--help]\n\nConfigured through the environment:\n"
    let width = settings.map(\.key.count).max() ?? 0
    for setting in settings {
        let padding = String(repeating: " ", count: width - setting.key.count)
        text += "  \(setting.key)\(padding)  \(setting.help) (default: \(setting.defaultValue))\n"
    }
    return text
}
