import Logging
import ServiceLifecycle
import ServiceSupport
import Synchronization
import Testing
import VoteShared

@Suite("Settings")
struct SettingTests {
    let port = Setting("PAREDAO_API_PORT", default: 8080, help: "port").within(0...65535)

    @Test func theFlagIsTheVariableWithoutPrefixInLowerCaseWithDashes() {
        #expect(port.flag == "api-port")
        #expect(Setting("PAREDAO_PUBLISH_LINGER_US", default: 1, help: "").flag == "publish-linger-us")
    }

    @Test func aFlagWinsOverTheEnvironmentWhichWinsOverTheDefault() throws {
        #expect(try port.value(flag: nil, environment: [:]) == 8080)
        #expect(try port.value(flag: nil, environment: ["PAREDAO_API_PORT": "9000"]) == 9000)
        #expect(try port.value(flag: nil, environment: ["PAREDAO_API_PORT": ""]) == 8080, "an empty variable is unset")
        #expect(try port.value(flag: "9100", environment: ["PAREDAO_API_PORT": "9000"]) == 9100)
    }

    @Test func aBadValueNamesWhereItCameFromAndWhatIsAccepted() {
        #expect { try port.value(flag: nil, environment: ["PAREDAO_API_PORT": "70000"]) } throws: { error in
            guard let error = error as? ConfigurationError else { return false }
            return error.key == "PAREDAO_API_PORT" && error.message.contains("0...65535") && error.message.contains("70000")
        }
        #expect { try port.value(flag: "http", environment: [:]) } throws: { error in
            (error as? ConfigurationError)?.key == "--api-port"
        }
    }

    @Test func choicesAndListsParse() throws {
        let level = Setting("PAREDAO_LOG_LEVEL", default: "info", help: "").oneOf(["debug", "info"])
        #expect(try level.value(flag: "DEBUG", environment: [:]) == "DEBUG")
        #expect(throws: ConfigurationError.self) { try level.value(flag: "loud", environment: [:]) }
        let proxies = Setting("PAREDAO_TRUSTED_PROXIES", default: ["127.0.0.1"], help: "")
        #expect(try proxies.value(flag: " 10.0.0.1 ,, ::1 ", environment: [:]) == ["10.0.0.1", "::1"])
        let rate = Setting("PAREDAO_VOTE_RATE", default: 1.0, help: "").within(0.001...1000)
        #expect(try rate.value(flag: "0.5", environment: [:]) == 0.5)
        #expect(throws: ConfigurationError.self) { try rate.value(flag: "0", environment: [:]) }
    }

    @Test func theHelpNamesTheVariableTheDefaultAndTheRange() {
        let text = port.argumentHelp.abstract
        #expect(text.contains("PAREDAO_API_PORT"))
        #expect(text.contains("default 8080"))
        #expect(text.contains("0...65535"))
    }
}

@Suite("Lifecycle")
struct LifecycleTests {
    /// A worker that blocks until asked to stop, as the publisher and consumer threads do.
    final class BlockingLoop: BlockingWorker {
        let stop = StopRequest()
        let started = Atomic<Bool>(false)
        let finished = Atomic<Bool>(false)

        func runBlocking() {
            started.store(true, ordering: .releasing)
            while !stop.wait(for: .seconds(60)) {}
            finished.store(true, ordering: .releasing)
        }

        func requestStop() { stop.request() }
    }

    @Test func aStopRequestEndsAWaitEarly() async {
        let stop = StopRequest()
        #expect(!stop.wait(for: .milliseconds(1)))
        let waiter = Task.detached { stop.wait(for: .seconds(60)) }
        stop.request()
        #expect(await waiter.value)
        #expect(stop.isRequested)
    }

    @Test func gracefulShutdownOfTheGroupStopsAThreadService() async throws {
        let worker = BlockingLoop()
        let group = ServiceGroup(services: [ThreadService(worker, threadName: "test-worker")], logger: Logger(label: "test"))
        let running = Task { try await group.run() }
        let deadline = ContinuousClock.now + .seconds(10)
        while !worker.started.load(ordering: .acquiring), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        let started = worker.started.load(ordering: .acquiring)
        #expect(started)
        await group.triggerGracefulShutdown()
        try await running.value
        let finished = worker.finished.load(ordering: .acquiring)
        #expect(finished, "run() returned only after the thread ended")
    }
}
