import FuzzSupport
import VoteShared

/// The proof-of-work check behind `POST /api/v1/sessions`: Challenge.verify on any text and
/// counter. Input layout: the counter as 8 bytes big-endian (zero-padded when shorter),
/// then the challenge text.
///
/// The same input also makes a challenge with Challenge.issue (issue time, lifetime and
/// difficulty read from it) that is then verified at a time and with a counter read from it.
///
/// Properties: verify never traps; a challenge that verifies has the fixed layout, is
/// unexpired, within the difficulty cap, solved by the counter, and encodes back to the
/// very same text; an issued challenge gets exactly the answer its times and the work call
/// for (expired, wrong solution, or its own fields back).
@main enum FuzzChallenge { static func main() { FuzzDriver.run(fuzzChallenge) } }

@_cdecl("LLVMFuzzerTestOneInput") public func fuzzChallenge(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = FuzzDriver.bytes(data, size)
    var input = FuzzInput(bytes)
    let counter = input.integer(UInt64.self)
    checkText(String(decoding: input.rest, as: UTF8.self), counter: counter)
    checkIssued(FuzzInput(bytes))
    return 0
}

private func checkText(_ text: String, counter: UInt64) {
    let result = Result { () throws(ChallengeRejection) in
        try Challenge.verify(text, counter: counter, keyring: Fixtures.keyring, now: Fixtures.now)
    }
    let again = Result { () throws(ChallengeRejection) in
        try Challenge.verify(Substring(text), counter: counter, keyring: Fixtures.keyring, now: Fixtures.now)
    }
    require(result == again, "a Substring verifies differently")
    trace("verify(counter: \(counter)): \(result)")
    guard case .success(let challenge) = result else { return }

    require(challenge.bytes.count == Challenge.length, "accepted \(challenge.bytes.count) bytes")
    require(Fixtures.now < challenge.expiresAt, "accepted an expired challenge")
    require((0...Challenge.maximumDifficulty).contains(challenge.difficulty), "accepted difficulty \(challenge.difficulty)")
    require(challenge.isSolved(by: counter), "accepted a counter that does not solve it")
    require(ProofOfWork.leadingZeroBitsForTesting(challenge.bytes, counter) >= challenge.difficulty, "work below the difficulty")
    require(Base64URL.encode(challenge.bytes) == text, "challenge encodes to other text than what verified")
}

/// Input layout: issue time (8 bytes), lifetime in seconds (2), difficulty (1, taken modulo
/// 33), verification time (8), counter (8).
private func checkIssued(_ input: FuzzInput) {
    var input = input
    let lifetime = Int64(input.integer(UInt16.self))
    // issue adds the lifetime to the clock's time: keep the sum in range, as a clock does.
    let issuedAt = min(input.int64(), Int64.max - lifetime)
    let difficulty = Int(input.integer(UInt8.self)) % (Challenge.maximumDifficulty + 1)
    let now = input.int64()
    let counter = input.integer(UInt64.self)
    let (issued, text) = Challenge.issue(keyring: Fixtures.keyring, now: issuedAt, lifetimeSeconds: lifetime, difficulty: difficulty)
    let answer = Result { () throws(ChallengeRejection) in
        try Challenge.verify(text, counter: counter, keyring: Fixtures.keyring, now: now)
    }
    let expected: Result<Challenge, ChallengeRejection>
    if now >= issued.expiresAt {
        expected = .failure(.expired)
    } else if ProofOfWork.leadingZeroBitsForTesting(issued.bytes, counter) < difficulty {
        expected = .failure(.wrongSolution)
    } else {
        expected = .success(issued)
    }
    require(answer == expected, "challenge issued at \(issuedAt) for \(lifetime) s, difficulty \(difficulty), verified at \(now) with \(counter): \(answer), not \(expected)")
}
