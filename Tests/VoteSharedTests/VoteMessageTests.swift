import Testing
import VoteShared

@Suite("Vote message wire format")
struct VoteMessageTests {
    let votes = [
        Vote(id: VoteID.random(), pollID: "bbb26-paredao-10", participantID: "aline", acceptedAtMillis: 1_795_000_000_123),
        Vote(id: VoteID.random(), pollID: "bbb26-paredao-10", participantID: "camila", acceptedAtMillis: 1_795_003_600_000),
    ]

    @Test func roundTripsOneAndManyVotes() throws {
        #expect(try VoteMessage.decode(VoteMessage.encode(votes.prefix(1))) == Array(votes.prefix(1)))
        #expect(try VoteMessage.decode(VoteMessage.encode(votes)) == votes)
    }

    @Test func rejectsEveryTruncation() {
        let bytes = VoteMessage.encode(votes)
        for length in 0..<bytes.count {
            #expect(throws: WireFormatError.self) { try VoteMessage.decode(bytes.prefix(length)) }
        }
    }

    @Test func rejectsTrailingBytesBadMagicVersionAndEmptyMessages() {
        let bytes = VoteMessage.encode(votes)
        #expect(throws: WireFormatError.self) { try VoteMessage.decode(bytes + [0]) }
        var badMagic = bytes
        badMagic[0] = 0x7B
        #expect(throws: WireFormatError.self) { try VoteMessage.decode(badMagic) }
        var badVersion = bytes
        badVersion[2] = 9
        #expect(throws: WireFormatError.self) { try VoteMessage.decode(badVersion) }
        #expect(throws: WireFormatError.self) { try VoteMessage.decode([0x50, 0x56, 1, 0, 0]) }
        #expect(throws: WireFormatError.self) { try VoteMessage.decode(Array(#"{"participant":"aline"}"#.utf8)) }
    }
}

@Suite("Hour buckets")
struct HourBucketTests {
    @Test func bucketsByUTCHourStart() {
        // 2026-11-22T13:59:59.999Z and 14:00:00.000Z fall into different hours.
        let lastMilli: Int64 = 1_795_355_999_999
        #expect(HourBucket.start(ofMillis: lastMilli) == 1_795_352_400)
        #expect(HourBucket.start(ofMillis: lastMilli + 1) == 1_795_356_000)
        #expect(Timestamp.iso8601(millis: HourBucket.start(ofMillis: lastMilli) * 1000, fractional: false) == "2026-11-22T13:00:00Z")
        #expect(Timestamp.iso8601(millis: (lastMilli + 1), fractional: true) == "2026-11-22T14:00:00.000Z")
        #expect(HourBucket.start(ofMillis: 0) == 0)
        #expect(HourBucket.start(ofMillis: -1) == -3600)
    }

    @Test func formatsDatesAcrossLeapYearsAndCenturies() {
        #expect(Timestamp.iso8601(millis: 951_782_400_000, fractional: false) == "2000-02-29T00:00:00Z")
        #expect(Timestamp.iso8601(millis: 4_107_542_399_000, fractional: false) == "2100-02-28T23:59:59Z")
        #expect(Timestamp.iso8601(millis: 1_234, fractional: true) == "1970-01-01T00:00:01.234Z")
    }
}

@Suite("Vote ids")
struct VoteIDTests {
    @Test func parsesAndPrintsUUIDs() throws {
        let text = "F972AFE7-4652-4395-8e45-44ab3e4540da"
        let id = try #require(VoteID(text))
        #expect(id.description == text.lowercased())
        #expect(VoteID(id.description) == id)
        #expect(VoteID.random() != VoteID.random())
        var appended = Array("id=".utf8)
        id.appendDescription(to: &appended)
        #expect(String(decoding: appended, as: UTF8.self) == "id=" + text.lowercased())
    }

    @Test func decimalsAreAppendedWithoutStrings() {
        for value: Int64 in [0, 7, 10, 99, 1_234_567_890, -42, .max, .min] {
            var bytes = Array("n=".utf8)
            bytes.appendDecimal(value)
            #expect(String(decoding: bytes, as: UTF8.self) == "n=\(value)")
        }
    }

    @Test func timeOrderedIdsAreVersion7AndSortByTime() {
        var generator = SystemRandomNumberGenerator()
        let millis: Int64 = 1_795_000_000_123
        let earlier = VoteID.timeOrdered(millis: millis, using: &generator)
        let later = VoteID.timeOrdered(millis: millis + 1, using: &generator)
        let text = earlier.description
        #expect(text.hasPrefix(String(millis, radix: 16).leftPadded(to: 12).prefix(8)))
        #expect(Array(text)[14] == "7", "version nibble")
        #expect("89ab".contains(Array(text)[19]), "RFC variant")
        #expect(earlier.high >> 16 == UInt64(millis))
        #expect((earlier.high, earlier.low) < (later.high, later.low))
        #expect(earlier != VoteID.timeOrdered(millis: millis, using: &generator))
    }

    @Test(arguments: ["", "f972afe7465243958e4544ab3e4540da", "f972afe7-4652-4395-8e45-44ab3e4540d", "g972afe7-4652-4395-8e45-44ab3e4540da", "f972afe7-4652-4395-8e45-44ab3e4540da0", "f972afe7_4652-4395-8e45-44ab3e4540da"])
    func rejectsNonUUIDs(_ text: String) {
        #expect(VoteID(text) == nil)
    }
}

private extension String {
    func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}

@Suite("Vote message limits")
struct VoteMessageLimitTests {
    @Test func aCountTheBodyCannotHoldIsRefusedBeforeReading() {
        // Magic, version, then 65,535 votes claimed in a 5-byte message.
        let header = Array(VoteMessage.encode([Vote(id: .random(), pollID: "p", participantID: "a", acceptedAtMillis: 0)]).prefix(3)) + [0xFF, 0xFF]
        #expect { try VoteMessage.decode(header) } throws: { error in
            (error as? WireFormatError)?.description.contains("cannot fit") == true
        }
    }
}
