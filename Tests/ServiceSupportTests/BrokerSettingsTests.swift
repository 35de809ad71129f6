import RabbitMQ
import ServiceSupport
import Testing
import VoteShared

@Suite("Broker list and rotation")
struct BrokerSettingsTests {
    func brokers(_ text: String, arguments: [String] = []) throws -> [AMQPURL] {
        let options = try CommonOptions.parse(arguments)
        return try CommonSettings(options, environment: ["PAREDAO_AMQP_URL": text], serviceUser: "paredao-api").amqpURLs
    }

    func refusal(_ text: String) -> ConfigurationError? {
        do {
            _ = try brokers(text)
            return nil
        } catch {
            return error as? ConfigurationError
        }
    }

    @Test func oneURLIsOneBroker() throws {
        let urls = try brokers("amqp://127.0.0.1:5672/")
        #expect(urls.map(\.port) == [5672])
        #expect(urls.first?.hasCredentials == false)
    }

    @Test func aCommaSeparatedListIsTheNodesInOrderEachWithItsOwnCredentials() throws {
        let urls = try brokers("amqp://127.0.0.1:5710/, amqp://u:p@127.0.0.1:5720/ ,amqp://127.0.0.1:5730/")
        #expect(urls.map(\.port) == [5710, 5720, 5730])
        #expect(urls.map(\.hasCredentials) == [false, true, false])
        #expect(urls[1].user == "u")
    }

    @Test func aBadEntryIsRefusedByItsPlaceWithoutItsPassword() throws {
        let bad = try #require(refusal("amqp://127.0.0.1:5710/,http://u:secret@127.0.0.1:5720/"))
        #expect(bad.key == "PAREDAO_AMQP_URL")
        #expect(bad.message.contains("entry 2 of 2"))
        #expect(!bad.message.contains("secret"))
        #expect(refusal("amqp://127.0.0.1:5710/,,amqp://127.0.0.1:5730/")?.message.contains("entry 2 of 3: empty") == true)
        #expect(refusal("amqp://127.0.0.1:5710/,")?.message.contains("entry 2 of 2: empty") == true)
        #expect(refusal("amqp://127.0.0.1:5710/,amqp://127.0.0.1:99999/") != nil, "a port out of range")
        #expect(refusal("amqp://127.0.0.1:5710/,amqp://u:p@127.0.0.1:5710/")?.message.contains("entry 1 already") == true)
        #expect(refusal(" ") != nil, "blank")
        #expect(try brokers("").count == 1, "an empty variable is unset: the default broker")
        #expect(refusal("rabbit")?.message.contains("entry") == false, "one URL has no place to name")
    }

    @Test func aBadListOnTheCommandLineNamesTheFlag() throws {
        let options = try CommonOptions.parse(["--amqp-url", "amqp://a/,nope"])
        #expect(throws: ConfigurationError.self) { try CommonSettings(options, environment: [:], serviceUser: "paredao-api") }
        do {
            _ = try CommonSettings(options, environment: [:], serviceUser: "paredao-api")
        } catch {
            #expect(error.key == "--amqp-url")
        }
    }

    @Test func theServiceUserIsAddedWhereAURLNamesNone() throws {
        let options = try CommonOptions.parse([])
        let settings = try CommonSettings(options, environment: [
            "PAREDAO_AMQP_URL": "amqp://127.0.0.1:5710/,amqp://other:theirs@127.0.0.1:5720/",
            "PAREDAO_AMQP_PASSWORD_FILE": "/nonexistent/password",
        ], serviceUser: "paredao-api")
        #expect(throws: ConfigurationError.self, "a URL without credentials needs the password file") { try settings.brokerURLs() }
        let named = try CommonSettings(options, environment: ["PAREDAO_AMQP_URL": "amqp://a:b@127.0.0.1:5710/,amqp://c:d@127.0.0.1:5720/"], serviceUser: "paredao-api")
        #expect(try named.brokerURLs().map(\.user) == ["a", "c"], "no password file is read when every URL names its user")
    }

    // MARK: Rotation

    @Test func theRotationStaysWhileConnectionsWorkAndMovesRoundRobinOnAFailure() {
        var rotation = BrokerRotation(count: 3)
        #expect(rotation.current == 0)
        #expect(rotation.connected() == nil, "the first node first: no failover")
        rotation.failed()
        #expect(rotation.current == 1)
        #expect(rotation.connected() == BrokerRotation.Failover(from: 0, to: 1))
        #expect(rotation.connected() == nil, "again on the same node")
        rotation.failed()
        rotation.failed()
        #expect(rotation.current == 0, "round robin")
        #expect(rotation.connected() == BrokerRotation.Failover(from: 1, to: 0))
    }

    @Test func oneBrokerNeverFailsOver() {
        var rotation = BrokerRotation(count: 1)
        rotation.failed()
        #expect(rotation.current == 0)
        #expect(rotation.connected() == nil)
        #expect(BrokerRotation(count: 0).count == 1, "there is always one broker")
    }
}
