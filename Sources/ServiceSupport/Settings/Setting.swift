public import ArgumentParser
public import VoteShared

/// A value a setting can hold, read from a flag or an environment variable.
public protocol SettingValue: Sendable {
    /// The value `text` spells, or `nil` when it is not one.
    init?(settingText text: String)
    /// How the value is written in `--help` and error messages.
    var settingText: String { get }
}

extension Int: SettingValue {
    public init?(settingText text: String) { self.init(text.trimmingSettingSpaces) }
    public var settingText: String { String(self) }
}

extension Double: SettingValue {
    public init?(settingText text: String) { self.init(text.trimmingSettingSpaces) }
    public var settingText: String {
        self == rounded() && abs(self) < 1e15 ? String(Int(self)) : String(self)
    }
}

extension String: SettingValue {
    public init?(settingText text: String) { self = text }
    public var settingText: String { self }
}

extension Array: SettingValue where Element == String {
    /// A comma-separated list; blanks around items are dropped.
    public init?(settingText text: String) {
        self = text.split(separator: ",").map { String($0.trimmingSettingSpaces) }.filter { !$0.isEmpty }
    }

    public var settingText: String { joined(separator: ",") }
}

/// One documented setting: its environment variable, its command-line flag (the variable
/// without `PAREDAO_`, in lower case with dashes: `PAREDAO_API_PORT` → `--api-port`), its
/// default, what values it takes and what it does. The flag wins over the environment,
/// which wins over the default.
public struct Setting<Value: SettingValue>: Sendable {
    public let key: String
    public let defaultValue: Value
    public let help: String
    /// How the default reads in `--help` when the value itself would mislead
    /// ("number of cores").
    private let defaultLabel: String?
    private let check: @Sendable (Value) -> String?
    /// The accepted values, for `--help` ("0...65535", "sqlite").
    private let accepts: String?

    public init(_ key: String, default defaultValue: Value, help: String, defaultLabel: String? = nil) {
        self.key = key
        self.defaultValue = defaultValue
        self.help = help
        self.defaultLabel = defaultLabel
        check = { _ in nil }
        accepts = nil
    }

    /// The command-line flag, without its dashes.
    public var flag: String {
        let name = key.hasPrefix("PAREDAO_") ? key.dropFirst("PAREDAO_".count) : Substring(key)
        return name.lowercased().replacingUnderscores
    }

    /// The text of this setting for `--help`.
    public var argumentHelp: ArgumentHelp {
        var text = help + " (env \(key); default \(defaultLabel ?? (defaultValue.settingText.isEmpty ? "none" : defaultValue.settingText))"
        if let accepts { text += "; \(accepts)" }
        return ArgumentHelp(text + ")", valueName: Value.self == [String].self ? "list" : "value")
    }

    /// The value: `flag` when given, else the environment's, else the default.
    public func value(flag given: String?, environment: [String: String]) throws(ConfigurationError) -> Value {
        let text: String
        let source: String
        if let given {
            text = given
            source = "--\(flag)"
        } else if let fromEnvironment = environment[key], !fromEnvironment.isEmpty {
            text = fromEnvironment
            source = key
        } else {
            return defaultValue
        }
        guard let value = Value(settingText: text) else {
            throw ConfigurationError(key: source, message: "\(accepts.map { "expected \($0)" } ?? "not a valid value"), got \"\(text)\"")
        }
        if let problem = check(value) {
            throw ConfigurationError(key: source, message: "\(problem), got \"\(text)\"")
        }
        return value
    }

    private init(copying setting: Self, accepts: String, check: @escaping @Sendable (Value) -> String?) {
        key = setting.key
        defaultValue = setting.defaultValue
        help = setting.help
        defaultLabel = setting.defaultLabel
        self.accepts = accepts
        self.check = check
    }
}

extension Setting where Value: Comparable {
    /// The same setting, accepting only values in `range`.
    public func within(_ range: ClosedRange<Value>) -> Self {
        let description = "\(range.lowerBound.settingText)...\(range.upperBound.settingText)"
        return Self(copying: self, accepts: description) { value in
            range.contains(value) ? nil : "expected a value in \(description)"
        }
    }
}

extension Setting where Value == String {
    /// The same setting, accepting only one of `choices` (compared in lower case).
    public func oneOf(_ choices: [String]) -> Self {
        let description = choices.joined(separator: ", ")
        return Self(copying: self, accepts: "one of \(description)") { value in
            choices.contains(value.lowercased()) ? nil : "expected one of \(description)"
        }
    }
}

extension StringProtocol {
    fileprivate var trimmingSettingSpaces: Substring {
        let text = Substring(self)
        guard let first = text.firstIndex(where: { $0 != " " && $0 != "\t" }),
              let last = text.lastIndex(where: { $0 != " " && $0 != "\t" }) else { return text[text.endIndex...] }
        return text[first...last]
    }

    fileprivate var replacingUnderscores: String {
        String(map { $0 == "_" ? "-" : $0 })
    }
}
