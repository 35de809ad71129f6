import Testing
@testable import VoteShared

@Suite("Verified-token memo")
struct VerifiedTokenMemoTests {
    let plain = try! TokenKeyring(keys: [(1, Array(repeating: 7, count: 32)), (2, Array(repeating: 9, count: 32))])
    let home = ClientNetwork(address: "200.150.10.77")!
    let now: Int64 = 1_795_827_600

    private func words(_ encoded: String) throws -> VerifiedTokenMemo.Words {
        let bytes = try #require(Base64URL.decode(encoded))
        return bytes.withUnsafeBufferPointer { VerifiedTokenMemo.Words($0) }
    }

    @Test func aTokenIsRememberedOnlyAfterItsMACVerified() throws {
        let keyring = plain.rememberingVerifiedTokens(slots: 1024)
        let memo = try #require(keyring.verifiedTokens)
        let minted = SessionToken.mint(keyring: keyring, network: home, now: now, lifetimeSeconds: 1800, budget: 200)
        #expect(!memo.contains(try words(minted.encoded)))
        #expect(try SessionToken.verify(minted.encoded, keyring: keyring, network: home, now: now + 1) == minted.token)
        #expect(memo.contains(try words(minted.encoded)))
        #expect(try SessionToken.verify(minted.encoded, keyring: keyring, network: home, now: now + 2) == minted.token)

        // A forgery is checked in full and never remembered.
        var forged = try #require(Base64URL.decode(minted.encoded))
        forged[34] ^= 0x01
        let forgedText = Base64URL.encode(forged)
        #expect(throws: TokenRejection.invalid) { try SessionToken.verify(forgedText, keyring: keyring, network: home, now: now + 3) }
        #expect(!memo.contains(try words(forgedText)))
    }

    @Test func everyBitFlipOfARememberedTokenIsStillRejected() throws {
        let keyring = plain.rememberingVerifiedTokens(slots: 64)
        let minted = SessionToken.mint(keyring: keyring, network: home, now: now, lifetimeSeconds: 1800, budget: 200)
        _ = try SessionToken.verify(minted.encoded, keyring: keyring, network: home, now: now + 1)
        try expectEveryBitFlipRejected(minted.encoded, keyring: keyring, network: home, now: now + 1)
        // And the original still verifies after all those misses.
        #expect(try SessionToken.verify(minted.encoded, keyring: keyring, network: home, now: now + 2) == minted.token)
    }

    @Test func aRememberedTokenStillExpiresAndStaysOnItsNetwork() throws {
        let keyring = plain.rememberingVerifiedTokens(slots: 64)
        let minted = SessionToken.mint(keyring: keyring, network: home, now: now, lifetimeSeconds: 600, budget: 200)
        _ = try SessionToken.verify(minted.encoded, keyring: keyring, network: home, now: now + 1)
        #expect(throws: TokenRejection.expired) { try SessionToken.verify(minted.encoded, keyring: keyring, network: home, now: now + 600) }
        let elsewhere = try #require(ClientNetwork(address: "189.1.2.3"))
        #expect(throws: TokenRejection.wrongNetwork) { try SessionToken.verify(minted.encoded, keyring: keyring, network: elsewhere, now: now + 1) }
        let future = try #require(SessionToken.sign(keyID: 2, sessionID: .random(), issuedAt: now + 600, expiresAt: now + 2400, budget: 5, network: home, keyring: keyring))
        _ = try SessionToken.verify(future, keyring: keyring, network: home, now: now + 600)
        #expect(throws: TokenRejection.notYetValid) { try SessionToken.verify(future, keyring: keyring, network: home, now: now) }
    }

    @Test func collisionsInASmallMemoOnlyCostAFullCheck() throws {
        let keyring = plain.rememberingVerifiedTokens(slots: 64)
        #expect(try #require(keyring.verifiedTokens).capacity == 64)
        let minted = (0..<500).map { _ in SessionToken.mint(keyring: keyring, network: home, now: now, lifetimeSeconds: 1800, budget: 200) }
        for round in 0..<2 {
            for token in minted {
                #expect(try SessionToken.verify(token.encoded, keyring: keyring, network: home, now: now + Int64(round)) == token.token)
            }
        }
        // Another key's MAC on the same body is refused even where the slot holds a good token.
        let other = try TokenKeyring(keys: [(2, Array(repeating: 3, count: 32))])
        let impostor = try #require(SessionToken.sign(keyID: 2, sessionID: minted[0].token.sessionID, issuedAt: now, expiresAt: now + 1800, budget: 200, network: home, keyring: other))
        #expect(throws: TokenRejection.invalid) { try SessionToken.verify(impostor, keyring: keyring, network: home, now: now + 1) }
    }

    @Test func capacityRoundsUpToAPowerOfTwoAndZeroTurnsTheMemoOff() throws {
        #expect(try #require(plain.rememberingVerifiedTokens(slots: 1000).verifiedTokens).capacity == 1024)
        #expect(try #require(plain.rememberingVerifiedTokens(slots: 1).verifiedTokens).capacity == 64)
        #expect(plain.rememberingVerifiedTokens(slots: 0).verifiedTokens == nil)
        #expect(plain.verifiedTokens == nil)
    }
}
