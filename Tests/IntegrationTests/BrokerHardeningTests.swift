import Foundation
import RabbitMQ
import Testing
import VoteShared

extension RealBrokerSuites {
    /// The broker as `scripts/rabbitmq.sh start` sets it up: one user per role with the least
    /// permissions it needs, no guest, a delivery limit on the vote queues; and the API's
    /// answers when the broker cannot take a vote (no queue, resource alarm).
    @Suite("Broker hardening on a real RabbitMQ")
    struct BrokerHardeningTests {
        var adminURL: AMQPURL {
            get throws { try #require(IntegrationEnvironment.amqpURL.flatMap(AMQPURL.init)) }
        }

        /// The test broker's URL with `user` and its generated password.
        func url(as user: String) throws -> AMQPURL {
            let folder = try #require(IntegrationEnvironment.secretsDir, "PAREDAO_SECRETS_DIR names the test broker's password folder")
            let text = try String(contentsOfFile: "\(folder)/rabbitmq-\(user).password", encoding: .utf8)
            let password = String(text.split(whereSeparator: \.isNewline).first ?? "")
            return try adminURL.withCredentials(user: user, password: password)
        }

        /// Creates `queue` and `queue.dead` as the admin does (the services only redeclare them).
        func declareVoteQueue(_ queue: String) throws {
            let admin = try AMQPConnection(url: adminURL)
            try admin.declareQueue(queue + ".dead", quorum: true, deadLetterQueue: nil)
            try admin.declareQueue(queue, quorum: true, deadLetterQueue: queue + ".dead")
        }

        func deleteVoteQueue(_ queue: String) {
            guard let admin = try? AMQPConnection(url: adminURL) else { return }
            try? admin.deleteQueue(queue)
            try? admin.deleteQueue(queue + ".dead")
        }

        func randomQueue(_ label: String) -> String {
            "votes-\(label)-\(UInt32.random(in: 0...UInt32.max))"
        }

        let body = VoteMessage.encode([Vote(id: .random(), pollID: "paredao-test", participantID: "aline", acceptedAtMillis: 0)])

        @Test func guestCannotLogIn() throws {
            #expect(throws: AMQPError.self, "the stack's broker has no guest user") {
                try AMQPConnection(url: adminURL.withCredentials(user: "guest", password: "guest"))
            }
        }

        @Test func theAPIUserOnlyPublishesAndTheConsumerUserOnlyConsumes() async throws {
            let queue = randomQueue("permissions")
            try declareVoteQueue(queue)
            defer { deleteVoteQueue(queue) }

            let api = try AMQPConnection(url: url(as: "paredao-api"))
            try api.declareQueue(queue + ".dead", quorum: true, deadLetterQueue: nil)
            try api.declareQueue(queue, quorum: true, deadLetterQueue: queue + ".dead")
            try api.enableConfirms()
            try body.withUnsafeBytes { try api.publish(to: queue, tag: 1, body: $0) }
            #expect(try api.nextConfirm(timeout: .seconds(5)) == .ack(deliveryTag: 1, multiple: false), "the API publishes")
            #expect(throws: AMQPError.self, "the API cannot consume") {
                try AMQPConnection(url: url(as: "paredao-api")).startConsuming(queue)
            }

            let consumer = try AMQPConnection(url: url(as: "paredao-consumer"))
            try consumer.declareQueue(queue + ".dead", quorum: true, deadLetterQueue: nil)
            try consumer.declareQueue(queue, quorum: true, deadLetterQueue: queue + ".dead")
            try consumer.setPrefetch(10)
            try consumer.startConsuming(queue)
            let delivery = try #require(try consumer.nextDelivery(timeout: .seconds(5)), "the consumer consumes")
            try consumer.reject(delivery.deliveryTag, requeue: false)
            try await waitUntil("the rejected message is dead-lettered: rejecting needs no permission", timeout: .seconds(10)) {
                try AMQPConnection(url: adminURL).messageCount(ofQueue: queue + ".dead") == 1
            }

            let publishing = try AMQPConnection(url: url(as: "paredao-consumer"))
            try publishing.enableConfirms()
            try body.withUnsafeBytes { try publishing.publish(to: queue, tag: 1, body: $0) }
            #expect(throws: AMQPError.self, "the consumer cannot publish (403 on amq.default)") {
                try publishing.nextConfirm(timeout: .seconds(5))
            }
            #expect(throws: AMQPError.self, "nor create a vote queue, which dead-letters through the default exchange") {
                let fresh = randomQueue("fresh")
                try AMQPConnection(url: url(as: "paredao-consumer")).declareQueue(fresh, quorum: true, deadLetterQueue: fresh + ".dead")
            }
            #expect(throws: AMQPError.self, "the monitoring user has no AMQP access to the vhost") {
                try AMQPConnection(url: url(as: "paredao-monitor"))
            }
        }

        @Test func aMessageRequeuedOverAndOverIsDeadLetteredAfterTheDeliveryLimit() throws {
            let queue = randomQueue("limit")
            try declareVoteQueue(queue)
            defer { deleteVoteQueue(queue) }
            let admin = try AMQPConnection(url: adminURL)
            try admin.enableConfirms()
            try body.withUnsafeBytes { try admin.publish(to: queue, tag: 1, body: $0) }
            #expect(try admin.nextConfirm(timeout: .seconds(5)) == .ack(deliveryTag: 1, multiple: false))

            let consumer = try AMQPConnection(url: url(as: "paredao-consumer"))
            try consumer.setPrefetch(1)
            try consumer.startConsuming(queue)
            var deliveries = 0
            while deliveries < 20, let delivery = try consumer.nextDelivery(timeout: .seconds(2)) {
                deliveries += 1
                try consumer.reject(delivery.deliveryTag, requeue: true)
            }
            #expect(deliveries == 6, "delivered \(deliveries) times: the first and 5 redeliveries (the policy's limit), then dead-lettered")
            #expect(try AMQPConnection(url: adminURL).messageCount(ofQueue: queue + ".dead") == 1)
        }

        /// The stack runs as its role users on a queue the admin made; with the queue deleted
        /// the broker returns every (mandatory) vote: 503 broker_unroutable, not 202.
        @Test func aVoteNoQueueTakesIs503UnroutableUntilTheQueueIsBack() async throws {
            let queue = randomQueue("unroutable")
            try declareVoteQueue(queue)
            defer { deleteVoteQueue(queue) }
            let roleless = try adminURL
            let stack = try TestStack(extraEnvironment: [
                "PAREDAO_AMQP_URL": "amqp://\(roleless.host):\(roleless.port)/",
                "PAREDAO_SECRETS_DIR": try #require(IntegrationEnvironment.secretsDir),
                "PAREDAO_QUEUE": queue,
            ])
            defer { stack.stopAll() }
            try stack.startConsumer()
            try await stack.startAPI()
            #expect(try await stack.vote("aline", token: stack.token()).status == 202)

            try await waitUntil("the consumer counted the first vote", timeout: .seconds(20)) {
                ((try await stack.totals())["total"] as? Int ?? 0) == 1
            }
            try AMQPConnection(url: adminURL).deleteQueue(queue)
            let refused = try await stack.vote("aline", token: stack.token())
            #expect(refused.status == 503)
            #expect(refused.errorCode == "broker_unroutable")
            #expect(refused.headers["retry-after"] != nil)

            // The consumer was cancelled with its queue (basic.cancel); wait for that before the
            // queue comes back: re-created at once, the broker may leave the old consumer in place.
            try await waitUntil("the consumer saw its queue go", timeout: .seconds(10)) {
                stack.consumer?.log.contains("cancelled the consumer") == true
            }
            try declareVoteQueue(queue)
            try await waitUntil("votes are accepted again", timeout: .seconds(15)) {
                try await stack.vote("camila", token: stack.token()).status == 202
            }
            try await waitUntil("the consumer, back on the new queue, counted that vote", timeout: .seconds(20)) {
                ((try await stack.totals())["total"] as? Int ?? 0) == 2
            }
        }

        /// A broker that goes silent (frozen: the TCP connection stays open) is noticed by the
        /// AMQP heartbeat: the API drops the connection, /readyz fails, and it reconnects once
        /// the broker answers again.
        @Test func aSilentBrokerIsALostConnectionAfterTheHeartbeat() async throws {
            let stack = try TestStack(extraEnvironment: ["PAREDAO_AMQP_HEARTBEAT_SECONDS": "2"])
            defer { stack.stopAll() }
            try await stack.startAPI()
            try controlBroker("pause")
            var paused = true
            defer { if paused { try? controlBroker("resume") } }
            try await waitUntil("/readyz fails", timeout: .seconds(15)) { try await stack.get("/readyz").status == 503 }
            #expect(stack.api?.log.contains("heartbeat timeout") == true, "the publisher saw the missed heartbeat")
            try controlBroker("resume")
            paused = false
            try await waitUntil("the API is ready again", timeout: .seconds(30)) { try await stack.get("/readyz").status == 200 }
            #expect(try await stack.vote("aline", token: stack.token()).status == 202)
        }

        /// A memory alarm blocks publishers: votes answer 503 broker_blocked at once and
        /// /readyz fails; once the alarm clears, votes are accepted again.
        @Test func whileTheBrokerBlocksPublishingVotesAre503BlockedAtOnce() async throws {
            let stack = try TestStack()
            defer { stack.stopAll() }
            try stack.startConsumer()
            try await stack.startAPI()
            #expect(try await stack.vote("aline", token: stack.token()).status == 202)

            try controlBroker("ctl set_vm_memory_high_watermark 0.0000001")
            var cleared = false
            defer { if !cleared { try? controlBroker("ctl set_vm_memory_high_watermark 0.4") } }
            // The broker tells a publisher it is blocked when it publishes: the first votes
            // may wait for their confirm (503 broker_timeout); then every vote is refused at once.
            try await waitUntil("votes are refused as blocked", timeout: .seconds(20)) {
                try await stack.vote("aline", token: stack.token()).errorCode == "broker_blocked"
            }
            let started = ContinuousClock.now
            let refused = try await stack.vote("aline", token: stack.token())
            #expect(ContinuousClock.now - started < .milliseconds(500), "refused at once, not after a confirm timeout")
            #expect(refused.status == 503)
            #expect(refused.errorCode == "broker_blocked")
            #expect(refused.headers["retry-after"] != nil)
            let ready = try await stack.get("/readyz")
            #expect(ready.status == 503)
            #expect(ready.text.contains("broker is blocked (memory or disk alarm)"))

            try controlBroker("ctl set_vm_memory_high_watermark 0.4")
            cleared = true
            try await waitUntil("votes are accepted again", timeout: .seconds(20)) {
                try await stack.vote("camila", token: stack.token()).status == 202
            }
            #expect(try await stack.get("/readyz").status == 200)
        }
    }
}
