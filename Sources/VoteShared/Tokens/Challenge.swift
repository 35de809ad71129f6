import Crypto

/// Why a challenge solution was refused; `code` is the reason in the 401.
public enum ChallengeRejection: String, Error, Sendable {
    case invalid = "challenge_invalid"
    case expired = "challenge_expired"
    case spent = "challenge_spent"
    case wrongSolution = "solution_wrong"

    public var code: String { rawValue }
}

/// A signed proof-of-work challenge.
///
/// Fixed-width binary layout (67 bytes, base64url on the wire), big-endian:
///
/// | bytes | field |
/// | --- | --- |
/// | 0 | kind and version: `0x43` ("C", v1) |
/// | 1 | key id |
/// | 2–17 | random nonce |
/// | 18–25 | issued at (seconds since 1970) |
/// | 26–33 | expires at (seconds since 1970) |
/// | 34 | difficulty: required leading zero bits |
/// | 35–66 | HMAC-SHA256 over bytes 0–34 |
///
/// A solution is a `counter` such that SHA-256(all 67 bytes ‖ counter as 8 bytes
/// big-endian) starts with `difficulty` zero bits.
public struct Challenge: Sendable, Equatable {
    static let kind: UInt8 = 0x43
    static let bodyLength = 35
    /// Length of the binary challenge.
    public static let length = bodyLength + 32
    /// The hardest difficulty a challenge may carry.
    public static let maximumDifficulty = 32

    public var keyID: UInt8
    public var nonce: VoteID
    public var issuedAt: Int64
    public var expiresAt: Int64
    public var difficulty: Int
    /// The signed bytes, as hashed by the solver.
    public var bytes: [UInt8]

    /// Issues a challenge signed with the keyring's current key.
    public static func issue(keyring: TokenKeyring, now: Int64, lifetimeSeconds: Int64, difficulty: Int) -> (challenge: Challenge, encoded: String) {
        precondition((0...maximumDifficulty).contains(difficulty))
        var bytes: [UInt8] = [kind, keyring.signingKeyID]
        let nonce = VoteID.random()
        bytes.appendBigEndian(nonce.high)
        bytes.appendBigEndian(nonce.low)
        bytes.appendBigEndian(UInt64(bitPattern: now))
        bytes.appendBigEndian(UInt64(bitPattern: now + lifetimeSeconds))
        bytes.append(UInt8(difficulty))
        bytes.append(contentsOf: HMAC<SHA256>.authenticationCode(for: bytes, using: keyring.signingKey))
        let challenge = Challenge(keyID: keyring.signingKeyID, nonce: nonce, issuedAt: now, expiresAt: now + lifetimeSeconds, difficulty: difficulty, bytes: bytes)
        return (challenge, Base64URL.encode(bytes))
    }

    /// Checks the layout, MAC and expiry, and that `counter` solves it. Whether the challenge
    /// was already spent is the caller's business (see `SpentChallenges`).
    public static func verify(_ encoded: some StringProtocol, counter: UInt64, keyring: TokenKeyring, now: Int64) throws(ChallengeRejection) -> Challenge {
        guard let bytes = Base64URL.decode(encoded), bytes.count == length, bytes[0] == kind,
              let key = keyring.key(id: bytes[1]),
              HMAC<SHA256>.isValidAuthenticationCode(bytes[bodyLength...], authenticating: bytes[..<bodyLength], using: key)
        else { throw .invalid }
        let challenge = Challenge(
            keyID: bytes[1],
            nonce: VoteID(high: bytes.readBigEndian(UInt64.self, at: 2), low: bytes.readBigEndian(UInt64.self, at: 10)),
            issuedAt: Int64(bitPattern: bytes.readBigEndian(UInt64.self, at: 18)),
            expiresAt: Int64(bitPattern: bytes.readBigEndian(UInt64.self, at: 26)),
            difficulty: Int(bytes[34]),
            bytes: bytes
        )
        guard challenge.difficulty <= maximumDifficulty else { throw .invalid }
        guard now < challenge.expiresAt else { throw .expired }
        guard challenge.isSolved(by: counter) else { throw .wrongSolution }
        return challenge
    }

    /// The id of the session this challenge buys: the first 16 bytes of HMAC-SHA256, under
    /// the challenge's own key, of a tag (`0x53` "S", v1) and the challenge's 67 bytes. The
    /// tag keeps it apart from every other MAC made with that key (challenges start with
    /// `0x43`, tokens with `0x54`, network hashes with `0x4E`). `nil` when the keyring does
    /// not hold the challenge's key.
    public func sessionID(keyring: TokenKeyring) -> VoteID? {
        guard let key = keyring.key(id: keyID) else { return nil }
        var input: [UInt8] = [0x53, 0x01]
        input.append(contentsOf: bytes)
        let mac = Array(HMAC<SHA256>.authenticationCode(for: input, using: key))
        return VoteID(high: mac.readBigEndian(UInt64.self, at: 0), low: mac.readBigEndian(UInt64.self, at: 8))
    }

    /// Whether SHA-256(bytes ‖ counter) has `difficulty` leading zero bits.
    public func isSolved(by counter: UInt64) -> Bool {
        ProofOfWork.leadingZeroBits(ProofOfWork.digest(bytes, counter)) >= difficulty
    }

    /// Finds the first counter that solves the challenge (what a browser or the token tool does).
    public func solve() -> UInt64 {
        ProofOfWork.solve(bytes, difficulty: difficulty)
    }
}

/// SHA-256 proof of work over `challenge ‖ counter`.
public enum ProofOfWork {
    /// The first counter whose digest with `challengeBytes` has `difficulty` leading zero bits.
    public static func solve(_ challengeBytes: [UInt8], difficulty: Int) -> UInt64 {
        var counter: UInt64 = 0
        while leadingZeroBits(digest(challengeBytes, counter)) < difficulty { counter &+= 1 }
        return counter
    }

    static func digest(_ bytes: [UInt8], _ counter: UInt64) -> SHA256.Digest {
        var hasher = SHA256()
        hasher.update(data: bytes)
        var bigEndian = counter.bigEndian
        withUnsafeBytes(of: &bigEndian) { hasher.update(bufferPointer: $0) }
        return hasher.finalize()
    }

    /// Leading zero bits of SHA-256(`challengeBytes` ‖ `counter`), for tests and tools.
    public static func leadingZeroBitsForTesting(_ challengeBytes: [UInt8], _ counter: UInt64) -> Int {
        leadingZeroBits(digest(challengeBytes, counter))
    }

    static func leadingZeroBits(_ digest: SHA256.Digest) -> Int {
        var zeros = 0
        for byte in digest {
            if byte == 0 {
                zeros += 8
                continue
            }
            return zeros + byte.leadingZeroBitCount
        }
        return zeros
    }
}
