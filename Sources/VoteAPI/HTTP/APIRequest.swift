import NIOCore
import NIOHTTP1

/// A request as the application sees it, after the HTTP layer framed it.
struct APIRequest {
    var method: HTTPMethod
    var uri: String
    var route: Route
    var headers: HTTPHeaders
    var body: ByteBuffer?
    /// The socket peer (before trusting any proxy header).
    var peer: Peer
    var requestID: String

    /// `415` unless the body is JSON (or there is no body and no type).
    var jsonContentTypeError: APIError? {
        guard let type = headers.first(name: "Content-Type") else {
            return (body?.readableBytes ?? 0) == 0 ? nil : .unsupportedMediaType
        }
        if type == "application/json" { return nil }
        let mediaType = type.split(separator: ";", maxSplits: 1).first?.trimmingSpaces.lowercased()
        return mediaType == "application/json" ? nil : .unsupportedMediaType
    }

    /// The body's bytes (empty without a body).
    var bodyBytes: ByteBufferView {
        body?.readableBytesView ?? ByteBuffer().readableBytesView
    }
}
