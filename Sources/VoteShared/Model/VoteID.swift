/// A 128-bit vote identifier, written as a UUID (`8-4-4-4-12` hex digits).
public struct VoteID: Hashable, Sendable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// A random (version 4) id from the system's generator (nonces, session ids).
    public static func random() -> VoteID {
        var generator = SystemRandomNumberGenerator()
        return random(using: &generator)
    }

    /// A random (version 4) id from `generator`.
    public static func random(using generator: inout some RandomNumberGenerator) -> VoteID {
        var high = generator.next() as UInt64
        var low = generator.next() as UInt64
        high = (high & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000
        low = (low & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
        return VoteID(high: high, low: low)
    }

    /// A time-ordered (version 7, RFC 9562) id: 48 bits of Unix milliseconds, then random
    /// bits. Ids made close in time sort close together, so the store's id index grows at
    /// its end instead of touching a random page per vote.
    public static func timeOrdered(millis: Int64, using generator: inout some RandomNumberGenerator) -> VoteID {
        let random = generator.next() as UInt64
        let high = UInt64(UInt64(bitPattern: millis) & 0xFFFF_FFFF_FFFF) << 16 | 0x7000 | (random & 0x0FFF)
        let low = ((generator.next() as UInt64) & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
        return VoteID(high: high, low: low)
    }

    /// Parses a UUID string (either case); `nil` when it is not one.
    public init?(_ text: some StringProtocol) {
        if let parsed = text.utf8.withContiguousStorageIfAvailable({ VoteID(utf8: $0) }) {
            guard let parsed else { return nil }
            self = parsed
            return
        }
        var copy = String(text)
        guard let parsed = copy.withUTF8({ VoteID(utf8: $0) }) else { return nil }
        self = parsed
    }

    private init?(utf8 text: UnsafeBufferPointer<UInt8>) {
        var high: UInt64 = 0
        var low: UInt64 = 0
        var digits = 0
        var position = 0
        for byte in text {
            defer { position += 1 }
            if position == 8 || position == 13 || position == 18 || position == 23 {
                guard byte == UInt8(ascii: "-") else { return nil }
                continue
            }
            let nibble: UInt64
            switch byte {
            case 48...57: nibble = UInt64(byte - 48)
            case 97...102: nibble = UInt64(byte - 87)
            case 65...70: nibble = UInt64(byte - 55)
            default: return nil
            }
            if digits < 16 { high = high << 4 | nibble } else { low = low << 4 | nibble }
            digits += 1
        }
        guard position == 36, digits == 32 else { return nil }
        self.init(high: high, low: low)
    }

    /// The 16 bytes, big-endian.
    public var bytes: [UInt8] {
        var result = [UInt8](repeating: 0, count: 16)
        for index in 0..<8 {
            result[index] = UInt8(truncatingIfNeeded: high >> (56 - 8 * index))
            result[8 + index] = UInt8(truncatingIfNeeded: low >> (56 - 8 * index))
        }
        return result
    }

    public var description: String {
        var out = [UInt8]()
        out.reserveCapacity(36)
        appendDescription(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the lowercase 8-4-4-4-12 text form to `bytes` (no String on the way).
    public func appendDescription(to bytes: inout [UInt8]) {
        for index in 0..<32 {
            if index == 8 || index == 12 || index == 16 || index == 20 { bytes.append(UInt8(ascii: "-")) }
            let word = index < 16 ? high : low
            let nibble = UInt8(truncatingIfNeeded: word >> UInt64(60 - 4 * (index % 16))) & 0xF
            bytes.append(Hexadecimal.digit(nibble))
        }
    }
}
