import Testing
import VoteShared

@Suite("Session tokens")
struct SessionTokenTests {
    let keyring = try! TokenKeyring(keys: [(1, Array(repeating: 7, count: 32)), (2, Array(repeating: 9, count: 32))])
    let home = ClientNetwork(address: "200.150.10.77")!
    let now: Int64 = 1_795_827_600

    @Test func aMintedTokenVerifies() throws {
        let minted = SessionToken.mint(keyring: keyring, network: home, now: now, lifetimeSeconds: 1800, budget: 200)
        let verified = try SessionToken.verify(minted.encoded, keyring: keyring, network: home, now: now + 60)
        #expect(verified == minted.token)
        #expect(verified.keyID == 2)
        #expect(verified.budget == 200)
        #expect(verified.expiresAt == now + 1800)
    }

    @Test func theSameIPv4Slash24AndIPv6Slash48Verify() throws {
        let minted = SessionToken.mint(keyring: keyring, network: home, now: now, lifetimeSeconds: 60, budget: 1)
        _ = try SessionToken.verify(minted.encoded, keyring: keyring, network: try #require(ClientNetwork(address: "200.150.10.3")), now: now)
        _ = try SessionToken.verify(minted.encoded, keyring: keyring, network: try #require(ClientNetwork(address: "::ffff:200.150.10.4")), now: now)
        let v6 = try #require(ClientNetwork(address: "2001:db8:abcd:12::1"))
        let minted6 = SessionToken.mint(keyring: keyring, network: v6, now: now, lifetimeSeconds: 60, budget: 1)
        _ = try SessionToken.verify(minted6.encoded, keyring: keyring, network: try #require(ClientNetwork(address: "2001:db8:abcd:ffff::9")), now: now)
        #expect(throws: TokenRejection.wrongNetwork) {
            try SessionToken.verify(minted6.encoded, keyring: keyring, network: try #require(ClientNetwork(address: "2001:db8:abce::1")), now: now)
        }
    }

    @Test func aBitFlipInAnyByteIsRejected() throws {
        let minted = SessionToken.mint(keyring: keyring, network: home, now: now, lifetimeSeconds: 1800, budget: 200)
        try expectEveryBitFlipRejected(minted.encoded, keyring: keyring, network: home, now: now + 1)
    }

    @Test func expiredFutureUnknownKeyAndOtherNetworkAreRejectedWithTheirReason() throws {
        let minted = SessionToken.mint(keyring: keyring, network: home, now: now, lifetimeSeconds: 1800, budget: 200)
        #expect(throws: TokenRejection.expired) { try SessionToken.verify(minted.encoded, keyring: keyring, network: home, now: now + 1800) }
        let future = try #require(SessionToken.sign(keyID: 2, sessionID: .random(), issuedAt: now + 600, expiresAt: now + 2400, budget: 5, network: home, keyring: keyring))
        #expect(throws: TokenRejection.notYetValid) { try SessionToken.verify(future, keyring: keyring, network: home, now: now) }
        let otherRing = try TokenKeyring(keys: [(3, Array(repeating: 1, count: 32))])
        let foreign = SessionToken.mint(keyring: otherRing, network: home, now: now, lifetimeSeconds: 60, budget: 1)
        #expect(throws: TokenRejection.unknownKey) { try SessionToken.verify(foreign.encoded, keyring: keyring, network: home, now: now) }
        #expect(throws: TokenRejection.wrongNetwork) {
            try SessionToken.verify(minted.encoded, keyring: keyring, network: try #require(ClientNetwork(address: "200.150.11.77")), now: now)
        }
        #expect(throws: TokenRejection.malformed) { try SessionToken.verify("not-a-token", keyring: keyring, network: home, now: now) }
        #expect(throws: TokenRejection.malformed) { try SessionToken.verify(minted.encoded + "A", keyring: keyring, network: home, now: now) }
    }

    @Test func rotatedKeysKeepVerifyingOldTokens() throws {
        let old = try TokenKeyring(keys: [(1, Array(repeating: 7, count: 32))])
        let minted = SessionToken.mint(keyring: old, network: home, now: now, lifetimeSeconds: 60, budget: 1)
        #expect(minted.token.keyID == 1)
        _ = try SessionToken.verify(minted.encoded, keyring: keyring, network: home, now: now)
    }

    @Test func keyFilesParseAndRejectShortKeys() throws {
        let ring = try TokenKeyring(parsing: "# comment\n1:\(TokenKeyring.generateSecret())\n4:\(TokenKeyring.generateSecret())\n", source: "test")
        #expect(ring.signingKeyID == 4)
        #expect(throws: ConfigurationError.self) { try TokenKeyring(parsing: "1:c2hvcnQ=", source: "test") }
        #expect(throws: ConfigurationError.self) { try TokenKeyring(parsing: "", source: "test") }
        #expect(throws: ConfigurationError.self) { try TokenKeyring(parsing: "x:y", source: "test") }
    }
}

@Suite("Proof-of-work challenges")
struct ChallengeTests {
    let keyring = try! TokenKeyring(keys: [(1, Array(repeating: 7, count: 32))])
    let now: Int64 = 1_795_827_600

    @Test func aSolvedChallengeVerifies() throws {
        let issued = Challenge.issue(keyring: keyring, now: now, lifetimeSeconds: 120, difficulty: 10)
        let counter = issued.challenge.solve()
        let verified = try Challenge.verify(issued.encoded, counter: counter, keyring: keyring, now: now + 5)
        #expect(verified.nonce == issued.challenge.nonce)
        #expect(verified.difficulty == 10)
    }

    @Test func wrongSolutionExpiredAndTamperedAreRejected() throws {
        let issued = Challenge.issue(keyring: keyring, now: now, lifetimeSeconds: 120, difficulty: 12)
        let counter = issued.challenge.solve()
        var wrong = counter &+ 1
        while issued.challenge.isSolved(by: wrong) { wrong &+= 1 }
        #expect(throws: ChallengeRejection.wrongSolution) { try Challenge.verify(issued.encoded, counter: wrong, keyring: keyring, now: now) }
        #expect(throws: ChallengeRejection.expired) { try Challenge.verify(issued.encoded, counter: counter, keyring: keyring, now: now + 120) }
        var bytes = try #require(Base64URL.decode(issued.encoded))
        bytes[34] = 0 // ask for difficulty 0 without the key: the MAC no longer matches
        #expect(throws: ChallengeRejection.invalid) { try Challenge.verify(Base64URL.encode(bytes), counter: 0, keyring: keyring, now: now) }
        #expect(throws: ChallengeRejection.invalid) { try Challenge.verify("%%%", counter: 0, keyring: keyring, now: now) }
    }

    @Test func base64URLRoundTripsAndRejectsOtherAlphabets() {
        for length in 0..<70 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            #expect(Base64URL.decode(Base64URL.encode(bytes)) == bytes)
        }
        #expect(Base64URL.decode("ab+/") == nil)
        #expect(Base64URL.decode("abc=") == nil)
        #expect(Base64URL.decode("a") == nil)
        #expect(Base64URL.decode("AA") == [0])
        #expect(Base64URL.decode("AB") == nil)
    }
}

/// Flips each bit of a token in turn and expects every variant to be refused.
func expectEveryBitFlipRejected(_ encoded: String, keyring: TokenKeyring, network: ClientNetwork, now: Int64) throws {
    let bytes = try #require(Base64URL.decode(encoded))
    #expect(bytes.count == SessionToken.length)
    for index in bytes.indices {
        for bit in 0..<8 {
            var flipped = bytes
            flipped[index] ^= UInt8(1 << bit)
            #expect(throws: TokenRejection.self, "byte \(index) bit \(bit)") {
                try SessionToken.verify(Base64URL.encode(flipped), keyring: keyring, network: network, now: now)
            }
        }
    }
}
