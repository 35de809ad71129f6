import Foundation
import NIOHTTP1
import NIOPosix
import Testing
@testable import VoteAPI
import VoteShared

/// Polls through the API: the ballot's current poll, votes refused when no poll is open,
/// the admin API's credential, rules and audit log, totals of any poll.
@Suite("Polls and admin API")
struct PollAdminTests {
    let admin = [("Authorization", "Bearer " + TestApplication.adminToken)]

    func vote(_ app: TestApplication, _ participant: String, poll: String? = nil) throws -> (APIResponse, [String: Any]) {
        let pollField = poll.map { #","poll":"\#($0)""# } ?? ""
        return try app.send(.POST, "/api/v1/votes", body: #"{"participant":"\#(participant)"\#(pollField)}"#, headers: [("Authorization", "Bearer " + app.token())])
    }

    func draft(_ app: TestApplication, id: String = "p11", participants: [String] = ["ana", "bia", "caio"]) throws -> (APIResponse, [String: Any]) {
        let list = participants.map { #"{"id":"\#($0)","name":"\#($0.capitalized)","photoUrl":"/img/sem-foto.svg"}"# }.joined(separator: ",")
        return try app.send(.POST, "/api/v1/admin/polls", body: #"{"id":"\#(id)","title":"Paredão 11","participants":[\#(list)]}"#, headers: admin)
    }

    func state(_ body: [String: Any]) -> String? { (body["poll"] as? [String: Any])?["state"] as? String }

    @Test func theSeededPollIsOpenAndCurrent() throws {
        let app = try TestApplication(publisher: ScriptedPublisher(outcome: .success(())))
        let (response, body) = try app.send(.GET, "/api/v1/poll")
        #expect(response.status == .ok && state(body) == "open")
        #expect(try vote(app, "aline").0.status == .accepted)
    }

    @Test func adminWithoutACredentialIs401AndWithAWrongOneIs403() throws {
        let app = try TestApplication()
        let (missing, missingBody) = try app.send(.GET, "/api/v1/admin/polls")
        #expect(missing.status == .unauthorized && missingBody.errorCode == "admin_unauthenticated")
        let (basic, _) = try app.send(.GET, "/api/v1/admin/polls", headers: [("Authorization", "Basic cHJvZHV0b3I6eA==")])
        #expect(basic.status == .unauthorized)
        let (wrong, wrongBody) = try app.send(.POST, "/api/v1/admin/polls/bbb26-paredao-10/close", headers: [("Authorization", "Bearer produtor:not-the-secret-at-all")])
        #expect(wrong.status == .forbidden && wrongBody.errorCode == "admin_forbidden")
        // The poll is still open, and the refusals are in the audit log as one summary row.
        #expect(state(try app.send(.GET, "/api/v1/poll").1) == "open")
        try app.application.auditAdminRefusals(on: MultiThreadedEventLoopGroup.singleton.next()).wait()
        let entries = try #require(try app.send(.GET, "/api/v1/admin/audit", headers: admin).1["entries"] as? [[String: Any]])
        #expect(entries.first?["action"] as? String == "auth_refused" && entries.first?["actor"] as? String == "-")
        #expect(entries.first?["client"] as? String == "127.0.0.1")
        let detail = try #require((entries.first?["detail"] as? String).flatMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
        #expect(detail["refused"] as? Int == 3 && detail["networks"] as? Int == 1)
        let top = detail["top"] as? [[String: Any]]
        #expect(top?.first?["name"] as? String == "unknown" && top?.first?["refused"] as? Int == 2 && top?.last?["name"] as? String == "produtor")
    }

    @Test func authenticatedAdminRequestsSpendTheirCredentialsRate() throws {
        let app = try TestApplication(environment: ["PAREDAO_ADMIN_BURST": "3", "PAREDAO_ADMIN_RATE": "0.01"])
        for _ in 0..<3 { #expect(try app.send(.GET, "/api/v1/admin/polls", headers: admin).0.status == .ok) }
        let (limited, body) = try app.send(.GET, "/api/v1/admin/polls", headers: admin)
        #expect(limited.status == .tooManyRequests && body.errorCode == "rate_limited")
        // Votes are not limited by it.
        #expect(try app.send(.GET, "/api/v1/poll").0.status == .ok)
    }

    @Test func aProducersScriptIsNotThrottledByTheDefaults() throws {
        let app = try TestApplication()
        for _ in 0..<100 { #expect(try app.send(.GET, "/api/v1/admin/polls", headers: admin).0.status == .ok) }
    }

    @Test func aStrangerOnTheProducersNetworkSpendsOnlyTheFailureBudget() throws {
        let app = try TestApplication(environment: ["PAREDAO_ADMIN_FAILURE_BURST": "3", "PAREDAO_ADMIN_FAILURE_RATE": "0.01"])
        let wrong = [("Authorization", "Bearer produtor:guess-guess-guess-guess")]
        for _ in 0..<3 { #expect(try app.send(.GET, "/api/v1/admin/polls", headers: wrong, peer: "203.0.113.7").0.status == .forbidden) }
        let (limited, body) = try app.send(.GET, "/api/v1/admin/polls", headers: wrong, peer: "203.0.113.8")
        #expect(limited.status == .tooManyRequests && body.errorCode == "rate_limited")
        #expect(try app.send(.GET, "/api/v1/admin/polls", peer: "203.0.113.9").0.status == .tooManyRequests)
        // The producer on the same network still gets in; another network still gets its 403.
        #expect(try app.send(.GET, "/api/v1/admin/polls", headers: admin, peer: "203.0.113.10").0.status == .ok)
        #expect(try app.send(.GET, "/api/v1/admin/polls", headers: wrong, peer: "198.51.100.1").0.status == .forbidden)
    }

    @Test func guessesFromManyNetworksAreOneAuditRowAndABoundedTable() throws {
        let app = try TestApplication()
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let before = try #require(try app.send(.GET, "/api/v1/admin/audit?limit=500", headers: admin).1["entries"] as? [[String: Any]]).count
        for index in 0..<1500 {
            let peer = "10.\(index / 256).\(index % 256).1"
            let guess = [("Authorization", "Bearer name\(index):guess-guess-guess-guess")]
            #expect(try app.send(.POST, "/api/v1/admin/polls/bbb26-paredao-10/close", headers: guess, peer: peer).0.status == .forbidden)
        }
        // Nothing was written per guess.
        #expect(try #require(try app.send(.GET, "/api/v1/admin/audit?limit=500", headers: admin).1["entries"] as? [[String: Any]]).count == before)
        try app.application.auditAdminRefusals(on: eventLoop).wait()
        let entries = try #require(try app.send(.GET, "/api/v1/admin/audit?limit=500", headers: admin).1["entries"] as? [[String: Any]])
        #expect(entries.count == before + 1)
        let detail = try #require((entries.first?["detail"] as? String).flatMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
        // Every guess is counted; the table itemizes at most 1,024 networks and the row the top 10.
        #expect(detail["refused"] as? Int == 1500 && detail["networks"] as? Int == 1024)
        #expect((detail["top"] as? [Any])?.count == 10)
        // A new window starts empty: no row when nothing was refused.
        try app.application.auditAdminRefusals(on: eventLoop).wait()
        #expect(try #require(try app.send(.GET, "/api/v1/admin/audit?limit=500", headers: admin).1["entries"] as? [[String: Any]]).count == before + 1)
    }

    @Test func aPollGoesFromDraftToOpenToClosedAndEachRefusalIs409() throws {
        let app = try TestApplication(environment: ["PAREDAO_POLL_CLOSE_DELAY_MS": "0"], publisher: ScriptedPublisher(outcome: .success(())))
        let (created, createdBody) = try draft(app)
        #expect(created.status == .created && state(createdBody) == "draft")
        #expect(try draft(app).1.errorCode == "poll_exists")
        // Another poll is open: p11 cannot open yet.
        let (blocked, blockedBody) = try app.send(.POST, "/api/v1/admin/polls/p11/open", headers: admin)
        #expect(blocked.status == .conflict && blockedBody.errorCode == "another_poll_open")
        let (closed, closedBody) = try app.send(.POST, "/api/v1/admin/polls/bbb26-paredao-10/close", headers: admin)
        #expect(closed.status == .ok && state(closedBody) == "closed")
        #expect(try app.send(.POST, "/api/v1/admin/polls/bbb26-paredao-10/close", headers: admin).1.errorCode == "poll_not_open")
        // Closed: the ballot shows it closed, votes get 409 poll_closed.
        #expect(state(try app.send(.GET, "/api/v1/poll").1) == "closed")
        let (refused, refusedBody) = try vote(app, "aline")
        #expect(refused.status == .conflict && refusedBody.errorCode == "poll_closed")
        // Edit the draft (set participants), then open it: a three-participant paredão without a restart.
        let (edited, editedBody) = try app.send(.PUT, "/api/v1/admin/polls/p11", body: #"{"title":"Paredão 11 — quem sai?"}"#, headers: admin)
        #expect(edited.status == .ok && (editedBody["poll"] as? [String: Any])?["title"] as? String == "Paredão 11 — quem sai?")
        let (opened, openedBody) = try app.send(.POST, "/api/v1/admin/polls/p11/open", headers: admin)
        #expect(opened.status == .ok && state(openedBody) == "open")
        let (current, currentBody) = try app.send(.GET, "/api/v1/poll")
        #expect(current.status == .ok && (currentBody["poll"] as? [String: Any])?["id"] as? String == "p11")
        #expect(((currentBody["poll"] as? [String: Any])?["participants"] as? [Any])?.count == 3)
        let (accepted, _) = try vote(app, "caio")
        #expect(accepted.status == .accepted)
        #expect(app.publisher.published.last?.pollID == "p11")
        // A vote from a ballot still showing the closed poll is refused, not moved to p11.
        #expect(try vote(app, "caio", poll: "bbb26-paredao-10").1.errorCode == "poll_closed")
        // Editing an open poll is refused.
        let (editOpen, editOpenBody) = try app.send(.PUT, "/api/v1/admin/polls/p11", body: #"{"title":"x"}"#, headers: admin)
        #expect(editOpen.status == .conflict && editOpenBody.errorCode == "poll_not_draft")
        // The audit log has every action, newest first, with who and from where.
        let entries = try #require(try app.send(.GET, "/api/v1/admin/audit?limit=50", headers: admin).1["entries"] as? [[String: Any]])
        let actions = entries.map { $0["action"] as? String ?? "" }
        #expect(actions.prefix(3) == ["edit_refused", "open", "edit"])
        #expect(actions.contains("close") && actions.contains("create") && actions.contains("open_refused"))
        #expect(entries.allSatisfy { ($0["actor"] as? String) == "produtor" })
    }

    @Test func aDraftIsCheckedWhenCreatedAndEdited() throws {
        let app = try TestApplication()
        #expect(try draft(app, participants: ["ana"]).1.errorCode == "invalid_poll")
        #expect(try draft(app, participants: ["a", "b", "c", "d", "e"]).1.errorCode == "invalid_poll")
        #expect(try draft(app, id: "Bad Id").1.errorCode == "invalid_poll")
        #expect(try app.send(.POST, "/api/v1/admin/polls", body: "{}", headers: admin).1.errorCode == "invalid_json")
        #expect(try draft(app, participants: ["a", "b", "c", "d"]).0.status == .created)
        let (unknown, unknownBody) = try app.send(.PUT, "/api/v1/admin/polls/nope", body: "{}", headers: admin)
        #expect(unknown.status == .notFound && unknownBody.errorCode == "unknown_poll")
    }

    @Test func totalsOfAnyPollThatOpenedByIDAndUnknownIs404() throws {
        let app = try TestApplication(environment: ["PAREDAO_POLL_CLOSE_DELAY_MS": "0"])
        _ = try draft(app)
        let (current, currentBody) = try app.send(.GET, "/api/v1/totals")
        #expect(current.status == .ok && currentBody["poll"] as? String == "bbb26-paredao-10")
        // A draft has not aired: public routes answer exactly as for an id that does not exist.
        let (nope, nopeBody) = try app.send(.GET, "/api/v1/totals?poll=nope")
        for path in ["/total?poll=p11", "/api/v1/totals?poll=p11"] {
            let (hidden, hiddenBody) = try app.send(.GET, path)
            #expect(hidden.status == nope.status && hiddenBody.errorCode == nopeBody.errorCode)
            let nopeMessage = ((nopeBody["error"] as? [String: Any])?["message"] as? String)?.replacingOccurrences(of: "nope", with: "p11")
            #expect((hiddenBody["error"] as? [String: Any])?["message"] as? String == nopeMessage)
        }
        // An empty poll= is the current poll, not an unknown one.
        #expect(try app.send(.GET, "/api/v1/totals?poll=").1["poll"] as? String == "bbb26-paredao-10")
        // Once it opens it is public, and stays so after it closes.
        #expect(try app.send(.POST, "/api/v1/admin/polls/bbb26-paredao-10/close", headers: admin).0.status == .ok)
        #expect(try app.send(.POST, "/api/v1/admin/polls/p11/open", headers: admin).0.status == .ok)
        let (other, otherBody) = try app.send(.GET, "/total?poll=p11")
        #expect(other.status == .ok && otherBody["poll"] as? String == "p11" && (otherBody["participants"] as? [Any])?.count == 3)
        #expect(try app.send(.GET, "/total?poll=bbb26-paredao-10").0.status == .ok)
        let (unknown, unknownBody) = try app.send(.GET, "/api/v1/totals?poll=nope")
        #expect(unknown.status == .notFound && unknownBody.errorCode == "unknown_poll")
        #expect(try app.send(.GET, "/api/v1/totals?poll=Not%20Valid").0.status == .notFound)
    }

    @Test func aVoteNamingADraftIsNotOpenAndNotEndedAndLikeAnUnknownID() throws {
        let app = try TestApplication(publisher: ScriptedPublisher(outcome: .success(())))
        _ = try draft(app)
        let (drafted, draftedBody) = try vote(app, "ana", poll: "p11")
        let (unknown, unknownBody) = try vote(app, "ana", poll: "p99")
        #expect(drafted.status == .conflict && draftedBody.errorCode == "poll_not_open")
        let message = (draftedBody["error"] as? [String: Any])?["message"] as? String
        #expect(message == (unknownBody["error"] as? [String: Any])?["message"] as? String && unknown.status == drafted.status)
        #expect(message?.contains("ended") == false)
        #expect(app.publisher.published.isEmpty)
    }

    @Test func withoutACredentialFileTheAdminAPIIsDisabled() throws {
        let app = try TestApplication(environment: ["PAREDAO_ADMIN_TOKEN_FILE": "/nonexistent/admin-token"])
        let (response, body) = try app.send(.GET, "/api/v1/admin/polls", headers: admin)
        #expect(response.status == .serviceUnavailable && body.errorCode == "admin_disabled")
    }
}
