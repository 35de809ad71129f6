import NIOCore
import NIOHTTP1

/// Serialises an answer as HTTP/1.1 bytes: the API's fixed headers, the answer's own, the body.
enum HTTPResponseWriter {
    static func write(_ response: APIResponse, requestID: String, keepAlive: Bool, http10: Bool, includeBody: Bool, into buffer: inout ByteBuffer) {
        let status = response.status
        buffer.writeStaticString("HTTP/1.1 ")
        buffer.writeDecimal(Int(status.code))
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeString(status.reasonPhrase)
        buffer.writeStaticString("\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ")
        buffer.writeDecimal(response.body.count)
        buffer.writeStaticString("\r\nCache-Control: no-store\r\nX-Request-ID: ")
        buffer.writeString(requestID)
        buffer.writeStaticString("\r\n")
        for (name, value) in response.headers {
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        if !keepAlive {
            buffer.writeStaticString("Connection: close\r\n")
        } else if http10 {
            buffer.writeStaticString("Connection: keep-alive\r\n")
        }
        buffer.writeStaticString("\r\n")
        if includeBody { buffer.writeBytes(response.body) }
    }
}

extension ByteBuffer {
    /// Writes a non-negative integer in decimal without building a String.
    mutating func writeDecimal(_ value: Int) {
        precondition(value >= 0, "only non-negative values")
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { raw in
            var remaining = value
            var index = raw.count
            repeat {
                index -= 1
                raw[index] = UInt8(ascii: "0") + UInt8(remaining % 10)
                remaining /= 10
            } while remaining > 0
            writeBytes(UnsafeRawBufferPointer(rebasing: raw[index...]))
        }
    }
}
