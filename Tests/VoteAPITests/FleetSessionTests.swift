import Foundation
import Testing
@testable import VoteAPI
import VoteShared

/// Two applications built like two VoteAPI processes with the same keys and settings.
@Suite("Sessions across API instances")
struct FleetSessionTests {
    func solvedChallenge(at app: TestApplication) throws -> String {
        let (_, challenge) = try app.send(.POST, "/api/v1/challenges")
        let encoded = try #require(challenge["challenge"] as? String)
        let difficulty = try #require(challenge["difficulty"] as? Int)
        let counter = ProofOfWork.solve(try #require(Base64URL.decode(encoded)), difficulty: difficulty)
        return #"{"challenge":"\#(encoded)","counter":\#(counter)}"#
    }

    @Test func aChallengeRedeemedAtTwoInstancesBuysTheSameSession() throws {
        let first = try TestApplication()
        let second = try TestApplication()
        let solved = try solvedChallenge(at: first)
        let (createdHere, here) = try first.send(.POST, "/api/v1/sessions", body: solved)
        let (createdThere, there) = try second.send(.POST, "/api/v1/sessions", body: solved)
        #expect(createdHere.status == .created)
        #expect(createdThere.status == .created)
        let token = try #require(here["token"] as? String)
        #expect(there["token"] as? String == token)
        #expect(there["expiresAt"] as? String == here["expiresAt"] as? String)
        // Each instance still refuses a replay of what it redeemed itself.
        #expect(try first.send(.POST, "/api/v1/sessions", body: solved).1.errorCode == "challenge_spent")
        #expect(try second.send(.POST, "/api/v1/sessions", body: solved).1.errorCode == "challenge_spent")
        // From another network the same challenge is the same session (id), bound to that network.
        let third = try TestApplication()
        let (_, elsewhere) = try third.send(.POST, "/api/v1/sessions", body: solved, peer: "10.1.2.3")
        let other = try #require(elsewhere["token"] as? String)
        #expect(other != token)
        let network = try #require(ClientNetwork(address: "10.1.2.3"))
        let verified = try SessionToken.verify(other, keyring: TestApplication.keyring, network: network, now: Timestamp.nowMillis() / 1000)
        let original = try SessionToken.verify(token, keyring: TestApplication.keyring, network: try #require(ClientNetwork(address: "127.0.0.1")), now: Timestamp.nowMillis() / 1000)
        #expect(verified.sessionID == original.sessionID)
    }

    @Test func aSessionLifetimeShorterThanTheChallengesAgeMintsNothing() throws {
        let app = try TestApplication(environment: ["PAREDAO_SESSION_TTL_SECONDS": "1"])
        let (_, challenge) = try app.send(.POST, "/api/v1/challenges")
        let encoded = try #require(challenge["challenge"] as? String)
        let counter = ProofOfWork.solve(try #require(Base64URL.decode(encoded)), difficulty: try #require(challenge["difficulty"] as? Int))
        let issuedAt = try Challenge.verify(encoded, counter: counter, keyring: TestApplication.keyring, now: Timestamp.nowMillis() / 1000).issuedAt
        // The session would run from the challenge's issue time: once a second has passed,
        // a one-second session is dead on arrival.
        while Timestamp.nowMillis() / 1000 < issuedAt + 1 { usleep(10_000) }
        let (refused, body) = try app.send(.POST, "/api/v1/sessions", body: #"{"challenge":"\#(encoded)","counter":\#(counter)}"#)
        #expect(refused.status == .unauthorized)
        #expect(body.errorCode == "challenge_expired")
    }
}
