import NIOCore
import NIOHTTP1
import Testing
@testable import VoteAPI

/// The rules of one HTTP connection, event by event: no channel, no broker, no clock.
@Suite("HTTP connection state machine")
struct HTTPConnectionStateMachineTests {
    typealias Machine = HTTPConnectionStateMachine

    let t = NIODeadline.uptimeNanoseconds(1_000_000)
    let vote = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/api/v1/votes")
    let health = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/healthz")
    let totals = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/api/v1/totals")

    /// A machine with a 64-byte body limit, like `APIHandlerTests`.
    func machine() -> Machine {
        Machine(maxBodyBytes: 64)
    }

    func bytes(_ count: Int) -> ByteBuffer {
        ByteBuffer(repeating: UInt8(ascii: "x"), count: count)
    }

    /// A keep-alive GET whose answer is still being worked out: the machine is answering it.
    func answering(_ head: HTTPRequestHead, _ machine: inout Machine) {
        #expect(machine.headReceived(head, contentLength: nil, keepAlive: true, now: t) == .none)
        #expect(machine.endReceived() == .answer(.complete(head, body: nil, keepAlive: true, started: t)))
    }

    /// A keep-alive GET that reaches its end while another is being answered.
    func queue(_ head: HTTPRequestHead, _ machine: inout Machine, now: NIODeadline? = nil) {
        #expect(machine.headReceived(head, contentLength: nil, keepAlive: true, now: now ?? t) == .none)
        #expect(machine.endReceived() == .none)
    }

    // MARK: Framing

    @Test func aRequestIsAnsweredWhenItEnds() {
        var machine = machine()
        #expect(machine.headReceived(health, contentLength: nil, keepAlive: true, now: t) == .none)
        #expect(machine.endReceived() == .answer(.complete(health, body: nil, keepAlive: true, started: t)))
    }

    @Test func bodyChunksAreJoinedIntoOneBody() {
        var machine = machine()
        _ = machine.headReceived(vote, contentLength: nil, keepAlive: true, now: t)
        #expect(machine.bodyReceived(ByteBuffer(string: "{\"a\":")) == .none)
        #expect(machine.bodyReceived(ByteBuffer(string: "1}")) == .none)
        #expect(machine.endReceived() == .answer(.complete(vote, body: ByteBuffer(string: "{\"a\":1}"), keepAlive: true, started: t)))
    }

    @Test func aRequestStartsWhenItsHeadArrives() {
        var machine = machine()
        _ = machine.headReceived(vote, contentLength: 2, keepAlive: true, now: t)
        _ = machine.bodyReceived(ByteBuffer(string: "{}"))
        // The machine never reads the clock: `started` is the instant given with the head.
        #expect(machine.endReceived() == .answer(.complete(vote, body: ByteBuffer(string: "{}"), keepAlive: true, started: t)))
    }

    // MARK: Body limit

    @Test func aContentLengthOverTheLimitIs413AtOnce() {
        var machine = machine()
        #expect(machine.headReceived(vote, contentLength: 65, keepAlive: true, now: t) == .answer(.tooLarge(vote, started: t)))
    }

    @Test func aContentLengthAtTheLimitIsAccepted() {
        var machine = machine()
        #expect(machine.headReceived(vote, contentLength: 64, keepAlive: true, now: t) == .none)
        #expect(machine.bodyReceived(bytes(64)) == .none)
        #expect(machine.endReceived() == .answer(.complete(vote, body: bytes(64), keepAlive: true, started: t)))
    }

    @Test func aChunkedBodyGrowingOverTheLimitIs413() {
        var machine = machine()
        _ = machine.headReceived(vote, contentLength: nil, keepAlive: true, now: t)
        #expect(machine.bodyReceived(bytes(40)) == .none)
        #expect(machine.bodyReceived(bytes(40)) == .answer(.tooLarge(vote, started: t)))
    }

    @Test func aHeadsOwnBodyLimitHoldsForItsLengthAndItsChunks() {
        var machine = machine()
        #expect(machine.headReceived(vote, contentLength: 200, keepAlive: true, bodyLimit: 200, now: t) == .none)
        #expect(machine.bodyReceived(bytes(200)) == .none)
        #expect(machine.endReceived() == .answer(.complete(vote, body: bytes(200), keepAlive: true, started: t)))
        _ = machine.answerFinished()
        _ = machine.headReceived(vote, contentLength: nil, keepAlive: true, bodyLimit: 100, now: t)
        #expect(machine.bodyReceived(bytes(100)) == .none)
        #expect(machine.bodyReceived(bytes(1)) == .answer(.tooLarge(vote, started: t)))
    }

    @Test func afterA413TheRestOfItsBodyAndEverythingAfterItIsIgnored() {
        var machine = machine()
        _ = machine.headReceived(vote, contentLength: 100, keepAlive: true, now: t)
        #expect(machine.bodyReceived(bytes(50)) == .none)
        #expect(machine.bodyReceived(bytes(50)) == .none)
        #expect(machine.endReceived() == .none)
        #expect(machine.headReceived(health, contentLength: nil, keepAlive: true, now: t) == .none)
        #expect(machine.endReceived() == .none)
        #expect(machine.parseErrorCaught(now: t) == .none)
        #expect(machine.answerFinished() == .none)
    }

    // MARK: Malformed requests

    @Test func aMalformedRequestIs400() {
        var machine = machine()
        #expect(machine.parseErrorCaught(now: t) == .answer(.malformed(started: t)))
    }

    @Test func aMalformedRequestWaitsItsTurn() {
        var machine = machine()
        answering(totals, &machine)
        #expect(machine.parseErrorCaught(now: t) == .none)
        #expect(machine.answerFinished() == .answer(.malformed(started: t)))
    }

    @Test func afterAMalformedRequestEverythingIsIgnored() {
        var machine = machine()
        _ = machine.parseErrorCaught(now: t)
        #expect(machine.headReceived(health, contentLength: nil, keepAlive: true, now: t) == .none)
        #expect(machine.endReceived() == .none)
        #expect(machine.parseErrorCaught(now: t) == .none)
        #expect(machine.answerFinished() == .none)
    }

    @Test func aMalformedRequestMidBodyEndsTheRequest() {
        var machine = machine()
        _ = machine.headReceived(vote, contentLength: nil, keepAlive: true, now: t)
        _ = machine.bodyReceived(bytes(10))
        #expect(machine.parseErrorCaught(now: t) == .answer(.malformed(started: t)))
        #expect(machine.endReceived() == .none)
    }

    // MARK: Keep-alive

    @Test func aRequestThatDoesNotKeepAliveIsTheLast() {
        var machine = machine()
        _ = machine.headReceived(health, contentLength: nil, keepAlive: false, now: t)
        #expect(machine.endReceived() == .answer(.complete(health, body: nil, keepAlive: false, started: t)))
        #expect(machine.headReceived(totals, contentLength: nil, keepAlive: true, now: t) == .none)
        #expect(machine.endReceived() == .none)
        #expect(machine.answerFinished() == .none)
    }

    @Test func requestsQueuedBeforeTheLastAreStillAnswered() {
        var machine = machine()
        answering(totals, &machine)
        #expect(machine.headReceived(health, contentLength: nil, keepAlive: false, now: t) == .none)
        #expect(machine.endReceived() == .none)
        #expect(machine.answerFinished() == .answer(.complete(health, body: nil, keepAlive: false, started: t)))
        #expect(machine.answerFinished() == .none)
    }

    // MARK: Order

    @Test func pipelinedRequestsWaitForTheOneBeingAnswered() {
        var machine = machine()
        answering(totals, &machine)
        queue(health, &machine)
        queue(vote, &machine)
        #expect(machine.answerFinished() == .answer(.complete(health, body: nil, keepAlive: true, started: t)))
        #expect(machine.answerFinished() == .answer(.complete(vote, body: nil, keepAlive: true, started: t)))
        #expect(machine.answerFinished() == .none)
    }

    @Test func aRequestEndingAfterTheLastAnswerIsAnsweredAtOnce() {
        var machine = machine()
        answering(totals, &machine)
        #expect(machine.answerFinished() == .none)
        _ = machine.headReceived(health, contentLength: nil, keepAlive: true, now: t)
        #expect(machine.endReceived() == .answer(.complete(health, body: nil, keepAlive: true, started: t)))
    }

    // MARK: Reading

    @Test func readsPassWhileFewerThan16Wait() {
        var machine = machine()
        answering(totals, &machine)
        for _ in 0..<15 { queue(health, &machine) }
        #expect(machine.readRequested() == .read)
    }

    @Test func readingPausesWhen16Wait() {
        var machine = machine()
        answering(totals, &machine)
        for _ in 0..<16 { queue(health, &machine) }
        #expect(machine.readRequested() == .none)
    }

    @Test func readingResumesWhenFewerThan16Wait() {
        var machine = machine()
        answering(totals, &machine)
        let later = t + .milliseconds(1)
        queue(vote, &machine, now: later)
        for _ in 0..<15 { queue(health, &machine) }
        #expect(machine.readRequested() == .none)
        #expect(machine.answerFinished() == .readAndAnswer(.complete(vote, body: nil, keepAlive: true, started: later)))
        #expect(machine.answerFinished() == .answer(.complete(health, body: nil, keepAlive: true, started: t)))
    }

    @Test func aHeldReadIsPassedOnOnlyOnce() {
        var machine = machine()
        answering(totals, &machine)
        for _ in 0..<16 { queue(health, &machine) }
        #expect(machine.readRequested() == .none)
        #expect(machine.readRequested() == .none)
        #expect(machine.answerFinished() == .readAndAnswer(.complete(health, body: nil, keepAlive: true, started: t)))
        #expect(machine.answerFinished() == .answer(.complete(health, body: nil, keepAlive: true, started: t)))
    }

    @Test func readingPausesWhileTheLastRequestsWait() {
        var machine = machine()
        answering(totals, &machine)
        for _ in 0..<15 { queue(health, &machine) }
        _ = machine.headReceived(vote, contentLength: 65, keepAlive: true, now: t)
        #expect(machine.readRequested() == .none)
        #expect(machine.answerFinished() == .readAndAnswer(.complete(health, body: nil, keepAlive: true, started: t)))
    }

    // MARK: The end of the connection

    @Test func afterTheChannelIsGoneNothingIsAnswered() {
        var machine = machine()
        answering(totals, &machine)
        queue(health, &machine)
        #expect(machine.channelInactive() == .none)
        #expect(machine.answerFinished() == .none)
        #expect(machine.headReceived(health, contentLength: nil, keepAlive: true, now: t) == .none)
        #expect(machine.endReceived() == .none)
        #expect(machine.parseErrorCaught(now: t) == .none)
    }

    @Test func anErrorOtherThanParsingClosesTheChannelAndNothingIsAnswered() {
        var machine = machine()
        answering(totals, &machine)
        queue(health, &machine)
        #expect(machine.errorCaught() == .close)
        #expect(machine.answerFinished() == .none)
    }

    @Test func readsPassOnceNothingMoreIsAnswered() {
        var machine = machine()
        _ = machine.channelInactive()
        #expect(machine.readRequested() == .read)
    }

    // MARK: Shutting down

    @Test func onShutdownAnIdleConnectionClosesAtOnce() {
        var machine = machine()
        #expect(machine.quiesceRequested() == .close)
        #expect(machine.headReceived(health, contentLength: nil, keepAlive: true, now: t) == .none, "nothing is read after")
    }

    @Test func onShutdownTheRequestBeingAnsweredFinishesThenTheConnectionCloses() {
        var machine = machine()
        answering(vote, &machine)
        #expect(machine.quiesceRequested() == .none, "the vote waiting for its confirm is not cut off")
        #expect(machine.headReceived(health, contentLength: nil, keepAlive: true, now: t) == .none, "new requests are ignored")
        #expect(machine.endReceived() == .none)
        #expect(machine.answerFinished() == .close)
    }

    @Test func onShutdownWaitingRequestsAreAnsweredAndTheLastSaysClose() {
        var machine = machine()
        answering(vote, &machine)
        queue(health, &machine)
        #expect(machine.quiesceRequested() == .none)
        #expect(machine.answerFinished() == .answer(.complete(health, body: nil, keepAlive: false, started: t)))
        #expect(machine.answerFinished() == .close)
    }

    @Test func onShutdownARequestStillArrivingIsAnsweredAsTheLast() {
        var machine = machine()
        #expect(machine.headReceived(vote, contentLength: 2, keepAlive: true, now: t) == .none)
        #expect(machine.quiesceRequested() == .none)
        #expect(machine.bodyReceived(ByteBuffer(string: "{}")) == .none)
        #expect(machine.endReceived() == .answer(.complete(vote, body: ByteBuffer(string: "{}"), keepAlive: false, started: t)))
        #expect(machine.answerFinished() == .close)
    }

    @Test func tooManyHeaderFieldsOrBytesIs431AndTheLast() {
        var machine = machine()
        #expect(machine.headReceived(vote, contentLength: 2, keepAlive: true, refusal: .headersTooLarge, now: t) == .answer(.refused(vote, .headersTooLarge, started: t)))
        #expect(machine.bodyReceived(ByteBuffer(string: "{}")) == .none, "its body is ignored")
        #expect(machine.headReceived(health, contentLength: nil, keepAlive: true, now: t) == .none, "nothing after it is read")
    }

    @Test func theConnectionIsIdleOnlyWithNothingReceivedAnsweredOrWaiting() {
        var machine = machine()
        #expect(machine.isIdle)
        _ = machine.headReceived(health, contentLength: nil, keepAlive: true, now: t)
        #expect(!machine.isIdle)
        _ = machine.endReceived()
        #expect(!machine.isIdle)
        _ = machine.answerFinished()
        #expect(machine.isIdle)
    }
}
