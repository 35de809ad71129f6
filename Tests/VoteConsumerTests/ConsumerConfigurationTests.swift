import Testing
import VoteShared
import VoteStore
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

    @Test func idsAreKeptForTheRetentionPlusAMarginThatCoversSkewRetriesAndTheBatch() throws {
        let configuration = try ConsumerConfiguration(environment: [:])
        let retention = 24 * 3600
        #expect(configuration.dedupWindow == DedupWindow(acceptedSeconds: retention, marginSeconds: 900))
        // The TTL index and the prune use the kept time; the age check the retention alone.
        #expect(configuration.store.voteIDRetentionSeconds == retention + 900)
        let now: Int64 = 1_795_352_400_000
        #expect(configuration.dedupWindow.pruneCutoff(nowMillis: now) == now - Int64(retention + 900) * 1000)
        let validator = configuration.validator(catalog: PollCatalog(polls: [VoteValidatorTests.poll]))
        func counts(_ age: Int64) -> Bool {
            validator.check([Vote(id: .random(), pollID: "p1", participantID: "a", acceptedAtMillis: now - age)], nowMillis: now) == nil
        }
        // At the edge: a vote of age R − 1 s counts, and its id outlives even a prune whose
        // clock runs ahead by the whole skew, the retry budget and the batch window.
        #expect(counts(Int64(retention - 1) * 1000))
        #expect(!counts(Int64(retention + 1) * 1000))
        let acceptedAtEdge = now - Int64(retention - 1) * 1000
        let aheadPrune = configuration.dedupWindow.pruneCutoff(nowMillis: now + Int64(300 + 30 + 1) * 1000)
        #expect(acceptedAtEdge >= aheadPrune)
        // Less margin than that is refused, naming the setting.
        let error = #expect(throws: ConfigurationError.self) {
            try ConsumerConfiguration(environment: ["PAREDAO_DEDUP_MARGIN_SECONDS": "300"])
        }
        #expect(error?.key == "PAREDAO_DEDUP_MARGIN_SECONDS")
        #expect(try ConsumerConfiguration(environment: ["PAREDAO_DEDUP_MARGIN_SECONDS": "40", "PAREDAO_MAX_CLOCK_SKEW_SECONDS": "5", "PAREDAO_AMQP_HEARTBEAT_SECONDS": "4"]).dedupWindow.marginSeconds == 40)
    }

    @Test func theStoreRetryBudgetFollowsTheHeartbeatAndNeverExceedsIt() throws {
        #expect(try ConsumerConfiguration(environment: [:]).store.retryBudget == .seconds(30))
        #expect(try ConsumerConfiguration(environment: ["PAREDAO_AMQP_HEARTBEAT_SECONDS": "4"]).store.retryBudget == .seconds(4))
        #expect(try ConsumerConfiguration(environment: ["PAREDAO_AMQP_HEARTBEAT_SECONDS": "0"]).store.retryBudget == .seconds(30))
        let error = #expect(throws: ConfigurationError.self) {
            try ConsumerConfiguration(environment: ["PAREDAO_STORE_RETRY_SECONDS": "60"])
        }
        #expect(error?.key == "PAREDAO_STORE_RETRY_SECONDS")
    }

    @Test func eachConsumerHasACounterShardAndStandaloneIsOptIn() throws {
        #expect(try ConsumerConfiguration(environment: ["PAREDAO_COUNTER_SHARD": "7"]).store.counterShard == 7)
        #expect((0..<64).contains(try ConsumerConfiguration(environment: [:]).store.counterShard))
        #expect(throws: ConfigurationError.self) { try ConsumerConfiguration(environment: ["PAREDAO_COUNTER_SHARD": "1024"]) }
        #expect(try ConsumerConfiguration(environment: [:]).store.allowStandalone == false)
        #expect(try ConsumerConfiguration(environment: ["PAREDAO_MONGO_ALLOW_STANDALONE": "1"]).store.allowStandalone == true)
    }

    @Test func anUnknownStoreOrFlagIsRefused() {
        #expect(throws: (any Error).self) { try ConsumerConfiguration(environment: ["PAREDAO_STORE": "oracle"]) }
        #expect(throws: (any Error).self) { try ConsumerConfiguration(arguments: ["--bogus"], environment: [:]) }
    }
}
