/// The parts of an `amqp://user:password@host:port/vhost` URL.
public struct AMQPURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String
    public var virtualHost: String
    /// Whether the URL named a user (and possibly a password) itself.
    public var hasCredentials: Bool

    /// Parses an AMQP URL; missing parts take RabbitMQ's defaults (guest, 5672, "/"), but a
    /// URL without credentials is meant to get them from ``withCredentials(user:password:)``.
    public init?(_ string: String) {
        guard string.hasPrefix("amqp://") else { return nil }
        var rest = Substring(string.dropFirst("amqp://".count))
        var user = "guest"
        var password = "guest"
        hasCredentials = false
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            hasCredentials = true
            if let colon = credentials.firstIndex(of: ":") {
                user = Self.percentDecoded(credentials[..<colon])
                password = Self.percentDecoded(credentials[credentials.index(after: colon)...])
            } else {
                user = Self.percentDecoded(credentials)
            }
        }
        var virtualHost = "/"
        if let slash = rest.firstIndex(of: "/") {
            let path = rest[rest.index(after: slash)...]
            if !path.isEmpty { virtualHost = Self.percentDecoded(path) }
            rest = rest[..<slash]
        }
        var port = 5672
        if let colon = rest.lastIndex(of: ":") {
            guard let parsed = Int(rest[rest.index(after: colon)...]), (1...65535).contains(parsed) else {
                return nil
            }
            port = parsed
            rest = rest[..<colon]
        }
        guard !rest.isEmpty else { return nil }
        self.host = String(rest)
        self.port = port
        self.user = user
        self.password = password
        self.virtualHost = virtualHost
    }

    /// The same broker with `user` and `password` (credentials kept out of URLs).
    public func withCredentials(user: String, password: String) -> AMQPURL {
        var url = self
        url.user = user
        url.password = password
        url.hasCredentials = true
        return url
    }

    /// The URL without its password, for logs.
    public var description: String {
        let vhost = virtualHost == "/" ? "" : virtualHost
        return "amqp://\(user)@\(host):\(port)/\(vhost)"
    }

    private static func percentDecoded(_ text: Substring) -> String {
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
               let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) {
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
