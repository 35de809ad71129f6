import NIOCore
import Testing
@testable import VoteAPI

/// The deadline rules on their own: events in, a verdict out, time passed in.
@Suite("Connection deadlines")
struct ConnectionDeadlinesTests {
    let limits = ConnectionLimits(idle: .seconds(75), header: .seconds(10), body: .seconds(10), maxHeaderFields: 100, maxHeaderBytes: 8192)
    let t = NIODeadline.uptimeNanoseconds(1_000_000_000)

    func at(_ seconds: Int64) -> NIODeadline { t + .seconds(seconds) }

    @Test func anIdleConnectionClosesAfterTheIdleTimeoutAndNotWhileAnAnswerIsDue() {
        let deadlines = ConnectionDeadlines(limits: limits, openedAt: t)
        #expect(deadlines.check(now: at(75), answersDue: false) == .none)
        #expect(deadlines.check(now: at(76), answersDue: false) == .closeIdle)
        #expect(deadlines.check(now: at(500), answersDue: true) == .none, "an answer on its way is not idleness")
    }

    @Test func aHeadMustArriveWithinTheHeaderTimeoutOfItsFirstByte() {
        var deadlines = ConnectionDeadlines(limits: limits, openedAt: t)
        deadlines.headPending(at: at(1))
        deadlines.headPending(at: at(5))
        #expect(deadlines.receiving == .head(since: at(1)), "the deadline runs from the first byte")
        #expect(deadlines.check(now: at(11), answersDue: false) == .none)
        #expect(deadlines.check(now: at(12), answersDue: false) == .timeOut(reason: "header_timeout"))
    }

    @Test func aBodyMustArriveWithinTheBodyTimeoutOfItsHead() {
        var deadlines = ConnectionDeadlines(limits: limits, openedAt: t)
        deadlines.headPending(at: at(1))
        deadlines.headReceived(at: at(2))
        #expect(deadlines.check(now: at(12), answersDue: false) == .none)
        #expect(deadlines.check(now: at(13), answersDue: false) == .timeOut(reason: "body_timeout"))
        deadlines.requestReceived()
        #expect(deadlines.check(now: at(13), answersDue: true) == .none)
    }

    @Test func aHeadArrivingWhileAnotherRequestIsAnsweredKeepsItsDeadlineWhichWaitsForTheAnswers() {
        // Issue 27: a second head pipelined behind an answer that comes later lost its deadline.
        var deadlines = ConnectionDeadlines(limits: limits, openedAt: t)
        deadlines.headReceived(at: at(0))
        deadlines.requestReceived()
        deadlines.headReceived(at: at(0))
        #expect(deadlines.check(now: at(25), answersDue: true) == .none, "the first request's answer goes out first")
        #expect(deadlines.check(now: at(26), answersDue: false) == .timeOut(reason: "body_timeout"))
    }

    @Test func aWholeRequestStopsTheReceiveDeadlineAndIdlenessStartsWhenTheAnswerIsOut() {
        var deadlines = ConnectionDeadlines(limits: limits, openedAt: t)
        deadlines.headPending(at: at(1))
        deadlines.headReceived(at: at(2))
        deadlines.requestReceived()
        #expect(deadlines.receiving == .nothing)
        deadlines.becameIdle(at: at(30))
        #expect(deadlines.check(now: at(100), answersDue: false) == .none)
        #expect(deadlines.check(now: at(106), answersDue: false) == .closeIdle)
    }
}
