/// A failure reported by librabbitmq or by the broker, with the C status where there is one.
public struct AMQPError: Error, CustomStringConvertible, Sendable {
    /// What the wrapper was doing when it failed.
    public enum Operation: String, Sendable {
        case connect, login, openChannel, declareQueue, deleteQueue, enableConfirms, publish, waitForConfirm
        case setQoS, consume, acknowledge, reject, close
    }

    /// What the wrapper was doing.
    public var operation: Operation
    /// The librabbitmq status code (negative), or 0 when the broker closed the channel.
    public var status: Int32
    /// A readable explanation from the library or the broker.
    public var message: String

    /// Creates an error for `operation` with the library's `status` and `message`.
    public init(operation: Operation, status: Int32, message: String) {
        self.operation = operation
        self.status = status
        self.message = message
    }

    public var description: String {
        "AMQP \(operation.rawValue) failed (status \(status)): \(message)"
    }
}
