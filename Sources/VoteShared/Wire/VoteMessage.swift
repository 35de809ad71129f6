/// The binary body of one AMQP message: one or more votes.
///
/// Layout (big-endian): `"PV"`, version `1`, vote count (`UInt16`, 1–65535), then per vote:
/// 16-byte id, `Int64` accepted-at milliseconds, poll id (`UInt8` length + UTF-8),
/// participant id (`UInt8` length + UTF-8). Several votes per message is transport
/// batching only: every vote keeps its own id and is deduplicated by it.
public enum VoteMessage {
    static let magic: (UInt8, UInt8) = (0x50, 0x56)
    static let version: UInt8 = 1
    /// The most votes one message carries.
    public static let maximumVotes = Int(UInt16.max)

    /// Appends the encoding of `votes` to `buffer`.
    public static func encode(_ votes: some Collection<Vote>, into buffer: inout [UInt8]) {
        precondition(!votes.isEmpty && votes.count <= maximumVotes, "a message carries 1...\(maximumVotes) votes")
        buffer.append(magic.0)
        buffer.append(magic.1)
        buffer.append(version)
        appendBigEndian(UInt16(votes.count), to: &buffer)
        for vote in votes {
            appendBigEndian(vote.id.high, to: &buffer)
            appendBigEndian(vote.id.low, to: &buffer)
            appendBigEndian(UInt64(bitPattern: vote.acceptedAtMillis), to: &buffer)
            appendShortString(vote.pollID, to: &buffer)
            appendShortString(vote.participantID, to: &buffer)
        }
    }

    /// The encoding of `votes`.
    public static func encode(_ votes: some Collection<Vote>) -> [UInt8] {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(5 + votes.count * 48)
        encode(votes, into: &buffer)
        return buffer
    }

    /// Decodes a message body, rejecting anything that is not exactly one well-formed message.
    public static func decode(_ bytes: some Collection<UInt8>) throws(WireFormatError) -> [Vote] {
        var reader = Reader(bytes: Array(bytes))
        guard try reader.byte() == magic.0, try reader.byte() == magic.1 else {
            throw WireFormatError("not a Paredão vote message (bad magic)")
        }
        let messageVersion = try reader.byte()
        guard messageVersion == version else {
            throw WireFormatError("unsupported vote message version \(messageVersion)")
        }
        let count = Int(try reader.uint16())
        guard count > 0 else { throw WireFormatError("message carries no votes") }
        // A vote takes at least 28 bytes (id, time, two non-empty ids with their lengths):
        // a count the message cannot hold is refused before anything is reserved for it.
        guard count <= reader.remaining / 28 else { throw WireFormatError("message truncated: \(count) votes cannot fit in its \(reader.remaining) bytes") }
        var votes: [Vote] = []
        votes.reserveCapacity(count)
        for _ in 0..<count {
            let id = VoteID(high: try reader.uint64(), low: try reader.uint64())
            let acceptedAt = Int64(bitPattern: try reader.uint64())
            let poll = try reader.shortString()
            let participant = try reader.shortString()
            guard !poll.isEmpty, !participant.isEmpty else { throw WireFormatError("empty poll or participant id") }
            votes.append(Vote(id: id, pollID: poll, participantID: participant, acceptedAtMillis: acceptedAt))
        }
        guard reader.isAtEnd else { throw WireFormatError("trailing bytes after \(count) votes") }
        return votes
    }

    private static func appendBigEndian<T: FixedWidthInteger>(_ value: T, to buffer: inout [UInt8]) {
        var bigEndian = value.bigEndian
        withUnsafeBytes(of: &bigEndian) { buffer.append(contentsOf: $0) }
    }

    private static func appendShortString(_ text: String, to buffer: inout [UInt8]) {
        let utf8 = text.utf8
        precondition(utf8.count <= 255, "ids are at most 255 bytes")
        buffer.append(UInt8(utf8.count))
        buffer.append(contentsOf: utf8)
    }

    private struct Reader {
        let bytes: [UInt8]
        var offset = 0

        var isAtEnd: Bool { offset == bytes.count }
        var remaining: Int { bytes.count - offset }

        mutating func byte() throws(WireFormatError) -> UInt8 {
            guard offset < bytes.count else { throw WireFormatError("message truncated at byte \(offset)") }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func uint16() throws(WireFormatError) -> UInt16 {
            UInt16(try byte()) << 8 | UInt16(try byte())
        }

        mutating func uint64() throws(WireFormatError) -> UInt64 {
            guard offset + 8 <= bytes.count else { throw WireFormatError("message truncated at byte \(offset)") }
            var value: UInt64 = 0
            for index in offset..<offset + 8 { value = value << 8 | UInt64(bytes[index]) }
            offset += 8
            return value
        }

        mutating func shortString() throws(WireFormatError) -> String {
            let length = Int(try byte())
            guard offset + length <= bytes.count else { throw WireFormatError("message truncated at byte \(offset)") }
            defer { offset += length }
            guard let text = String(validating: bytes[offset..<offset + length], as: UTF8.self) else {
                throw WireFormatError("id is not valid UTF-8")
            }
            return text
        }
    }
}

/// A message body that is not a valid vote message.
public struct WireFormatError: Error, CustomStringConvertible, Sendable, Equatable {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}
