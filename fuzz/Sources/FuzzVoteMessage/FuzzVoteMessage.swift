import FuzzSupport
import VoteShared

/// The broker message body VoteConsumer decodes (VoteMessage.decode), which must never
/// crash the consumer: a message that does not decode is dead-lettered.
///
/// Properties: decode never traps and reads a non-contiguous copy alike; a message that
/// decodes is the one encoding of its votes (encode gives back the same bytes) and
/// encode(decode(x)) decodes to the same votes; every decoded vote's hour bucket and
/// ISO 8601 time are defined, whatever its accepted-at (any Int64).
@main enum FuzzVoteMessage { static func main() { FuzzDriver.run(fuzzVoteMessage) } }

@_cdecl("LLVMFuzzerTestOneInput") public func fuzzVoteMessage(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = FuzzDriver.bytes(data, size)
    let decoded = Result { () throws(WireFormatError) in try VoteMessage.decode(bytes) }
    let copied = Result { () throws(WireFormatError) in try VoteMessage.decode(bytes.lazy.map { $0 }) }
    require(decoded == copied, "contiguous and non-contiguous input decode differently")
    trace("decode: \(decoded)")
    guard case .success(let votes) = decoded else { return 0 }

    require((1...VoteMessage.maximumVotes).contains(votes.count), "decoded \(votes.count) votes")
    let encoded = VoteMessage.encode(votes)
    require(encoded == Array(bytes), "decoded votes encode to other bytes")
    require((try? VoteMessage.decode(encoded)) == votes, "encode(decode(x)) decodes to other votes")
    var scratch: [UInt8] = []
    for vote in votes {
        require(!vote.pollID.isEmpty && !vote.participantID.isEmpty, "decoded an empty id")
        let hour = vote.hourStart
        require(hour % 3600 == 0, "hour bucket \(hour) is not on the hour")
        scratch.removeAll(keepingCapacity: true)
        Timestamp.appendISO8601(millis: vote.acceptedAtMillis, to: &scratch)
        require(!scratch.isEmpty, "no ISO 8601 text for \(vote.acceptedAtMillis)")
    }
    return 0
}
