/// Which broker of a list (the nodes of a RabbitMQ cluster) the next connection goes to:
/// the same one while its connections work, the next one — round robin — after a connect
/// failed or a connection was lost. No I/O and no clock: the owner of the connection
/// reports what happened and asks where to go.
///
/// With one broker it always answers that one, and never reports a failover.
public struct BrokerRotation: Sendable, Equatable {
    /// A connection opened on another broker than the one before: `from` and `to` are
    /// indices in the list.
    public struct Failover: Sendable, Equatable {
        public var from: Int
        public var to: Int

        public init(from: Int, to: Int) {
            self.from = from
            self.to = to
        }
    }

    /// How many brokers there are (at least one).
    public let count: Int
    /// The broker the next connect goes to.
    public private(set) var current = 0
    /// The broker of the last connection that opened; the first of the list before any.
    public private(set) var lastConnected = 0

    public init(count: Int) {
        self.count = max(1, count)
    }

    /// A connect to ``current`` failed, or its connection was lost (it broke, or stopped
    /// confirming): the next connect goes to the next broker of the list.
    public mutating func failed() {
        current = (current + 1) % count
    }

    /// A connection to ``current`` opened; the failover it completes, when it is not on the
    /// broker of the connection before.
    public mutating func connected() -> Failover? {
        defer { lastConnected = current }
        return current == lastConnected ? nil : Failover(from: lastConnected, to: current)
    }
}
