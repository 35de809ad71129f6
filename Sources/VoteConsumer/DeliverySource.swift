import RabbitMQ

/// One message from the queue, without any of the broker client's types.
struct Delivery: Sendable, Equatable {
    /// The broker's delivery tag: acknowledgements and rejections name it.
    var tag: UInt64
    /// The message body: a vote message (`VoteMessage`) unless something else was published.
    var body: [UInt8]
    /// The broker delivered this message before (the consumer died or lost its connection
    /// before acknowledging it).
    var redelivered: Bool
}

/// What the batch loop needs of the broker: the next delivery, a multiple-ack, and a
/// rejection that dead-letters.
///
/// One owner at a time: implementations need not be thread-safe.
protocol DeliverySource {
    /// Waits at most `timeout` for the next delivery; `nil` when none came.
    func nextDelivery(timeout: Duration) throws -> Delivery?

    /// Acknowledges `tag` and every earlier delivery not yet settled.
    func acknowledge(upTo tag: UInt64) throws

    /// Rejects `tag` without requeue, so the queue moves it to its dead-letter queue.
    func deadLetter(_ tag: UInt64) throws
}

/// Deliveries from a RabbitMQ connection that already consumes the vote queue.
struct AMQPDeliverySource: DeliverySource {
    let connection: AMQPConnection

    init(_ connection: AMQPConnection) {
        self.connection = connection
    }

    func nextDelivery(timeout: Duration) throws(AMQPError) -> Delivery? {
        guard let delivery = try connection.nextDelivery(timeout: timeout) else { return nil }
        return Delivery(tag: delivery.deliveryTag, body: delivery.body, redelivered: delivery.redelivered)
    }

    func acknowledge(upTo tag: UInt64) throws(AMQPError) {
        try connection.acknowledge(tag, multiple: true)
    }

    func deadLetter(_ tag: UInt64) throws(AMQPError) {
        try connection.reject(tag, requeue: false)
    }
}
