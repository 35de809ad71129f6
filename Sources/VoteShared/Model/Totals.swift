/// One stored counter: votes for a participant in one UTC hour.
public struct HourlyCount: Sendable, Equatable {
    /// Start of the UTC hour, seconds since 1970.
    public var hourStart: Int64
    public var participantID: String
    public var votes: Int64

    public init(hourStart: Int64, participantID: String, votes: Int64) {
        self.hourStart = hourStart
        self.participantID = participantID
        self.votes = votes
    }
}

/// The producers' view of a poll: overall, per participant and per hour.
public struct Totals: Sendable, Equatable {
    public struct Hour: Sendable, Equatable {
        public var hourStart: Int64
        /// Votes per participant, in the poll's participant order.
        public var votes: [Int64]
        public var total: Int64 { votes.reduce(0, Totals.adding) }
    }

    public let poll: Poll
    public let hours: [Hour]
    /// Votes per participant, in the poll's participant order.
    public let votes: [Int64]
    public let asOfMillis: Int64

    public var total: Int64 { votes.reduce(0, Totals.adding) }

    /// Counts saturate instead of trapping: a store row is data from outside, and a
    /// corrupt one must not take the totals down.
    static func adding(_ a: Int64, _ b: Int64) -> Int64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? .max : sum
    }

    /// Folds stored counters into totals; counters for ids not in `poll`, and negative
    /// ones (a corrupt row), are ignored.
    public init(poll: Poll, counts: [HourlyCount], asOfMillis: Int64) {
        self.poll = poll
        self.asOfMillis = asOfMillis
        var byHour: [Int64: [Int64]] = [:]
        var votes = [Int64](repeating: 0, count: poll.participants.count)
        for count in counts {
            guard let index = poll.participantIndex(of: count.participantID), count.votes >= 0 else { continue }
            byHour[count.hourStart, default: votes.map { _ in 0 }][index] = Self.adding(byHour[count.hourStart]?[index] ?? 0, count.votes)
            votes[index] = Self.adding(votes[index], count.votes)
        }
        self.votes = votes
        self.hours = byHour.keys.sorted().map { Hour(hourStart: $0, votes: byHour[$0] ?? []) }
    }

    /// Each participant's share in tenths of a percent, adding up to exactly 1000 when
    /// there are votes (largest remainder method); all zero otherwise.
    public var percentageTenths: [Int64] {
        let total = self.total
        guard total > 0 else { return votes.map { _ in 0 } }
        // In 128 bits: votes × 1000 may not fit in 64 (each share is at most 1000).
        let divided = votes.map { total.dividingFullWidth($0.multipliedFullWidth(by: 1000)) }
        var shares = divided.map(\.quotient)
        let remainders = divided.map(\.remainder)
        var missing = 1000 - shares.reduce(0, +)
        for index in remainders.indices.sorted(by: { remainders[$0] > remainders[$1] }) where missing > 0 {
            shares[index] += 1
            missing -= 1
        }
        return shares
    }

    /// The JSON producers poll (see docs/API.md); without `hours` it is the short form a
    /// vote's answer carries, whose size does not grow with the length of the poll.
    public func json(includingHours: Bool = true) -> [UInt8] {
        var writer = JSONWriter(capacity: 512 + (includingHours ? hours.count * 96 : 0))
        write(to: &writer, includingHours: includingHours)
        return writer.bytes
    }

    /// Writes the totals object into `writer`.
    public func write(to writer: inout JSONWriter, includingHours: Bool = true) {
        writer.beginObject()
        writer.field("poll", poll.id)
        writer.field("title", poll.title)
        writer.field("total", total)
        writer.key("participants")
        writer.beginArray()
        let tenths = percentageTenths
        for (index, participant) in poll.participants.enumerated() {
            writer.beginObject()
            writer.field("id", participant.id)
            writer.field("name", participant.name)
            writer.field("photoUrl", participant.photoUrl)
            writer.field("votes", votes[index])
            writer.key("percentage")
            writer.tenths(tenths[index])
            writer.endObject()
        }
        writer.endArray()
        if includingHours {
            writeHours(to: &writer)
        }
        writer.field("asOf", Timestamp.iso8601(millis: asOfMillis))
        writer.endObject()
    }

    private func writeHours(to writer: inout JSONWriter) {
        writer.key("hours")
        writer.beginArray()
        for hour in hours {
            writer.beginObject()
            let (millis, overflow) = hour.hourStart.multipliedReportingOverflow(by: 1000)
            writer.field("hour", Timestamp.iso8601(millis: overflow ? (hour.hourStart < 0 ? .min : .max) : millis, fractional: false))
            writer.field("total", hour.total)
            writer.key("votes")
            writer.beginObject()
            for (index, participant) in poll.participants.enumerated() {
                writer.field(participant.id, hour.votes[index])
            }
            writer.endObject()
            writer.endObject()
        }
        writer.endArray()
    }
}
