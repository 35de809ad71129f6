import Testing
@testable import VoteConsumer

@Suite("Consumer settings")
struct ConsumerConfigurationTests {
    @Test func aFlagWinsOverTheEnvironmentWhichWinsOverTheDefault() throws {
        #expect(try ConsumerConfiguration(environment: [:]).batchSize == 1000)
        #expect(try ConsumerConfiguration(environment: ["PAREDAO_CONSUMER_BATCH_SIZE": "50"]).batchSize == 50)
        #expect(try ConsumerConfiguration(arguments: ["--consumer-batch-size", "7"], environment: ["PAREDAO_CONSUMER_BATCH_SIZE": "50"]).batchSize == 7)
    }

    @Test func theConsumerLogsInAsItsOwnUserWithThePasswordFromItsFile() throws {
        let common = try ConsumerConfiguration(environment: [:]).common
        #expect(common.amqpURL == "amqp://127.0.0.1:5672/")
        #expect(common.amqpUser == "paredao-consumer")
        #expect(common.amqpPasswordFile == "var/secrets/rabbitmq-paredao-consumer.password")
        #expect(common.amqpHeartbeatSeconds == 30)
        let moved = try ConsumerConfiguration(environment: ["PAREDAO_SECRETS_DIR": "var/test/secrets", "PAREDAO_AMQP_HEARTBEAT_SECONDS": "4"]).common
        #expect(moved.amqpPasswordFile == "var/test/secrets/rabbitmq-paredao-consumer.password")
        #expect(moved.amqpHeartbeatSeconds == 4)
        let other = try ConsumerConfiguration(arguments: ["--amqp-user", "someone"], environment: [:]).common
        #expect(other.amqpPasswordFile == "var/secrets/rabbitmq-someone.password")
        #expect(throws: (any Error).self) { try ConsumerConfiguration(environment: ["PAREDAO_AMQP_PASSWORD_FILE": "/nonexistent/file"]).common.amqpPassword() }
    }

    @Test func anUnknownStoreOrFlagIsRefused() {
        #expect(throws: (any Error).self) { try ConsumerConfiguration(environment: ["PAREDAO_STORE": "oracle"]) }
        #expect(throws: (any Error).self) { try ConsumerConfiguration(arguments: ["--bogus"], environment: [:]) }
    }
}
