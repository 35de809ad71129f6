import FuzzSupport
import VoteShared

/// The proof-of-work check behind `POST /api/v1/sessions`: Challenge.verify on any text and
/// counter. Input layout: the counter as 8 bytes big-endian (zero-padded when shorter),
/// then the challenge text.
///
/// Properties: verify never traps; a challenge that verifies has the fixed layout, is
/// unexpired, within the difficulty cap, solved by the counter, and encodes back to the
/// very same text.
@main
enum FuzzChallenge {
    static func main() { FuzzDriver.run(fuzzChallenge) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzChallenge(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = FuzzDriver.bytes(data, size)
    let counter = bytes.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) } << (8 * UInt64(8 - min(8, bytes.count)))
    let text = String(decoding: bytes.dropFirst(8), as: UTF8.self)
    let result = Result { () throws(ChallengeRejection) in
        try Challenge.verify(text, counter: counter, keyring: Fixtures.keyring, now: Fixtures.now)
    }
    let again = Result { () throws(ChallengeRejection) in
        try Challenge.verify(Substring(text), counter: counter, keyring: Fixtures.keyring, now: Fixtures.now)
    }
    require(result == again, "a Substring verifies differently")
    trace("verify(counter: \(counter)): \(result)")
    guard case .success(let challenge) = result else { return 0 }

    require(challenge.bytes.count == Challenge.length, "accepted \(challenge.bytes.count) bytes")
    require(Fixtures.now < challenge.expiresAt, "accepted an expired challenge")
    require((0...Challenge.maximumDifficulty).contains(challenge.difficulty), "accepted difficulty \(challenge.difficulty)")
    require(challenge.isSolved(by: counter), "accepted a counter that does not solve it")
    require(ProofOfWork.leadingZeroBitsForTesting(challenge.bytes, counter) >= challenge.difficulty, "work below the difficulty")
    require(Base64URL.encode(challenge.bytes) == text, "challenge encodes to other text than what verified")
    return 0
}
