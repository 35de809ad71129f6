import FuzzSupport
import VoteShared

/// The session-token check every vote runs: SessionToken.verify on any text, with the fixed
/// keyring, network and clock of Fixtures.
///
/// Properties: verify never traps; the keyring that remembers verified tokens answers
/// exactly like the one that does not, the first time and the second; a token that
/// verifies is inside its times, re-signs from its fields to the very same text (one
/// spelling per token), and is refused from another network.
@main
enum FuzzSessionToken {
    static func main() { FuzzDriver.run(fuzzSessionToken) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSessionToken(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: FuzzDriver.bytes(data, size), as: UTF8.self)
    let plain = verify(text, keyring: Fixtures.keyring)
    let remembered = verify(text, keyring: Fixtures.rememberingKeyring)
    require(plain == remembered, "the remembering keyring answered \(remembered), the plain one \(plain)")
    let again = verify(text, keyring: Fixtures.rememberingKeyring)
    require(plain == again, "the remembering keyring answered \(again) the second time, the plain one \(plain)")
    require(verify(Substring(text), keyring: Fixtures.keyring) == plain, "a Substring verifies differently")
    trace("verify: \(plain)")
    guard case .success(let token) = plain else { return 0 }

    require(token.issuedAt <= Fixtures.now + SessionToken.allowedSkewSeconds, "accepted a token issued in the future")
    require(Fixtures.now < token.expiresAt, "accepted an expired token")
    let resigned = SessionToken.sign(
        keyID: token.keyID, sessionID: token.sessionID, issuedAt: token.issuedAt, expiresAt: token.expiresAt,
        budget: token.budget, network: Fixtures.network, keyring: Fixtures.keyring
    )
    require(resigned == text, "token re-signs as \(resigned ?? "nil"), not as the text that verified")
    let elsewhere = verify(text, keyring: Fixtures.keyring, network: Fixtures.otherNetwork)
    require(elsewhere == .failure(.wrongNetwork), "a token from another network answered \(elsewhere)")
    return 0
}

private func verify(_ text: some StringProtocol, keyring: TokenKeyring, network: ClientNetwork = Fixtures.network) -> Result<SessionToken, TokenRejection> {
    Result { () throws(TokenRejection) in try SessionToken.verify(text, keyring: keyring, network: network, now: Fixtures.now) }
}
