import NIOHTTP1
import Testing
@testable import VoteAPI
import VoteShared

/// The vote route through the `VotePublishing` seam: what a confirm, a nack, a time-out or
/// a full mailbox turns into, without a broker.
@Suite("Vote use case")
struct VoteUseCaseTests {
    let vote = #"{"participant":"camila","voteId":"0190a3c4-5b6d-7e8f-9a0b-1c2d3e4f5a6b"}"#

    @Test func aConfirmedVoteIs202WithItsIdParticipantAndRemainingBudget() throws {
        let publisher = ScriptedPublisher(outcome: .success(()))
        let app = try TestApplication(publisher: publisher)
        let (response, body) = try app.send(.POST, "/api/v1/votes", body: vote, headers: [("Authorization", "Bearer \(app.token(budget: 3))")])
        #expect(response.status == .accepted)
        let answered = try #require(body["vote"] as? [String: Any])
        #expect(answered["id"] as? String == "0190a3c4-5b6d-7e8f-9a0b-1c2d3e4f5a6b")
        #expect(answered["participant"] as? String == "camila")
        #expect(answered["votesRemaining"] as? Int == 2)
        #expect((body["totals"] as? [String: Any])?["poll"] as? String == "bbb26-paredao-10")
        let published = try #require(publisher.published.first)
        #expect(published.pollID == "bbb26-paredao-10")
        #expect(published.participantID == "camila")
        #expect(published.id.description == "0190a3c4-5b6d-7e8f-9a0b-1c2d3e4f5a6b")
    }

    @Test func aVoteWithoutIdGetsAServerMadeTimeOrderedOne() throws {
        let publisher = ScriptedPublisher(outcome: .success(()))
        let app = try TestApplication(publisher: publisher)
        let auth = ("Authorization", "Bearer \(app.token())")
        _ = try app.send(.POST, "/api/v1/votes", body: #"{"participant":"aline"}"#, headers: [auth])
        _ = try app.send(.POST, "/api/v1/votes", body: #"{"participant":"aline"}"#, headers: [auth])
        let ids = publisher.published.map(\.id.description)
        #expect(ids.count == 2)
        #expect(Set(ids).count == 2)
        #expect(ids.allSatisfy { $0.dropFirst(14).first == "7" }, "UUID version 7")
    }

    @Test(arguments: [(PublishError.rejected, "broker_rejected"), (.timedOut, "broker_timeout"), (.overloaded, "overloaded"), (.unavailable, "broker_unavailable"), (.unroutable, "broker_unroutable"), (.blocked, "broker_blocked")])
    func aVoteTheBrokerDidNotTakeIs503AndRefundsTheSessionsUnit(error: PublishError, code: String) throws {
        let publisher = ScriptedPublisher(outcome: .failure(error))
        let app = try TestApplication(publisher: publisher)
        let auth = ("Authorization", "Bearer \(app.token(budget: 1))")
        let (refused, body) = try app.send(.POST, "/api/v1/votes", body: vote, headers: [auth])
        #expect(refused.status == .serviceUnavailable)
        #expect(body.errorCode == code)
        #expect(refused.headers.contains { $0.0 == "Retry-After" })
        // The one unit of this budget-1 session came back: the retry is accepted.
        publisher.setOutcome(.success(()))
        let (retried, retriedBody) = try app.send(.POST, "/api/v1/votes", body: vote, headers: [auth])
        #expect(retried.status == .accepted)
        #expect((retriedBody["vote"] as? [String: Any])?["votesRemaining"] as? Int == 0)
        #expect(try app.send(.POST, "/api/v1/votes", body: vote, headers: [auth]).1.errorCode == "session_exhausted")
    }

    @Test func readinessFollowsThePublishersConnection() throws {
        let publisher = ScriptedPublisher(outcome: .success(()))
        let app = try TestApplication(publisher: publisher)
        #expect(try app.send(.GET, "/readyz").0.status == .ok)
        publisher.setOutcome(.failure(.unavailable))
        #expect(try app.send(.GET, "/readyz").0.status == .serviceUnavailable)
    }

    @Test func readinessFailsWhileTheBrokerBlocksPublishing() throws {
        let publisher = ScriptedPublisher(outcome: .failure(.blocked))
        let app = try TestApplication(publisher: publisher)
        let (ready, body) = try app.send(.GET, "/readyz")
        #expect(ready.status == .serviceUnavailable)
        let message = (body["error"] as? [String: Any])?["message"] as? String ?? ""
        #expect(message.contains("broker is blocked (memory or disk alarm)"))
        publisher.setOutcome(.success(()))
        #expect(try app.send(.GET, "/readyz").0.status == .ok)
    }

    @Test func votesThatNeverReachThePublisherDoNotCallIt() throws {
        let publisher = ScriptedPublisher(outcome: .success(()))
        let app = try TestApplication(publisher: publisher)
        _ = try app.send(.POST, "/api/v1/votes", body: vote)
        _ = try app.send(.POST, "/api/v1/votes", body: #"{"participant":"boninho"}"#, headers: [("Authorization", "Bearer \(app.token())")])
        #expect(publisher.published.isEmpty)
    }
}

@Suite("API settings")
struct APIConfigurationTests {
    @Test func aFlagWinsOverTheEnvironmentWhichWinsOverTheDefault() throws {
        #expect(try APIConfiguration(environment: [:]).port == 8080)
        #expect(try APIConfiguration(environment: ["PAREDAO_API_PORT": "9000"]).port == 9000)
        #expect(try APIConfiguration(arguments: ["--api-port", "9100"], environment: ["PAREDAO_API_PORT": "9000"]).port == 9100)
        #expect(try APIConfiguration(arguments: ["--trusted-proxies", "10.0.0.1, 10.0.0.2"], environment: [:]).trustedProxies == ["10.0.0.1", "10.0.0.2"])
    }

    @Test func outOfRangeOrMalformedValuesNameTheirSource() throws {
        #expect { try APIConfiguration(environment: ["PAREDAO_API_PORT": "70000"]) } throws: { error in
            (error as? ConfigurationError)?.key == "PAREDAO_API_PORT"
        }
        #expect { try APIConfiguration(arguments: ["--vote-rate", "fast"], environment: [:]) } throws: { error in
            (error as? ConfigurationError)?.key == "--vote-rate"
        }
        #expect { try APIConfiguration(environment: ["PAREDAO_POW_DIFFICULTY": "18", "PAREDAO_POW_MAX_DIFFICULTY": "17"]) } throws: { error in
            (error as? ConfigurationError)?.key == "PAREDAO_POW_MAX_DIFFICULTY"
        }
    }

    @Test func theAPILogsInAsItsOwnUser() throws {
        let common = try APIConfiguration(environment: [:]).common
        #expect(common.amqpUser == "paredao-api")
        #expect(common.amqpPasswordFile == "var/secrets/rabbitmq-paredao-api.password")
        #expect(try APIConfiguration(environment: ["PAREDAO_AMQP_PASSWORD_FILE": "/run/pw"]).common.amqpPasswordFile == "/run/pw")
    }

    @Test func anUnknownFlagIsAUsageError() {
        #expect(throws: (any Error).self) { try APIConfiguration(arguments: ["--bogus"], environment: [:]) }
        #expect(throws: (any Error).self) { try APIConfiguration(arguments: ["--port", "9000"], environment: [:]) }
    }
}
