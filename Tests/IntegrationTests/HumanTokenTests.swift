import Foundation
import Testing
import VoteShared

extension RealBrokerSuites {
    @Suite("Human tokens on the real stack")
    struct HumanTokenTests {
        @Test func votesWithoutAValidTokenNeverReachRabbitMQ() async throws {
            let stack = try TestStack()
            defer { stack.stopAll() }
            // No consumer: whatever reaches the broker stays in the queue, where we can count it.
            try await stack.startAPI()
            #expect(try stack.queueDepth() == 0)
            let valid = stack.token()
            var forged = Array(Base64URL.decode(valid) ?? [])
            forged[20] ^= 0x01
            let otherNetwork = SessionToken.mint(keyring: stack.keyring, network: ClientNetwork(address: "10.9.9.9")!, now: Timestamp.nowMillis() / 1000, lifetimeSeconds: 60, budget: 10).encoded
            let expired = SessionToken.sign(keyID: 1, sessionID: .random(), issuedAt: 1_000, expiresAt: 2_000, budget: 10, network: ClientNetwork(address: "127.0.0.1")!, keyring: stack.keyring) ?? ""
            let cases: [(String?, String)] = [(nil, "token_missing"), (Base64URL.encode(forged), "token_invalid"), (otherNetwork, "token_wrong_network"), (expired, "token_expired"), ("garbage", "token_malformed")]
            for (token, code) in cases {
                for _ in 0..<20 {
                    let response = try await stack.vote("aline", token: token)
                    #expect(response.status == 401)
                    #expect(response.errorCode == code)
                }
            }
            // Every refusal was answered before the broker was asked, so nothing can be on its way.
            #expect(try stack.queueDepth() == 0)
            #expect(try await stack.totals()["total"] as? Int == 0)
            // The same measurement sees a vote that did get through, and only that one.
            #expect(try await stack.vote("aline", token: valid).status == 202)
            try await waitUntil("the accepted vote is in the queue", timeout: .seconds(10)) { try stack.queueDepth() >= 1 }
            #expect(try stack.queueDepth() == 1)
        }

        @Test func aSolvedChallengeGivesATokenThatKeepsWorkingAcrossRestarts() async throws {
            let stack = try await TestStack.running()
            defer { stack.stopAll() }
            let challenge = try await stack.http.send("POST", stack.baseURL + "/api/v1/challenges")
            #expect(challenge.status == 201)
            let encoded = try #require(challenge.json["challenge"] as? String)
            let difficulty = try #require(challenge.json["difficulty"] as? Int)
            let counter = ProofOfWork.solve(try #require(Base64URL.decode(encoded)), difficulty: difficulty)
            let body = Data(#"{"challenge":"\#(encoded)","counter":\#(counter)}"#.utf8)
            let session = try await stack.http.send("POST", stack.baseURL + "/api/v1/sessions", body: body, headers: ["Content-Type": "application/json"])
            #expect(session.status == 201)
            let token = try #require(session.json["token"] as? String)
            let replay = try await stack.http.send("POST", stack.baseURL + "/api/v1/sessions", body: body, headers: ["Content-Type": "application/json"])
            #expect(replay.status == 401)
            #expect(replay.errorCode == "challenge_spent")
            #expect(try await stack.vote("diego", token: token).status == 202)

            stack.api?.terminate()
            try await stack.startAPI()
            #expect(try await stack.vote("diego", token: token).status == 202)
            let totals = try await expectTotalsSettle(stack, at: 2)
            #expect(votesByParticipant(totals)["diego"] == 2)
        }

        @Test func theRateLimitAnswers429AndAnExhaustedBudget401() async throws {
            let stack = try await TestStack.running(extraEnvironment: ["PAREDAO_VOTE_RATE": "0.5", "PAREDAO_VOTE_BURST": "2"])
            defer { stack.stopAll() }
            let token = stack.token()
            #expect(try await stack.vote("aline", token: token).status == 202)
            #expect(try await stack.vote("aline", token: token).status == 202)
            let limited = try await stack.vote("aline", token: token)
            #expect(limited.status == 429)
            #expect(limited.errorCode == "rate_limited")
            #expect(Int(limited.headers["retry-after"] ?? "") ?? 0 >= 1)

            let small = SessionToken.mint(keyring: stack.keyring, network: ClientNetwork(address: "127.0.0.1")!, now: Timestamp.nowMillis() / 1000, lifetimeSeconds: 60, budget: 1).encoded
            #expect(try await stack.vote("camila", token: small).status == 202)
            // Once the rate allows another vote, the spent budget is what refuses it.
            var exhausted: HTTPClient.Response?
            try await waitUntil("the session's rate allows a vote again", timeout: .seconds(10), every: .milliseconds(250)) {
                let answer = try await stack.vote("camila", token: small)
                exhausted = answer
                return answer.status != 429
            }
            #expect(exhausted?.status == 401)
            #expect(exhausted?.errorCode == "session_exhausted")
            _ = try await expectTotalsSettle(stack, at: 3)
        }
    }
}
