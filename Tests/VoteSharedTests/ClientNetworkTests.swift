#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import VoteShared

@Suite("Client networks")
struct ClientNetworkTests {
    @Test(arguments: ["1.2.3.4", "0.0.0.0", "255.255.255.255", "200.150.10.77", "10.0.0.1", "256.1.1.1", "1.2.3", "1.2.3.4.5",
                      "01.2.3.4", "1.2.3.04", "1..3.4", ".1.2.3", "1.2.3.", "1.2.3.4 ", "a.b.c.d", "", "1.2.3.1000", "::1"])
    func theFastIPv4ParserAgreesWithInetPton(_ text: String) {
        var address = in_addr()
        let expected: UInt32? = inet_pton(AF_INET, text, &address) == 1 ? UInt32(bigEndian: address.s_addr) : nil
        #expect(ClientNetwork.parseIPv4(text.utf8) == expected)
    }

    @Test func addressesGroupByIPv4Slash24AndIPv6Slash48() throws {
        let home = try #require(ClientNetwork(address: "200.150.10.77"))
        #expect(ClientNetwork(address: "200.150.10.1") == home)
        #expect(ClientNetwork(address: "::ffff:200.150.10.200") == home)
        #expect(ClientNetwork(address: "200.150.10.77"[...]) == home)
        #expect(ClientNetwork(address: "200.150.11.77") != home)
        #expect(ClientNetwork(address: "2001:db8:abcd:1::1") == ClientNetwork(address: "2001:db8:abcd:ffff::2"))
        #expect(ClientNetwork(address: "2001:db8:abcd:1::1") != ClientNetwork(address: "2001:db8:abce::1"))
        #expect(ClientNetwork(address: "01.2.3.4") == nil)
        #expect(ClientNetwork(address: "not an address") == nil)
    }
}
