public import Crypto
#if canImport(Glibc)
import Glibc
#endif

/// The network a client votes from: its IPv4 /24 or IPv6 /48 prefix.
public struct ClientNetwork: Sendable, Hashable {
    /// 1 for IPv4, 2 for IPv6, followed by the prefix bytes.
    let bytes: [UInt8]

    /// The prefix of a textual IPv4 or IPv6 address; `nil` when it is not an address.
    public init?(address: String) {
        var text = Substring(address)
        if text.hasPrefix("::ffff:"), text.contains(".") { text = text.dropFirst(7) }
        var v4 = in_addr()
        if inet_pton(AF_INET, String(text), &v4) == 1 {
            let value = UInt32(bigEndian: v4.s_addr)
            bytes = [1, UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF)]
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, String(text), &v6) == 1 {
            let all = withUnsafeBytes(of: &v6) { Array($0) }
            bytes = [2] + all.prefix(6)
            return
        }
        return nil
    }

    /// An 8-byte keyed hash of the prefix, as carried in a session token.
    func hash(using key: SymmetricKey) -> UInt64 {
        let mac = HMAC<SHA256>.authenticationCode(for: [0x4E] + bytes, using: key)
        return mac.withUnsafeBytes { raw in raw.prefix(8).reduce(0) { $0 << 8 | UInt64($1) } }
    }
}
