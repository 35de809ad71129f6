internal import CRabbitMQ

/// One blocking connection to RabbitMQ with one channel, owned by a single thread.
///
/// librabbitmq is neither thread-safe nor non-blocking: create, use and drop an
/// `AMQPConnection` on one dedicated thread, never on an event loop.
public final class AMQPConnection {
    /// What the broker tells a publisher: confirms, returns and flow control.
    public enum Confirm: Equatable, Sendable {
        case ack(deliveryTag: UInt64, multiple: Bool)
        case nack(deliveryTag: UInt64, multiple: Bool)
        /// A mandatory message no queue took (its tag read back from its `message_id`; 0 if
        /// absent); its ack follows.
        case returned(deliveryTag: UInt64)
        /// A resource alarm (memory or disk) blocks publishing on this connection.
        case blocked
        /// The alarm cleared.
        case unblocked
    }

    /// A message delivered to a consumer.
    public struct Delivery: Sendable {
        public var deliveryTag: UInt64
        public var redelivered: Bool
        public var body: [UInt8]
    }

    private let state: amqp_connection_state_t
    private let channel: amqp_channel_t = 1
    private var isOpen = false

    /// Connects, logs in (asking for `heartbeat`, `.zero` for none, and announcing the
    /// `connection.blocked` capability) and opens channel 1; every RPC after that times out
    /// after `rpcTimeout`.
    ///
    /// librabbitmq sends and checks heartbeats only inside its waits: a thread that does not
    /// wait in it for longer than half the heartbeat must call ``nextConfirm(timeout:)`` with
    /// a zero timeout now and then; a missed heartbeat then throws.
    public init(url: AMQPURL, heartbeat: Duration = .zero, connectTimeout: Duration = .seconds(3), rpcTimeout: Duration = .seconds(5)) throws(AMQPError) {
        guard let state = amqp_new_connection() else {
            throw AMQPError(operation: .connect, status: -1, message: "amqp_new_connection returned NULL")
        }
        self.state = state
        guard let socket = amqp_tcp_socket_new(state) else {
            throw AMQPError(operation: .connect, status: -1, message: "amqp_tcp_socket_new returned NULL")
        }
        var timeout = paredao_timeval(connectTimeout.microseconds)
        let opened = amqp_socket_open_noblock(socket, url.host, Int32(url.port), &timeout)
        guard opened == AMQP_STATUS_OK.rawValue else {
            throw AMQPError(operation: .connect, status: opened, message: Self.statusText(opened) + " (\(url))")
        }
        var rpc = paredao_timeval(rpcTimeout.microseconds)
        amqp_set_handshake_timeout(state, &rpc)
        amqp_set_rpc_timeout(state, &rpc)
        let login = paredao_amqp_login(state, url.virtualHost, Int32(clamping: heartbeat.components.seconds), url.user, url.password)
        try Self.check(login, .login)
        amqp_channel_open(state, channel)
        try Self.check(amqp_get_rpc_reply(state), .openChannel)
        isOpen = true
    }

    deinit {
        if isOpen {
            amqp_channel_close(state, channel, Int32(AMQP_REPLY_SUCCESS))
            amqp_connection_close(state, Int32(AMQP_REPLY_SUCCESS))
        }
        amqp_destroy_connection(state)
    }

    /// Declares a durable queue (quorum or classic) that dead-letters rejected messages to
    /// `deadLetterQueue`; returns how many messages it holds.
    @discardableResult
    public func declareQueue(_ name: String, quorum: Bool, deadLetterQueue: String?) throws(AMQPError) -> UInt32 {
        let ok: UnsafeMutablePointer<amqp_queue_declare_ok_t>? =
            if let deadLetterQueue {
                paredao_amqp_declare_queue(state, channel, name, 0, quorum ? 1 : 0, deadLetterQueue)
            } else {
                paredao_amqp_declare_queue(state, channel, name, 0, quorum ? 1 : 0, nil)
            }
        try Self.check(amqp_get_rpc_reply(state), .declareQueue)
        return ok?.pointee.message_count ?? 0
    }

    /// Deletes queue `name` and the messages in it (operators and tests).
    public func deleteQueue(_ name: String) throws(AMQPError) {
        amqp_queue_delete(state, channel, amqp_cstring_bytes(name), 0, 0)
        try Self.check(amqp_get_rpc_reply(state), .deleteQueue)
    }

    /// Returns how many ready messages `name` holds, without creating it.
    public func messageCount(ofQueue name: String) throws(AMQPError) -> UInt32 {
        let ok = paredao_amqp_declare_queue(state, channel, name, 1, 0, nil)
        try Self.check(amqp_get_rpc_reply(state), .declareQueue)
        return ok?.pointee.message_count ?? 0
    }

    /// Turns on publisher confirms: every later publish gets delivery tag 1, 2, 3, …
    public func enableConfirms() throws(AMQPError) {
        amqp_confirm_select(state, channel)
        try Self.check(amqp_get_rpc_reply(state), .enableConfirms)
    }

    /// Publishes a persistent, mandatory message through the default exchange to `queue`,
    /// labelled with its delivery `tag` so that a return names it.
    public func publish(to queue: String, tag: UInt64, body: UnsafeRawBufferPointer) throws(AMQPError) {
        let status = paredao_amqp_publish(state, channel, queue, tag, body.baseAddress, body.count)
        guard status == AMQP_STATUS_OK.rawValue else {
            throw AMQPError(operation: .publish, status: status, message: Self.statusText(status))
        }
    }

    /// Waits at most `timeout` for the next confirm, return or flow notice; `nil` when none came.
    public func nextConfirm(timeout: Duration) throws(AMQPError) -> Confirm? {
        var tag: UInt64 = 0
        var multiple: Int32 = 0
        let outcome = paredao_amqp_wait_confirm(state, timeout.microseconds, &tag, &multiple)
        switch outcome {
        case Int32(PAREDAO_AMQP_ACK): return .ack(deliveryTag: tag, multiple: multiple != 0)
        case Int32(PAREDAO_AMQP_NACK): return .nack(deliveryTag: tag, multiple: multiple != 0)
        case Int32(PAREDAO_AMQP_RETURNED): return .returned(deliveryTag: tag)
        case Int32(PAREDAO_AMQP_BLOCKED): return .blocked
        case Int32(PAREDAO_AMQP_UNBLOCKED): return .unblocked
        case Int32(PAREDAO_AMQP_TIMEOUT): return nil
        case Int32(PAREDAO_AMQP_CLOSED):
            throw AMQPError(operation: .waitForConfirm, status: 0, message: "broker closed the channel")
        default:
            throw AMQPError(operation: .waitForConfirm, status: outcome, message: Self.statusText(outcome))
        }
    }

    /// The socket's file descriptor, for `poll` together with other descriptors.
    public var socketDescriptor: Int32 {
        amqp_get_sockfd(state)
    }

    /// Whether librabbitmq already holds unread input, which `poll` on the socket would miss.
    public var hasBufferedInput: Bool {
        amqp_data_in_buffer(state) != 0 || amqp_frames_enqueued(state) != 0
    }

    /// Lets the broker send at most `prefetch` unacknowledged messages.
    public func setPrefetch(_ prefetch: UInt16) throws(AMQPError) {
        amqp_basic_qos(state, channel, 0, prefetch, 0)
        try Self.check(amqp_get_rpc_reply(state), .setQoS)
    }

    /// Starts a consumer with manual acknowledgements on `queue`.
    public func startConsuming(_ queue: String) throws(AMQPError) {
        amqp_basic_consume(state, channel, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0, amqp_empty_table)
        try Self.check(amqp_get_rpc_reply(state), .consume)
    }

    /// Waits at most `timeout` for the next delivery; `nil` when none came.
    public func nextDelivery(timeout: Duration) throws(AMQPError) -> Delivery? {
        var envelope = amqp_envelope_t()
        let outcome = paredao_amqp_consume(state, timeout.microseconds, &envelope)
        switch outcome {
        case Int32(PAREDAO_AMQP_DELIVERY):
            defer { amqp_destroy_envelope(&envelope) }
            let body = envelope.message.body
            let bytes: [UInt8] =
                if let pointer = body.bytes, body.len > 0 {
                    Array(UnsafeRawBufferPointer(start: pointer, count: body.len))
                } else {
                    []
                }
            return Delivery(deliveryTag: envelope.delivery_tag, redelivered: envelope.redelivered != 0, body: bytes)
        case Int32(PAREDAO_AMQP_TIMEOUT):
            return nil
        case Int32(PAREDAO_AMQP_CLOSED):
            throw AMQPError(operation: .consume, status: 0, message: "broker closed the channel or cancelled the consumer")
        default:
            throw AMQPError(operation: .consume, status: outcome, message: Self.statusText(outcome))
        }
    }

    /// Acknowledges `deliveryTag` (and every earlier one when `multiple`).
    public func acknowledge(_ deliveryTag: UInt64, multiple: Bool) throws(AMQPError) {
        let status = amqp_basic_ack(state, channel, deliveryTag, multiple ? 1 : 0)
        guard status == AMQP_STATUS_OK.rawValue else {
            throw AMQPError(operation: .acknowledge, status: status, message: Self.statusText(status))
        }
    }

    /// Rejects one delivery; with `requeue: false` the queue dead-letters it.
    public func reject(_ deliveryTag: UInt64, requeue: Bool) throws(AMQPError) {
        let status = amqp_basic_reject(state, channel, deliveryTag, requeue ? 1 : 0)
        guard status == AMQP_STATUS_OK.rawValue else {
            throw AMQPError(operation: .reject, status: status, message: Self.statusText(status))
        }
    }

    private static func check(_ reply: amqp_rpc_reply_t, _ operation: AMQPError.Operation) throws(AMQPError) {
        guard reply.reply_type != AMQP_RESPONSE_NORMAL else { return }
        var buffer = [CChar](repeating: 0, count: 256)
        paredao_amqp_describe_reply(reply, &buffer, buffer.count)
        let status = reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION ? reply.library_error : 0
        throw AMQPError(operation: operation, status: status, message: String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }

    private static func statusText(_ status: Int32) -> String {
        guard let text = amqp_error_string2(status) else { return "status \(status)" }
        return String(cString: text)
    }
}

extension Duration {
    /// The duration in whole microseconds, for `struct timeval`.
    var microseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000 + attoseconds / 1_000_000_000_000
    }
}
