import Crypto

/// Why a session token was refused; `code` is the machine-readable reason in the 401.
public enum TokenRejection: String, Error, Sendable {
    case missing = "token_missing"
    case malformed = "token_malformed"
    case invalid = "token_invalid"
    case expired = "token_expired"
    case notYetValid = "token_not_yet_valid"
    case unknownKey = "token_unknown_key"
    case wrongNetwork = "token_wrong_network"

    public var code: String { rawValue }
}

/// A per-session "human" token, minted after a solved proof-of-work challenge.
///
/// Fixed-width binary layout (78 bytes, base64url on the wire), big-endian:
///
/// | bytes | field |
/// | --- | --- |
/// | 0 | kind and version: `0x54` ("T", v1) |
/// | 1 | key id |
/// | 2–17 | session id: a keyed hash of the challenge that bought the session |
/// | 18–25 | issued at (seconds since 1970) |
/// | 26–33 | expires at (seconds since 1970) |
/// | 34–37 | vote budget |
/// | 38–45 | keyed hash of the client's /24 (IPv4) or /48 (IPv6) prefix |
/// | 46–77 | HMAC-SHA256 over bytes 0–45 |
public struct SessionToken: Sendable, Equatable {
    static let kind: UInt8 = 0x54
    static let bodyLength = 46
    /// Length of the binary token.
    public static let length = bodyLength + 32
    /// Clock skew tolerated for tokens issued "in the future", in seconds.
    public static let allowedSkewSeconds: Int64 = 5

    public var keyID: UInt8
    public var sessionID: VoteID
    public var issuedAt: Int64
    public var expiresAt: Int64
    public var budget: UInt32
    var networkHash: UInt64

    /// Mints the session that a solved `challenge` buys for a client on `network`, signed
    /// with the keyring's current key.
    ///
    /// Nothing in it is random: the session id is a keyed hash of the challenge (under the
    /// challenge's own key) and the token's times start at the challenge's issue time, so
    /// every API instance with the same keys and settings that redeems the same challenge
    /// mints the same bytes for the same network, and the same session id for any network.
    /// A solved challenge is one session, and one budget, across the fleet. `nil` when the
    /// keyring does not hold the challenge's key (`Challenge.verify` already refused it then).
    public static func mint(redeeming challenge: Challenge, keyring: TokenKeyring, network: ClientNetwork, lifetimeSeconds: Int64, budget: UInt32) -> (token: SessionToken, encoded: String)? {
        guard let sessionID = challenge.sessionID(keyring: keyring) else { return nil }
        return mint(keyring: keyring, sessionID: sessionID, network: network, issuedAt: challenge.issuedAt, lifetimeSeconds: lifetimeSeconds, budget: budget)
    }

    /// Mints a token with a random session id for a client on `network` (tests and tools:
    /// the API mints with `mint(redeeming:…)`).
    public static func mint(keyring: TokenKeyring, network: ClientNetwork, now: Int64, lifetimeSeconds: Int64, budget: UInt32) -> (token: SessionToken, encoded: String) {
        mint(keyring: keyring, sessionID: .random(), network: network, issuedAt: now, lifetimeSeconds: lifetimeSeconds, budget: budget)
    }

    private static func mint(keyring: TokenKeyring, sessionID: VoteID, network: ClientNetwork, issuedAt: Int64, lifetimeSeconds: Int64, budget: UInt32) -> (token: SessionToken, encoded: String) {
        let key = keyring.signingKey
        let token = SessionToken(
            keyID: keyring.signingKeyID, sessionID: sessionID, issuedAt: issuedAt,
            expiresAt: issuedAt + lifetimeSeconds, budget: budget, networkHash: network.hash(using: key)
        )
        var bytes = token.body
        bytes.append(contentsOf: HMAC<SHA256>.authenticationCode(for: bytes, using: key))
        return (token, Base64URL.encode(bytes))
    }

    /// Checks a token's layout, MAC (constant time), times and network, without allocating
    /// on the way (the token is decoded into stack memory). With a keyring that remembers
    /// verified tokens, the exact bytes of a token seen before skip the MAC.
    public static func verify(_ encoded: some StringProtocol, keyring: TokenKeyring, network: ClientNetwork, now: Int64) throws(TokenRejection) -> SessionToken {
        guard encoded.utf8.count == (length * 4 + 2) / 3 else { throw .malformed }
        let outcome = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: length) { buffer -> Result<SessionToken, TokenRejection> in
            guard Base64URL.decode(encoded, into: buffer) == length else { return .failure(.malformed) }
            return check(UnsafeBufferPointer(buffer), keyring: keyring, network: network, now: now)
        }
        return try outcome.get()
    }

    private static func check(_ bytes: UnsafeBufferPointer<UInt8>, keyring: TokenKeyring, network: ClientNetwork, now: Int64) -> Result<SessionToken, TokenRejection> {
        guard bytes[0] == kind else { return .failure(.malformed) }
        if let rejection = checkMAC(bytes, keyring: keyring) { return .failure(rejection) }
        func word(at offset: Int) -> UInt64 {
            (offset..<offset + 8).reduce(0) { $0 << 8 | UInt64(bytes[$1]) }
        }
        let token = SessionToken(
            keyID: bytes[1],
            sessionID: VoteID(high: word(at: 2), low: word(at: 10)),
            issuedAt: Int64(bitPattern: word(at: 18)),
            expiresAt: Int64(bitPattern: word(at: 26)),
            budget: UInt32(truncatingIfNeeded: word(at: 30)),
            networkHash: word(at: 38)
        )
        guard token.issuedAt <= now + allowedSkewSeconds else { return .failure(.notYetValid) }
        guard now < token.expiresAt else { return .failure(.expired) }
        guard token.networkHash == keyring.networkHash(network, keyID: token.keyID) else { return .failure(.wrongNetwork) }
        return .success(token)
    }

    /// The MAC over the body, skipped for bytes the keyring's memo saw verify before.
    private static func checkMAC(_ bytes: UnsafeBufferPointer<UInt8>, keyring: TokenKeyring) -> TokenRejection? {
        guard let memo = keyring.verifiedTokens else { return verifyMAC(bytes, keyring: keyring) }
        let words = VerifiedTokenMemo.Words(bytes)
        if memo.contains(words) { return nil }
        if let rejection = verifyMAC(bytes, keyring: keyring) { return rejection }
        memo.remember(words)
        return nil
    }

    private static func verifyMAC(_ bytes: UnsafeBufferPointer<UInt8>, keyring: TokenKeyring) -> TokenRejection? {
        guard var mac = keyring.keyedMAC(id: bytes[1]) else { return .unknownKey }
        mac.update(data: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[..<bodyLength])))
        // HashedAuthenticationCode's == with bytes is swift-crypto's constant-time comparison.
        guard mac.finalize() == UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[bodyLength...])) else { return .invalid }
        return nil
    }

    var body: [UInt8] {
        var bytes: [UInt8] = [Self.kind, keyID]
        bytes.reserveCapacity(Self.length)
        bytes.appendBigEndian(sessionID.high)
        bytes.appendBigEndian(sessionID.low)
        bytes.appendBigEndian(UInt64(bitPattern: issuedAt))
        bytes.appendBigEndian(UInt64(bitPattern: expiresAt))
        bytes.appendBigEndian(budget)
        bytes.appendBigEndian(networkHash)
        return bytes
    }
}

extension SessionToken {
    /// Signs an arbitrary token (tests use it to forge expired or future-dated ones with a real key).
    public static func sign(keyID: UInt8, sessionID: VoteID, issuedAt: Int64, expiresAt: Int64, budget: UInt32, network: ClientNetwork, keyring: TokenKeyring) -> String? {
        guard let key = keyring.key(id: keyID) else { return nil }
        let token = SessionToken(keyID: keyID, sessionID: sessionID, issuedAt: issuedAt, expiresAt: expiresAt, budget: budget, networkHash: network.hash(using: key))
        var bytes = token.body
        bytes.append(contentsOf: HMAC<SHA256>.authenticationCode(for: bytes, using: key))
        return Base64URL.encode(bytes)
    }
}
