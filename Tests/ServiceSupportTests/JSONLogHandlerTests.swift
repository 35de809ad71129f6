import Testing
import ServiceSupport

@Suite("JSON log lines")
struct JSONLogHandlerTests {
    @Test func writesOneObjectPerLineWithFoldedLevels() {
        let line = String(decoding: JSONLogHandler.line(level: .critical, label: "VoteAPI", message: "Broker \"down\"", metadata: ["status": "503", "route": "/api/v1/votes"], millis: 0), as: UTF8.self)
        #expect(line == #"{"ts":"1970-01-01T00:00:00.000Z","level":"ERROR","logger":"VoteAPI","message":"Broker \"down\"","route":"/api/v1/votes","status":"503"}"# + "\n")
        #expect(JSONLogHandler.levelName(.trace) == "DEBUG")
        #expect(JSONLogHandler.levelName(.notice) == "INFO")
        #expect(JSONLogHandler.levelName(.warning) == "WARNING")
    }
}
