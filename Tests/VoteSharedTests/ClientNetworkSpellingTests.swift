import Testing
import VoteShared

/// Inputs fuzz/ (FuzzClientNetwork) found where ClientNetwork disagreed with inet_pton.
@Suite("Client networks, however the address is spelled")
struct ClientNetworkSpellingTests {
    @Test(arguments: ["::FFFF:203.0.113.7", "0:0:0:0:0:ffff:203.0.113.200", "::ffff:cb00:7101", "::ffff:203.0.113.7"])
    func anIPv4MappedAddressIsItsIPv4Network(_ text: String) {
        #expect(ClientNetwork(address: text) == ClientNetwork(address: "203.0.113.0"))
    }

    @Test func textThatIsNoAddressIsRefused() {
        #expect(ClientNetwork(address: "::ffff:1::2.3.4.5") == nil)
        // inet_pton would stop at the NUL and read "::ffff" or "::1".
        #expect(ClientNetwork(address: "::ffff\0:2f03:0f.:ff") == nil)
        #expect(ClientNetwork(address: "::1\0junk") == nil)
        #expect(ClientNetwork(address: "1.2.3.4\0") == nil)
    }

    @Test func otherIPv6AddressesKeepTheirSlash48() {
        #expect(ClientNetwork(address: "::1") == ClientNetwork(address: "::"))
        #expect(ClientNetwork(address: "::1.2.3.4") == ClientNetwork(address: "::"))
        #expect(ClientNetwork(address: "::1") != ClientNetwork(address: "0.0.0.1"))
        #expect(ClientNetwork(address: "2001:db8:abcd:1::1") == ClientNetwork(address: "2001:DB8:ABCD::"))
    }
}
