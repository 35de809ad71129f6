import Foundation
import NIOCore
import NIOHTTP1
import VoteShared
import VoteStore

/// The admin API (`/api/v1/admin/…`): polls created and edited as drafts, opened and
/// closed on air, and the audit log. The credential is checked first (`401` without one,
/// `403` with a wrong one, both in the same JSON error shape): an authenticated request
/// spends its credential's rate, a refused one its network's failure budget (``AdminGate``).
/// Every change is written to the audit log; refusals are summed into one row per window.
extension APIApplication {
    func admin(_ request: APIRequest, on eventLoop: any EventLoop) -> APIAnswer {
        guard !adminCredentials.isEmpty else { return .now(APIResponse(error: .adminDisabled)) }
        let client = clientAddress(request)
        let now = Timestamp.nowMillis()
        let authorization = request.headers.first(name: "Authorization")
        let refusal: AdminGate.Refusal
        switch adminCredentials.authenticate(authorization: authorization) {
        case .valid(let name):
            if let retryAfter = adminGate.admitAuthenticated(name: name, nowMillis: now) {
                return .now(APIResponse(error: .adminRateLimited(retryAfter: retryAfter)))
            }
            return adminAction(request, by: PollDirectory.Actor(name: name, client: client), on: eventLoop)
        case .missing:
            refusal = .missing
        case .wrong:
            refusal = .wrong
        }
        let claimed = adminCredentials.claimedName(authorization: authorization)
        if let retryAfter = adminGate.refuse(client: client, network: clientNetwork(request), claimedName: claimed, nowMillis: now) {
            metrics.adminRefused(.limited)
            return .now(APIResponse(error: .adminRateLimited(retryAfter: retryAfter)))
        }
        metrics.adminRefused(refusal)
        return .now(APIResponse(error: refusal == .wrong ? .adminCredentialWrong : .adminCredentialMissing))
    }

    private func adminAction(_ request: APIRequest, by actor: PollDirectory.Actor, on eventLoop: any EventLoop) -> APIAnswer {
        let pollID = Route.pollID(in: request.uri) ?? ""
        switch (request.route, request.method) {
        case (.adminPolls, .GET), (.adminPolls, .HEAD):
            return .now(pollList())
        case (.adminPolls, _):
            return createPoll(request, by: actor, on: eventLoop)
        case (.adminPoll, .PUT):
            return editPoll(pollID, request, by: actor, on: eventLoop)
        case (.adminPoll, _):
            guard let poll = polls.poll(pollID) else { return .now(APIResponse(error: .pollRule(.unknownPoll(pollID)))) }
            return .now(Self.pollBody(poll, status: .ok))
        case (.adminPollOpen, _):
            return change("open", pollID, detail: "{}", by: actor, on: eventLoop) { rules, now throws(PollRuleViolation) in
                try rules.open(id: pollID, nowMillis: now)
            }
        case (.adminPollClose, _):
            return change("close", pollID, detail: "{}", by: actor, on: eventLoop) { rules, now throws(PollRuleViolation) in
                try rules.close(id: pollID, nowMillis: now)
            }
        case (.adminAudit, _):
            return auditLog(request, on: eventLoop)
        default:
            return .now(APIResponse(error: .notFound(request.uri)))
        }
    }

    /// Writes the refused admin attempts counted since the last call as one audit row
    /// (nothing when there were none).
    func auditAdminRefusals(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        guard let summary = adminGate.takeSummary() else { return eventLoop.makeSucceededVoidFuture() }
        let entry = AdminGate.auditEntry(summary, windowSeconds: configuration.adminRefusalWindowSeconds, atMillis: Timestamp.nowMillis())
        return polls.audit(entry, on: eventLoop)
    }

    private func pollList() -> APIResponse {
        let now = Timestamp.nowMillis()
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("polls")
        writer.beginArray()
        for poll in polls.polls { Self.write(poll, atMillis: now, to: &writer) }
        writer.endArray()
        writer.endObject()
        return APIResponse(status: .ok, body: writer.bytes)
    }

    private struct ParticipantBody: Decodable {
        var id: String
        var name: String
        var photoUrl: String?
        var participant: Participant { Participant(id: id, name: name, photoUrl: photoUrl ?? "") }
    }

    private struct DraftBody: Decodable {
        var id: String
        var title: String
        var participants: [ParticipantBody]
    }

    private struct EditBody: Decodable {
        var title: String?
        var participants: [ParticipantBody]?
    }

    private func decode<Body: Decodable>(_ type: Body.Type, _ request: APIRequest) -> Result<Body, APIError> {
        if let error = request.jsonContentTypeError { return .failure(error) }
        do {
            return .success(try JSONDecoder().decode(Body.self, from: Data(request.bodyBytes)))
        } catch {
            return .failure(.invalidJSON("expected \(Body.self == DraftBody.self ? "{id, title, participants: [{id, name, photoUrl}]}" : "{title?, participants?}")"))
        }
    }

    private func createPoll(_ request: APIRequest, by actor: PollDirectory.Actor, on eventLoop: any EventLoop) -> APIAnswer {
        let body: DraftBody
        switch decode(DraftBody.self, request) {
        case .success(let decoded): body = decoded
        case .failure(let error): return .now(APIResponse(error: error))
        }
        let participants = body.participants.map(\.participant)
        let detail = Self.detail(title: body.title, participants: participants)
        return change("create", String(body.id.prefix(64)), detail: detail, status: .created, by: actor, on: eventLoop) { rules, now throws(PollRuleViolation) in
            try rules.create(id: body.id, title: body.title, participants: participants, nowMillis: now)
        }
    }

    private func editPoll(_ pollID: String, _ request: APIRequest, by actor: PollDirectory.Actor, on eventLoop: any EventLoop) -> APIAnswer {
        let body: EditBody
        switch decode(EditBody.self, request) {
        case .success(let decoded): body = decoded
        case .failure(let error): return .now(APIResponse(error: error))
        }
        let participants = body.participants?.map(\.participant)
        let detail = Self.detail(title: body.title, participants: participants)
        return change("edit", pollID, detail: detail, by: actor, on: eventLoop) { rules, _ throws(PollRuleViolation) in
            try rules.edit(id: pollID, title: body.title, participants: participants)
        }
    }

    private func change(
        _ action: String, _ pollID: String, detail: String, status: HTTPResponseStatus = .ok, by actor: PollDirectory.Actor, on eventLoop: any EventLoop,
        decide: @escaping @Sendable (PollLifecycle, Int64) throws(PollRuleViolation) -> PollChange
    ) -> APIAnswer {
        .later(polls.change(action: action, pollID: pollID, detail: detail, by: actor, on: eventLoop, decide: decide).map { outcome in
            switch outcome {
            case .changed(let poll): Self.pollBody(poll, status: status)
            case .refused(let violation): APIResponse(error: .pollRule(violation))
            case .conflict: APIResponse(error: .pollChangedMeanwhile)
            case .storeFailed: APIResponse(error: .storeUnavailable("The polls"))
            }
        })
    }

    private func auditLog(_ request: APIRequest, on eventLoop: any EventLoop) -> APIAnswer {
        let limit = request.queryValue("limit").flatMap { Int($0) }.map { min(max($0, 1), 500) } ?? 100
        return .later(polls.auditLog(limit: limit, on: eventLoop).map { entries in
            var writer = JSONWriter()
            writer.beginObject()
            writer.key("entries")
            writer.beginArray()
            for entry in entries {
                writer.beginObject()
                writer.field("at", Timestamp.iso8601(millis: entry.atMillis))
                writer.field("actor", entry.actor)
                writer.field("action", entry.action)
                writer.field("poll", entry.pollID)
                writer.field("detail", entry.detail)
                writer.field("client", entry.client)
                writer.endObject()
            }
            writer.endArray()
            writer.endObject()
            return APIResponse(status: .ok, body: writer.bytes)
        }.recover { _ in APIResponse(error: .storeUnavailable("The audit log")) })
    }

    static func pollBody(_ poll: Poll, status: HTTPResponseStatus) -> APIResponse {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("poll")
        write(poll, atMillis: Timestamp.nowMillis(), to: &writer)
        writer.endObject()
        return APIResponse(status: status, body: writer.bytes)
    }

    /// What a create or an edit sets, as a small JSON object for the audit log.
    private static func detail(title: String?, participants: [Participant]?) -> String {
        var writer = JSONWriter()
        writer.beginObject()
        if let title { writer.field("title", String(title.prefix(200))) }
        if let participants {
            writer.key("participants")
            writer.beginArray()
            for participant in participants.prefix(8) { writer.string(String(participant.id.prefix(64))) }
            writer.endArray()
        }
        writer.endObject()
        return String(decoding: writer.bytes, as: UTF8.self)
    }
}
