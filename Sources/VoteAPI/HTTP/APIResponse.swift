import NIOCore
import NIOHTTP1

/// An answer: status, JSON body and extra headers.
struct APIResponse {
    var status: HTTPResponseStatus
    var body: [UInt8]
    var headers: [(String, String)] = []

    init(status: HTTPResponseStatus, body: [UInt8], headers: [(String, String)] = []) {
        self.status = status
        self.body = body
        self.headers = headers
    }

    init(error: APIError) {
        status = error.status
        body = error.body()
        if let retry = error.retryAfterSeconds { headers.append(("Retry-After", String(retry))) }
        if !error.allow.isEmpty { headers.append(("Allow", error.allow.map(\.rawValue).joined(separator: ", "))) }
    }
}

/// Either an answer now, or one that comes later: after a store read, or once the broker
/// confirmed a vote (the connection publishes it, then answers with
/// `APIApplication.answer(_:settled:)`).
enum APIAnswer {
    case now(APIResponse)
    case later(EventLoopFuture<APIResponse>)
    case publish(AdmittedVote)
}
