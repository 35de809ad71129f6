import Crypto
#if canImport(Glibc)
import Glibc
#endif

/// The network a client votes from: its IPv4 /24 or IPv6 /48 prefix.
public struct ClientNetwork: Sendable, Hashable {
    /// The family (1 for IPv4, 2 for IPv6) in the top byte, the prefix bits below it:
    /// one word, so building, hashing and comparing one allocates nothing.
    let packed: UInt64

    /// The prefix of a textual IPv4 or IPv6 address; `nil` when it is not an address.
    public init?(address: some StringProtocol) {
        let text = Substring(address)
        // Dotted IPv4 — what a proxy's X-Real-IP nearly always carries — without a String,
        // plain or in the usual spelling of an IPv4-mapped IPv6 address.
        if let value = Self.parseIPv4(text.utf8) ?? (text.hasPrefix("::ffff:") ? Self.parseIPv4(text.utf8.dropFirst(7)) : nil) {
            packed = 1 << 56 | UInt64(value >> 8)
            return
        }
        // inet_pton reads a C string: a NUL inside the text would cut it short.
        guard !text.utf8.contains(0) else { return nil }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, String(text), &v6) == 1 else { return nil }
        let (high, low) = withUnsafeBytes(of: &v6) { raw in
            (raw.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }, raw.suffix(8).reduce(0) { $0 << 8 | UInt64($1) })
        }
        // An IPv4-mapped address (::ffff:a.b.c.d however it is spelled) is its IPv4 network,
        // not the one ::/48 every such address would share.
        packed = high == 0 && low >> 32 == 0xFFFF ? 1 << 56 | (low & 0xFFFF_FFFF) >> 8 : 2 << 48 | high >> 16
    }

    /// `a.b.c.d` with decimal octets, as `inet_pton` reads it (no leading zeros); else `nil`.
    static func parseIPv4(_ utf8: some Sequence<UInt8>) -> UInt32? {
        var value: UInt32 = 0
        var octet: UInt32 = 0
        var digits = 0
        var dots = 0
        for byte in utf8 {
            if byte == UInt8(ascii: ".") {
                guard digits > 0, dots < 3 else { return nil }
                value = value << 8 | octet
                octet = 0
                digits = 0
                dots += 1
            } else if byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
                guard digits == 0 || octet != 0 else { return nil }
                octet = octet * 10 + UInt32(byte - UInt8(ascii: "0"))
                digits += 1
                guard octet <= 255 else { return nil }
            } else {
                return nil
            }
        }
        guard dots == 3, digits > 0 else { return nil }
        return value << 8 | octet
    }

    /// An 8-byte keyed hash of the prefix, as carried in a session token.
    func hash(using key: SymmetricKey) -> UInt64 {
        var input: [UInt8] = [0x4E]
        input.appendBigEndian(packed)
        let mac = HMAC<SHA256>.authenticationCode(for: input, using: key)
        return mac.withUnsafeBytes { raw in raw.prefix(8).reduce(0) { $0 << 8 | UInt64($1) } }
    }
}
