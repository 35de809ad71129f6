import NIOCore
import VoteShared

/// The ballot's view of the polls: the current poll (`/api/v1/poll`) and the totals of the
/// current poll or of any poll by id (`/api/v1/totals?poll=ID`, `/total?poll=ID`).
extension APIApplication {
    /// `{"poll": {…, "state": "open"|"closed"}}` of the poll the ballot shows.
    func currentPoll() -> APIResponse {
        guard polls.hasRead else { return APIResponse(error: .pollsUnavailable) }
        let now = Timestamp.nowMillis()
        guard let poll = polls.current(atMillis: now) else { return APIResponse(error: .noPoll) }
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("poll")
        Self.write(poll, atMillis: now, to: &writer)
        writer.endObject()
        return APIResponse(status: .ok, body: writer.bytes)
    }

    /// The totals of `?poll=ID` (404 for an unknown poll or a draft), else — no `poll`, or
    /// an empty one — of the current poll.
    func pollTotals(_ request: APIRequest, on eventLoop: any EventLoop) -> APIAnswer {
        guard polls.hasRead else { return .now(APIResponse(error: .pollsUnavailable)) }
        let poll: Poll
        if let id = request.queryValue("poll"), !id.isEmpty {
            guard Poll.isValidID(id), let known = polls.publicPoll(id) else { return .now(APIResponse(error: .unknownPoll(id))) }
            poll = known
        } else {
            guard let current = polls.current(atMillis: Timestamp.nowMillis()) else { return .now(APIResponse(error: .noPoll)) }
            poll = current
        }
        return .later(totals.snapshot(of: poll, on: eventLoop).map { APIResponse(status: .ok, body: $0.json) }
            .flatMapErrorThrowing { _ in APIResponse(error: APIError(status: .serviceUnavailable, code: "store_unavailable", message: "Totals cannot be read right now.", retryAfterSeconds: 1)) })
    }

    /// A poll as the ballot and the admin API show it: its definition, its phase now
    /// (`state`: a closed poll is `open` until its closing time) and its times.
    static func write(_ poll: Poll, atMillis now: Int64, to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("id", poll.id)
        writer.field("title", poll.title)
        writer.field("state", poll.phase(atMillis: now).rawValue)
        writer.key("participants")
        writer.beginArray()
        for participant in poll.participants {
            writer.beginObject()
            writer.field("id", participant.id)
            writer.field("name", participant.name)
            writer.field("photoUrl", participant.photoUrl)
            writer.endObject()
        }
        writer.endArray()
        if let created = poll.createdAtMillis { writer.field("createdAt", Timestamp.iso8601(millis: created)) }
        if let opened = poll.openedAtMillis { writer.field("openedAt", Timestamp.iso8601(millis: opened)) }
        if let closed = poll.closedAtMillis { writer.field("closedAt", Timestamp.iso8601(millis: closed)) }
        writer.endObject()
    }
}
