import FuzzSupport
import VoteShared

/// Unpadded base64url, which every token and challenge goes through first.
///
/// Properties: decoding any text never traps; text that decodes is the one canonical
/// spelling of its bytes (encode gives it back); decoding into a buffer agrees with
/// decoding into an array, and refuses a buffer one byte short; any bytes encode and
/// decode back to themselves.
@main enum FuzzBase64URL { static func main() { FuzzDriver.run(fuzzBase64URL) } }

@_cdecl("LLVMFuzzerTestOneInput") public func fuzzBase64URL(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = FuzzDriver.bytes(data, size)
    let text = String(decoding: bytes, as: UTF8.self)
    trace("decode: \(String(describing: Base64URL.decode(text)))")
    if let decoded = Base64URL.decode(text) {
        require(Base64URL.encode(decoded) == text, "\(text.debugDescription) decodes but is not how its bytes encode")
        var buffer = [UInt8](repeating: 0, count: decoded.count)
        let count = buffer.withUnsafeMutableBufferPointer { Base64URL.decode(text, into: $0) }
        require(count == decoded.count && buffer == decoded, "decode(into:) disagrees with decode")
        if !decoded.isEmpty {
            var short = [UInt8](repeating: 0, count: decoded.count - 1)
            require(short.withUnsafeMutableBufferPointer { Base64URL.decode(text, into: $0) } == nil, "decoded into a buffer too short")
        }
    } else {
        var buffer = [UInt8](repeating: 0, count: text.utf8.count)
        require(buffer.withUnsafeMutableBufferPointer { Base64URL.decode(text, into: $0) } == nil, "decode(into:) accepted what decode refused")
    }
    let encoded = Base64URL.encode(bytes)
    require(Base64URL.decode(encoded) == Array(bytes), "bytes do not survive encode then decode")
    return 0
}
