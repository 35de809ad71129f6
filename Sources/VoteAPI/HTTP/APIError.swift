import NIOHTTP1
import VoteShared

/// An error answer: status, machine-readable code and a message, rendered as
/// `{"error": {"code": …, "message": …}}`.
struct APIError: Error, Equatable {
    var status: HTTPResponseStatus
    var code: String
    var message: String
    var retryAfterSeconds: Int?
    var allow: [HTTPMethod] = []

    /// The label of `paredao_votes_rejected_total` this error counts under.
    var rejectionReason: String {
        switch status.code {
        case 401: code == "session_exhausted" ? "budget" : "token"
        case 429: "rate"
        case 422: "participant"
        case 409: "poll"
        case 503: "broker"
        default: "invalid"
        }
    }

    func body() -> [UInt8] {
        var writer = JSONWriter(capacity: 96 + message.utf8.count)
        writer.beginObject()
        writer.key("error")
        writer.beginObject()
        writer.field("code", code)
        writer.field("message", message)
        writer.endObject()
        writer.endObject()
        return writer.bytes
    }

    static func notFound(_ path: String) -> APIError {
        APIError(status: .notFound, code: "not_found", message: "No such resource: \(path.prefix(200))")
    }

    static func methodNotAllowed(_ allowed: [HTTPMethod]) -> APIError {
        APIError(status: .methodNotAllowed, code: "method_not_allowed", message: "Use \(allowed.map(\.rawValue).joined(separator: " or ")).", allow: allowed)
    }

    static func bodyTooLarge(limit: Int) -> APIError {
        APIError(status: .payloadTooLarge, code: "body_too_large", message: "The request body is larger than \(limit) bytes.")
    }

    static func headersTooLarge(fields: Int, bytes: Int) -> APIError {
        APIError(status: .requestHeaderFieldsTooLarge, code: "headers_too_large", message: "The request has more than \(fields) header fields or \(bytes) bytes of headers.")
    }

    static let unsupportedTransferEncoding = APIError(status: .notImplemented, code: "not_implemented", message: "Only the chunked transfer coding is supported.")

    static let requestTimeout = APIError(status: .requestTimeout, code: "request_timeout", message: "The request did not arrive in time.")

    static let unsupportedMediaType = APIError(status: .unsupportedMediaType, code: "unsupported_media_type", message: "Send the body as application/json.")

    static func invalidJSON(_ detail: String) -> APIError {
        APIError(status: .badRequest, code: "invalid_json", message: "The body is not valid JSON for this request: \(detail)")
    }

    static func invalidField(_ field: String, _ detail: String) -> APIError {
        APIError(status: .badRequest, code: "invalid_\(field)", message: detail)
    }

    static func unknownParticipant(_ id: String) -> APIError {
        APIError(status: .unprocessableEntity, code: "unknown_participant", message: "\"\(id.prefix(64))\" is not on this paredão.")
    }

    static func token(_ rejection: TokenRejection) -> APIError {
        let message = switch rejection {
        case .missing: "Send Authorization: Bearer <session token>; get one from /api/v1/challenges and /api/v1/sessions."
        case .malformed: "The session token is not well-formed."
        case .invalid: "The session token's signature does not match."
        case .expired: "The session token has expired; solve a new challenge."
        case .notYetValid: "The session token is dated in the future."
        case .unknownKey: "The session token was signed with a key this server does not know."
        case .wrongNetwork: "The session token belongs to another network."
        }
        return APIError(status: .unauthorized, code: rejection.code, message: message)
    }

    static let sessionExhausted = APIError(status: .unauthorized, code: "session_exhausted", message: "This session has used all its votes; solve a new challenge.")

    static func networkRateLimited(retryAfter: Int) -> APIError {
        APIError(status: .tooManyRequests, code: "rate_limited", message: "Too many requests from this network; retry in \(retryAfter) s.", retryAfterSeconds: retryAfter)
    }

    static func rateLimited(retryAfter: Int) -> APIError {
        APIError(status: .tooManyRequests, code: "rate_limited", message: "Too many votes for this session; retry in \(retryAfter) s.", retryAfterSeconds: retryAfter)
    }

    static func challenge(_ rejection: ChallengeRejection) -> APIError {
        let message = switch rejection {
        case .invalid: "The challenge is not one this server issued."
        case .expired: "The challenge has expired; ask for a new one."
        case .spent: "The challenge was already used."
        case .wrongSolution: "The counter does not solve the challenge."
        }
        return APIError(status: .unauthorized, code: rejection.code, message: message)
    }

    static let challengeStoreFull = APIError(status: .serviceUnavailable, code: "busy", message: "Too many sessions are being created; retry shortly.", retryAfterSeconds: 2)

    static func publish(_ error: PublishError) -> APIError {
        switch error {
        case .unavailable: APIError(status: .serviceUnavailable, code: "broker_unavailable", message: "Votes cannot be recorded right now; retry shortly.", retryAfterSeconds: 2)
        case .timedOut: APIError(status: .serviceUnavailable, code: "broker_timeout", message: "The vote was not confirmed in time; retry with the same voteId.", retryAfterSeconds: 1)
        case .rejected: APIError(status: .serviceUnavailable, code: "broker_rejected", message: "The broker refused the vote; retry with the same voteId.", retryAfterSeconds: 1)
        case .overloaded: APIError(status: .serviceUnavailable, code: "overloaded", message: "Too many votes are waiting; retry shortly.", retryAfterSeconds: 1)
        case .unroutable: APIError(status: .serviceUnavailable, code: "broker_unroutable", message: "The vote queue is missing on the broker; retry shortly with the same voteId.", retryAfterSeconds: 2)
        case .blocked: APIError(status: .serviceUnavailable, code: "broker_blocked", message: "The broker is short of memory or disk and accepts no votes; retry shortly.", retryAfterSeconds: 5)
        }
    }

    static func notReady(_ reasons: [String]) -> APIError {
        APIError(status: .serviceUnavailable, code: "not_ready", message: reasons.joined(separator: "; "), retryAfterSeconds: 1)
    }

    static let pollClosed = APIError(status: .conflict, code: "poll_closed", message: "Voting for this paredão has ended; the result is final.")

    static let pollNotOpen = APIError(status: .conflict, code: "poll_not_open", message: "No paredão is open for voting right now.")
    /// A vote naming a poll that is not the open one and never aired (a draft or an unknown
    /// id): the same answer for both, so a vote cannot tell whether a draft exists.
    static let namedPollNotOpen = APIError(status: .conflict, code: "poll_not_open", message: "This paredão is not open for voting.")

    static let pollsUnavailable = APIError(status: .serviceUnavailable, code: "polls_unavailable", message: "The polls cannot be read right now; retry shortly.", retryAfterSeconds: 1)

    static let noPoll = APIError(status: .notFound, code: "no_poll", message: "There is no paredão yet.")

    static func unknownPoll(_ id: Substring) -> APIError {
        APIError(status: .notFound, code: "unknown_poll", message: "There is no poll \"\(id.prefix(64))\".")
    }

    static let adminCredentialMissing = APIError(status: .unauthorized, code: "admin_unauthenticated", message: "Send Authorization: Bearer <admin credential>.")

    static let adminCredentialWrong = APIError(status: .forbidden, code: "admin_forbidden", message: "The admin credential is not valid.")

    static let adminDisabled = APIError(status: .serviceUnavailable, code: "admin_disabled", message: "The admin API has no credential configured (PAREDAO_ADMIN_TOKEN_FILE).")

    static func adminRateLimited(retryAfter: Int) -> APIError {
        APIError(status: .tooManyRequests, code: "rate_limited", message: "Too many admin requests from this network; retry in \(retryAfter) s.", retryAfterSeconds: retryAfter)
    }

    static func pollRule(_ violation: PollRuleViolation) -> APIError {
        switch violation {
        case .unknownPoll(let id): APIError(status: .notFound, code: "unknown_poll", message: "There is no poll \"\(id.prefix(64))\".")
        case .alreadyExists: APIError(status: .conflict, code: "poll_exists", message: violation.description)
        case .notDraft: APIError(status: .conflict, code: "poll_not_draft", message: violation.description)
        case .notOpen: APIError(status: .conflict, code: "poll_not_open", message: violation.description)
        case .anotherPollOpen: APIError(status: .conflict, code: "another_poll_open", message: violation.description)
        case .invalid(let problem): APIError(status: .unprocessableEntity, code: "invalid_poll", message: problem)
        }
    }

    static let pollChangedMeanwhile = APIError(status: .conflict, code: "poll_changed", message: "The poll changed meanwhile (or another poll was opened); read it again.")

    static func storeUnavailable(_ what: String) -> APIError {
        APIError(status: .serviceUnavailable, code: "store_unavailable", message: "\(what) cannot be reached right now.", retryAfterSeconds: 1)
    }

    static let internalError = APIError(status: .internalServerError, code: "internal", message: "Something went wrong on our side.")
}
