import FuzzSupport
import VoteShared
#if canImport(Glibc)
import Glibc
#endif

/// The client's network (IPv4 /24, IPv6 /48) that every session token is bound to, read
/// from the peer address or a trusted proxy's X-Real-IP.
///
/// Properties: ClientNetwork(address:) never traps, and accepts exactly what the C library's
/// inet_pton reads as an IPv4 or IPv6 address, giving the same network as the canonical
/// text of that address's prefix; an IPv4-mapped IPv6 address (::ffff:a.b.c.d, however it
/// is spelled) is the network of its IPv4 address.
@main enum FuzzClientNetwork { static func main() { FuzzDriver.run(fuzzClientNetwork) } }

@_cdecl("LLVMFuzzerTestOneInput") public func fuzzClientNetwork(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: FuzzDriver.bytes(data, size), as: UTF8.self)
    let network = ClientNetwork(address: text)
    let expected = referenceNetwork(text)
    trace("network: \(String(describing: network)), inet_pton: \(String(describing: expected))")
    require(network == expected, "ClientNetwork(address: \(text.debugDescription)) is \(String(describing: network)), inet_pton says \(String(describing: expected))")
    require(ClientNetwork(address: Substring(text)) == network, "a Substring parses differently")
    return 0
}

/// The network by the C library's reading of the text, built from canonical text.
private func referenceNetwork(_ text: String) -> ClientNetwork? {
    // inet_pton reads a C string: text with a NUL in it is no address.
    guard !text.utf8.contains(0) else { return nil }
    var v4 = in_addr()
    if inet_pton(AF_INET, text, &v4) == 1 {
        return canonicalIPv4(withUnsafeBytes(of: &v4) { Array($0) })
    }
    var v6 = in6_addr()
    guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
    let bytes = withUnsafeBytes(of: &v6) { Array($0) }
    if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
        return canonicalIPv4(Array(bytes[12...]))
    }
    let groups = stride(from: 0, to: 6, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
    let canonical = groups.joined(separator: ":") + "::"
    guard let network = ClientNetwork(address: canonical) else { fatalError("canonical IPv6 prefix \(canonical) refused") }
    return network
}

private func canonicalIPv4(_ bytes: [UInt8]) -> ClientNetwork {
    let canonical = "\(bytes[0]).\(bytes[1]).\(bytes[2]).0"
    guard let network = ClientNetwork(address: canonical) else { fatalError("canonical IPv4 prefix \(canonical) refused") }
    return network
}
