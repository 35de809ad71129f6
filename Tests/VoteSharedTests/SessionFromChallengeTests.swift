import Testing
import VoteShared

/// What lets several API instances share one session per solved challenge: the token is a
/// function of the challenge, the keys, the settings and the client's network.
@Suite("Sessions minted from a challenge")
struct SessionFromChallengeTests {
    static let secret1 = Array(repeating: UInt8(7), count: 32)
    static let secret2 = Array(repeating: UInt8(9), count: 32)
    let keyring = try! TokenKeyring(keys: [(1, secret1), (2, secret2)])
    let home = ClientNetwork(address: "200.150.10.77")!
    let now: Int64 = 1_795_827_600

    func solvedChallenge(issuedAt: Int64? = nil) -> Challenge {
        Challenge.issue(keyring: keyring, now: issuedAt ?? now, lifetimeSeconds: 120, difficulty: 4).challenge
    }

    func redeem(_ challenge: Challenge, keyring: TokenKeyring? = nil, network: ClientNetwork? = nil) throws -> (token: SessionToken, encoded: String) {
        try #require(SessionToken.mint(redeeming: challenge, keyring: keyring ?? self.keyring, network: network ?? home, lifetimeSeconds: 1800, budget: 200))
    }

    /// The characters nginx hashes to pick a session's instance (nginx.conf.template's
    /// `$paredao_session_key`): token characters 4–23, i.e. bytes 3–17, inside the session id.
    func routingKey(_ encoded: String) -> Substring { encoded.dropFirst(4).prefix(20) }

    @Test func theSameChallengeMintsTheSameTokenInAnyProcessWithTheSameKeys() throws {
        let challenge = solvedChallenge()
        // Another process: the same key file, parsed on its own.
        let otherInstance = try TokenKeyring(keys: [(1, Self.secret1), (2, Self.secret2)])
        let here = try redeem(challenge)
        let there = try redeem(challenge, keyring: otherInstance)
        #expect(here.encoded == there.encoded)
        #expect(try redeem(challenge).encoded == here.encoded)
        #expect(here.token.sessionID == challenge.sessionID(keyring: keyring))
        #expect(here.token.issuedAt == challenge.issuedAt)
        #expect(here.token.expiresAt == challenge.issuedAt + 1800)
        let verified = try SessionToken.verify(there.encoded, keyring: keyring, network: home, now: now + 60)
        #expect(verified == here.token)
    }

    @Test func anotherChallengeMintsAnotherSession() throws {
        let first = try redeem(solvedChallenge())
        let second = try redeem(solvedChallenge())
        #expect(first.token.sessionID != second.token.sessionID)
        #expect(first.encoded != second.encoded)
        #expect(routingKey(first.encoded) != routingKey(second.encoded))
        var ids = Set<VoteID>()
        for _ in 0..<1000 { ids.insert(try redeem(solvedChallenge()).token.sessionID) }
        #expect(ids.count == 1000)
    }

    @Test func anotherNetworkGetsItsOwnTokenForTheSameSessionAndRoutingKey() throws {
        let challenge = solvedChallenge()
        let elsewhere = try #require(ClientNetwork(address: "198.51.100.20"))
        let here = try redeem(challenge)
        let there = try redeem(challenge, network: elsewhere)
        #expect(here.encoded != there.encoded)
        #expect(here.token.sessionID == there.token.sessionID)
        #expect(routingKey(here.encoded) == routingKey(there.encoded))
        _ = try SessionToken.verify(there.encoded, keyring: keyring, network: elsewhere, now: now)
        #expect(throws: TokenRejection.wrongNetwork) { try SessionToken.verify(there.encoded, keyring: keyring, network: home, now: now) }
    }

    @Test func theSessionIDComesFromTheChallengesKeySoARotationMidFleetKeepsIt() throws {
        let challenge = Challenge.issue(keyring: try TokenKeyring(keys: [(1, Self.secret1)]), now: now, lifetimeSeconds: 120, difficulty: 4).challenge
        let notRotated = try TokenKeyring(keys: [(1, Self.secret1)])
        let rotated = keyring // signs with key 2
        let old = try redeem(challenge, keyring: notRotated)
        let new = try redeem(challenge, keyring: rotated)
        #expect(old.token.keyID == 1)
        #expect(new.token.keyID == 2)
        #expect(old.token.sessionID == new.token.sessionID)
        #expect(routingKey(old.encoded) == routingKey(new.encoded))
        // A keyring without the challenge's key mints nothing.
        let stranger = try TokenKeyring(keys: [(3, Self.secret2)])
        #expect(SessionToken.mint(redeeming: challenge, keyring: stranger, network: home, lifetimeSeconds: 1800, budget: 200)?.encoded == nil)
    }

    @Test func aKeyWithTheSameIDButAnotherSecretDerivesAnotherSessionAndCannotVerify() throws {
        let challenge = solvedChallenge()
        let impostor = try TokenKeyring(keys: [(1, Array(repeating: 1, count: 32)), (2, Array(repeating: 3, count: 32))])
        #expect(challenge.sessionID(keyring: impostor) != challenge.sessionID(keyring: keyring))
        let forged = try redeem(challenge, keyring: impostor)
        #expect(throws: TokenRejection.invalid) { try SessionToken.verify(forged.encoded, keyring: keyring, network: home, now: now) }
    }

    @Test func aMintedTokenStillRefusesEveryTamperedBit() throws {
        let minted = try redeem(solvedChallenge())
        try expectEveryBitFlipRejected(minted.encoded, keyring: keyring, network: home, now: now + 1)
    }

    @Test func theSessionRunsFromTheChallengesIssueTime() throws {
        let challenge = solvedChallenge(issuedAt: now - 100)
        let minted = try redeem(challenge)
        #expect(minted.token.expiresAt == now - 100 + 1800)
        #expect(throws: TokenRejection.expired) { try SessionToken.verify(minted.encoded, keyring: keyring, network: home, now: now + 1700) }
    }
}
