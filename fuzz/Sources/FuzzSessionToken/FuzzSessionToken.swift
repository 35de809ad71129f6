import FuzzSupport
import VoteShared

/// The session-token check every vote runs: SessionToken.verify with the fixed keyring,
/// network and clock of Fixtures, on the input as text, and on a token correctly signed
/// over fields read from the input (a fuzzer cannot forge a MAC, so this is how it reaches
/// the checks behind it with any times, key id and budget).
///
/// Properties: verify never traps; the keyring that remembers verified tokens answers
/// exactly like the one that does not, the first time and the second; a token that
/// verifies is inside its times, re-signs from its fields to the very same text (one
/// spelling per token), and is refused from another network; a signed token gets exactly
/// the answer its fields call for (not yet valid, expired, wrong network, or its fields back).
@main enum FuzzSessionToken { static func main() { FuzzDriver.run(fuzzSessionToken) } }

@_cdecl("LLVMFuzzerTestOneInput") public func fuzzSessionToken(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = FuzzDriver.bytes(data, size)
    checkText(String(decoding: bytes, as: UTF8.self))
    checkSigned(FuzzInput(bytes))
    return 0
}

private func checkText(_ text: String) {
    let plain = verify(text, keyring: Fixtures.keyring)
    let remembered = verify(text, keyring: Fixtures.rememberingKeyring)
    require(plain == remembered, "the remembering keyring answered \(remembered), the plain one \(plain)")
    let again = verify(text, keyring: Fixtures.rememberingKeyring)
    require(plain == again, "the remembering keyring answered \(again) the second time, the plain one \(plain)")
    require(verify(Substring(text), keyring: Fixtures.keyring) == plain, "a Substring verifies differently")
    trace("verify: \(plain)")
    guard case .success(let token) = plain else { return }

    require(token.issuedAt <= Fixtures.now + SessionToken.allowedSkewSeconds, "accepted a token issued in the future")
    require(Fixtures.now < token.expiresAt, "accepted an expired token")
    let resigned = SessionToken.sign(
        keyID: token.keyID, sessionID: token.sessionID, issuedAt: token.issuedAt, expiresAt: token.expiresAt,
        budget: token.budget, network: Fixtures.network, keyring: Fixtures.keyring
    )
    require(resigned == text, "token re-signs as \(resigned ?? "nil"), not as the text that verified")
    let elsewhere = verify(text, keyring: Fixtures.keyring, network: Fixtures.otherNetwork)
    require(elsewhere == .failure(.wrongNetwork), "a token from another network answered \(elsewhere)")
}

/// Input layout: key id (1 byte; 1 and 2 are known), session id (16), issued at (8),
/// expires at (8), budget (4), then a byte whose low bit signs for the other network.
private func checkSigned(_ input: FuzzInput) {
    var input = input
    let keyID = input.integer(UInt8.self)
    let sessionID = VoteID(high: input.integer(), low: input.integer())
    let issuedAt = input.int64()
    let expiresAt = input.int64()
    let budget = input.integer(UInt32.self)
    let network = input.integer(UInt8.self) & 1 == 0 ? Fixtures.network : Fixtures.otherNetwork
    let signed = SessionToken.sign(
        keyID: keyID, sessionID: sessionID, issuedAt: issuedAt, expiresAt: expiresAt,
        budget: budget, network: network, keyring: Fixtures.keyring
    )
    guard let text = signed else {
        require(!Fixtures.keys.contains { $0.id == keyID }, "no token signed with known key \(keyID)")
        return
    }
    let expected: Result<SessionToken, TokenRejection>
    if issuedAt > Fixtures.now + SessionToken.allowedSkewSeconds {
        expected = .failure(.notYetValid)
    } else if Fixtures.now >= expiresAt {
        expected = .failure(.expired)
    } else if network != Fixtures.network {
        expected = .failure(.wrongNetwork)
    } else {
        // Fields only: the network hash is not public, and re-signing covers it above.
        let verified = verify(text, keyring: Fixtures.keyring)
        guard case .success(let token) = verified else {
            require(false, "a token signed over good fields answered \(verified)")
            return
        }
        require(token.keyID == keyID && token.sessionID == sessionID && token.issuedAt == issuedAt
            && token.expiresAt == expiresAt && token.budget == budget, "verified fields differ from the signed ones: \(token)")
        checkText(text)
        return
    }
    let answer = verify(text, keyring: Fixtures.keyring)
    require(answer == expected, "a token signed over \(issuedAt)...\(expiresAt) answered \(answer), not \(expected)")
    require(verify(text, keyring: Fixtures.rememberingKeyring) == expected, "the remembering keyring answered otherwise")
}

private func verify(_ text: some StringProtocol, keyring: TokenKeyring, network: ClientNetwork = Fixtures.network) -> Result<SessionToken, TokenRejection> {
    Result { () throws(TokenRejection) in try SessionToken.verify(text, keyring: keyring, network: network, now: Fixtures.now) }
}
