/// A vote the API accepted: who, for whom, and when (UTC, milliseconds since 1970).
public struct Vote: Sendable, Equatable {
    /// The vote's identity; a retried click carries the same id and is counted once.
    public var id: VoteID
    public var pollID: String
    public var participantID: String
    /// When the API accepted the vote; it decides the vote's hour bucket.
    public var acceptedAtMillis: Int64

    public init(id: VoteID, pollID: String, participantID: String, acceptedAtMillis: Int64) {
        self.id = id
        self.pollID = pollID
        self.participantID = participantID
        self.acceptedAtMillis = acceptedAtMillis
    }

    /// The start of the UTC hour the vote belongs to, in seconds since 1970.
    public var hourStart: Int64 {
        HourBucket.start(ofMillis: acceptedAtMillis)
    }
}

/// Hour buckets: votes are counted per UTC hour in which they were accepted.
public enum HourBucket {
    /// The start of the UTC hour that contains `millis`, in seconds since 1970; defined
    /// (no trap) for every `Int64`, since the value may come from the wire.
    public static func start(ofMillis millis: Int64) -> Int64 {
        let seconds = Timestamp.floorDivision(millis, 1000).quotient
        return seconds - Timestamp.floorDivision(seconds, 3600).remainder
    }
}
