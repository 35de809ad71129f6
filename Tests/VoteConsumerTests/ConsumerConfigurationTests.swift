import Testing
@testable import VoteConsumer

@Suite("Consumer settings")
struct ConsumerConfigurationTests {
    @Test func aFlagWinsOverTheEnvironmentWhichWinsOverTheDefault() throws {
        #expect(try ConsumerConfiguration(environment: [:]).batchSize == 1000)
        #expect(try ConsumerConfiguration(environment: ["PAREDAO_CONSUMER_BATCH_SIZE": "50"]).batchSize == 50)
        #expect(try ConsumerConfiguration(arguments: ["--consumer-batch-size", "7"], environment: ["PAREDAO_CONSUMER_BATCH_SIZE": "50"]).batchSize == 7)
    }

    @Test func anUnknownStoreOrFlagIsRefused() {
        #expect(throws: (any Error).self) { try ConsumerConfiguration(environment: ["PAREDAO_STORE": "oracle"]) }
        #expect(throws: (any Error).self) { try ConsumerConfiguration(arguments: ["--bogus"], environment: [:]) }
    }
}
