import FuzzSupport
import VoteShared

/// The vote body as `POST /api/v1/votes` reads it: FlatJSON.parseObject on any bytes, then
/// the participant and `voteId` fields the way the vote use case extracts them.
///
/// Properties: parsing never traps; a contiguous and a non-contiguous copy of the bytes
/// parse alike; an accepted object written back with JSONWriter parses to the same
/// object; a participant found in the poll is byte-for-byte that poll id (the API writes
/// it into JSON and the broker message unescaped); a `voteId` VoteID accepts prints back
/// as the same UUID (lowercase), and the vote they make survives VoteMessage.
@main enum FuzzVoteBody { static func main() { FuzzDriver.run(fuzzVoteBody) } }

@_cdecl("LLVMFuzzerTestOneInput") public func fuzzVoteBody(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = FuzzDriver.bytes(data, size)
    let parsed = Result { () throws(FlatJSON.ParseError) in try FlatJSON.parseObject(bytes) }
    let copied = Result { () throws(FlatJSON.ParseError) in try FlatJSON.parseObject(bytes.lazy.map { $0 }) }
    require(parsed == copied, "contiguous and non-contiguous input parse differently")
    trace("parse: \(parsed)")
    guard case .success(let object) = parsed else { return 0 }
    require(object.count <= FlatJSON.maximumFields, "more fields than allowed")

    let rewritten = write(object)
    require((try? FlatJSON.parseObject(rewritten)) == object, "object written back does not parse to itself")

    for field in object.fields {
        if case .string(let text) = field.value { checkVoteID(text) }
    }
    extractVote(object)
    return 0
}

/// What castVote does with the fields once the body parsed.
private func extractVote(_ object: FlatJSON.Object) {
    guard case .string(let participant)? = object["participant"],
          let index = Fixtures.poll.participantIndex(of: participant)
    else { return }
    let pollID = Fixtures.poll.participants[index].id
    require(Array(participant.utf8) == Array(pollID.utf8), "participant \(participant.debugDescription) matched poll id \(pollID) with other bytes")
    let voteID: VoteID
    switch object["voteId"] {
    case nil, .null?:
        voteID = VoteID(high: 0x0123_4567_89AB_7CDE, low: 0x8123_4567_89AB_CDEF)
    case .string(let text)?:
        guard let parsed = VoteID(text) else { return }
        voteID = parsed
    default:
        return
    }
    let vote = Vote(id: voteID, pollID: Fixtures.poll.id, participantID: participant, acceptedAtMillis: Fixtures.now * 1000)
    require((try? VoteMessage.decode(VoteMessage.encode([vote]))) == [vote], "vote does not survive VoteMessage")
}

private func checkVoteID(_ text: String) {
    guard let id = VoteID(text) else { return }
    require(id.description == text.lowercased(), "VoteID(\(text.debugDescription)) prints as \(id)")
    require(VoteID(id.description) == id, "VoteID does not parse its own description \(id)")
    require(VoteID(Substring(text)) == id, "VoteID parses a Substring differently")
}

/// The object as compact JSON: strings escaped by JSONWriter, numbers as their text.
private func write(_ object: FlatJSON.Object) -> [UInt8] {
    var writer = JSONWriter()
    writer.beginObject()
    for field in object.fields {
        writer.key(field.key)
        switch field.value {
        case .string(let text): writer.string(text)
        case .number(_, let text): writer.raw(Array(text.utf8))
        case .bool(let value): writer.bool(value)
        case .null: writer.raw(Array("null".utf8))
        }
    }
    writer.endObject()
    return writer.bytes
}
