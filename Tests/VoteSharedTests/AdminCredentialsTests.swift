import Testing
import VoteShared

@Suite("Admin credentials")
struct AdminCredentialsTests {
    let credentials = try! AdminCredentials(lines: "# admins\nprodutor:0123456789abcdefXYZ\n\nops:another-secret-of-length\n")

    @Test func theWholeNameAndSecretAuthenticateAsTheName() {
        #expect(credentials.authenticate(authorization: "Bearer produtor:0123456789abcdefXYZ") == .valid(name: "produtor"))
        #expect(credentials.authenticate(authorization: "bearer ops:another-secret-of-length") == .valid(name: "ops"))
        #expect(credentials.names == ["ops", "produtor"])
    }

    @Test func noBearerIsMissingAndAnythingElseIsWrong() {
        for header in [nil, "", "Basic cHJvZHV0b3I6eA==", "Bearer ", "Bearer"] {
            #expect(credentials.authenticate(authorization: header) == .missing)
        }
        for header in ["Bearer produtor:0123456789abcdefXY", "Bearer produtor:0123456789abcdefXYZ0", "Bearer ops:0123456789abcdefXYZ",
                       "Bearer nobody:0123456789abcdefXYZ", "Bearer 0123456789abcdefXYZ", "Bearer :"] {
            #expect(credentials.authenticate(authorization: header) == .wrong)
        }
    }

    @Test func theBearerSchemeMatchesInAnyCaseAndNothingStandsInForIt() {
        #expect(BearerCredential.credential(in: "Bearer abc") == "abc")
        #expect(BearerCredential.credential(in: "bEARER a b") == "a b")
        // A NUL is "\u{0}" | 0x20 == " ", and "B" | 0x20 == "b": only A-Z may fold.
        for value in ["Bearer", "Bearer ", "Bearer\u{0}abc", "Basic abc", "Bearer\tabc", "Béarer abc", ""] {
            #expect(BearerCredential.credential(in: value) == nil)
        }
        #expect(credentials.authenticate(authorization: "Bearer\u{0}produtor:0123456789abcdefXYZ") == .missing)
    }

    @Test func aClaimedNameIsOneOfOursOrNone() {
        #expect(credentials.claimedName(authorization: "Bearer produtor:wrong") == "produtor")
        #expect(credentials.claimedName(authorization: "Bearer ops:another-secret-of-length") == "ops")
        for header in [nil, "", "Bearer nobody:x", "Bearer produtor", "Basic cHJvZHV0b3I6eA==", "Bearer :x"] {
            #expect(credentials.claimedName(authorization: header) == nil)
        }
    }

    @Test func noCredentialsAcceptNothing() throws {
        let none = try AdminCredentials(lines: "")
        #expect(none.isEmpty)
        #expect(none.authenticate(authorization: "Bearer produtor:0123456789abcdefXYZ") == .wrong)
    }

    @Test func malformedLinesAreConfigurationErrors() {
        for text in ["no-colon-here", "Bad Name:0123456789abcdef", "short:secret"] {
            #expect(throws: ConfigurationError.self) { try AdminCredentials(lines: text) }
        }
    }
}
