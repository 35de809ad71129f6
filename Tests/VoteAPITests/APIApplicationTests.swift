import NIOHTTP1
import Testing
@testable import VoteAPI
import VoteShared

@Suite("API routes and errors")
struct APIApplicationTests {
    @Test func unknownRoutesAndMethodsGetTheJSONErrorShape() throws {
        let app = try TestApplication()
        let (missing, missingBody) = try app.send(.GET, "/nope")
        #expect(missing.status == .notFound)
        #expect(missingBody.errorCode == "not_found")
        let (wrongMethod, wrongBody) = try app.send(.DELETE, "/api/v1/votes")
        #expect(wrongMethod.status == .methodNotAllowed)
        #expect(wrongBody.errorCode == "method_not_allowed")
        #expect(wrongMethod.headers.contains { $0.0 == "Allow" && $0.1 == "POST" })
        #expect(try app.send(.POST, "/total").0.status == .methodNotAllowed)
    }

    @Test func healthIsAlwaysOkAndReadinessFailsWithoutBroker() throws {
        let app = try TestApplication()
        #expect(try app.send(.GET, "/healthz").0.status == .ok)
        let (ready, body) = try app.send(.GET, "/readyz")
        #expect(ready.status == .serviceUnavailable)
        #expect(body.errorCode == "not_ready")
        let message = (body["error"] as? [String: Any])?["message"] as? String ?? ""
        #expect(message.contains("broker connection is down"))
    }

    @Test func totalsAndPollAreServed() throws {
        let app = try TestApplication()
        let (totals, body) = try app.send(.GET, "/total")
        #expect(totals.status == .ok)
        #expect(body["poll"] as? String == "bbb26-paredao-10")
        #expect(body["total"] as? Int == 0)
        #expect((body["participants"] as? [[String: Any]])?.count == 3)
        let (poll, pollBody) = try app.send(.GET, "/api/v1/poll")
        #expect(poll.status == .ok)
        #expect(((pollBody["poll"] as? [String: Any])?["participants"] as? [[String: Any]])?.first?["id"] as? String == "aline")
    }

    @Test func votesWithoutAValidTokenGet401WithTheReason() throws {
        let app = try TestApplication()
        let body = #"{"participant":"aline"}"#
        #expect(try app.send(.POST, "/api/v1/votes", body: body).1.errorCode == "token_missing")
        #expect(try app.send(.POST, "/api/v1/votes", body: body, headers: [("Authorization", "Basic abc")]).1.errorCode == "token_malformed")
        #expect(try app.send(.POST, "/api/v1/votes", body: body, headers: [("Authorization", "Bearer abc")]).1.errorCode == "token_malformed")
        // The scheme's letters match in any case; nothing else stands in for them or the space.
        let token = app.token()
        #expect(try app.send(.POST, "/api/v1/votes", body: body, headers: [("Authorization", "bEARER \(token)")]).1.errorCode == "broker_unavailable")
        #expect(try app.send(.POST, "/api/v1/votes", body: body, headers: [("Authorization", "Bearer\u{0}\(token)")]).1.errorCode == "token_malformed")
        let elsewhere = app.token(network: "10.1.2.3")
        let (wrong, wrongBody) = try app.send(.POST, "/api/v1/votes", body: body, headers: [("Authorization", "Bearer \(elsewhere)")])
        #expect(wrong.status == .unauthorized)
        #expect(wrongBody.errorCode == "token_wrong_network")
    }

    @Test func theProxyHeaderIsTrustedOnlyFromTheProxySocketOrAConfiguredProxy() throws {
        let app = try TestApplication()
        let token = app.token(network: "10.1.2.3")
        let headers = [("Authorization", "Bearer \(token)"), ("X-Real-IP", "10.1.2.99")]
        let vote = #"{"participant":"aline"}"#
        // On the proxy's unix socket the header counts: the token passes, the broker is down.
        #expect(try app.send(.POST, "/api/v1/votes", body: vote, headers: headers, peer: "unix").1.errorCode == "broker_unavailable")
        // From any TCP peer it does not, loopback included: any local process can reach the port.
        for peer in ["127.0.0.1", "::1", "192.0.2.1"] {
            #expect(try app.send(.POST, "/api/v1/votes", body: vote, headers: headers, peer: peer).1.errorCode == "token_wrong_network", "\(peer)")
        }
        // The peer's own network still counts.
        #expect(try app.send(.POST, "/api/v1/votes", body: vote, headers: headers, peer: "10.1.2.3").1.errorCode == "broker_unavailable")
        // A proxy on another host is trusted only when listed.
        let listed = try TestApplication(environment: ["PAREDAO_TRUSTED_PROXIES": "192.0.2.1"])
        #expect(try listed.send(.POST, "/api/v1/votes", body: vote, headers: [("Authorization", "Bearer \(listed.token(network: "10.1.2.3"))"), ("X-Real-IP", "10.1.2.99")], peer: "192.0.2.1").1.errorCode == "broker_unavailable")
        // On the socket without an address header the client is unknown: refused, not the proxy's.
        #expect(try app.send(.POST, "/api/v1/challenges", peer: "unix").1.errorCode == "invalid_client")
    }

    @Test func badVoteBodiesGetTheirStatus() throws {
        let app = try TestApplication()
        let auth = ("Authorization", "Bearer \(app.token())")
        let (type, typeBody) = try app.send(.POST, "/api/v1/votes", body: "participant=aline", headers: [auth, ("Content-Type", "application/x-www-form-urlencoded")])
        #expect(type.status == .unsupportedMediaType)
        #expect(typeBody.errorCode == "unsupported_media_type")
        let (json, jsonBody) = try app.send(.POST, "/api/v1/votes", body: "{\"participant\":", headers: [auth])
        #expect(json.status == .badRequest)
        #expect(jsonBody.errorCode == "invalid_json")
        #expect(try app.send(.POST, "/api/v1/votes", body: #"{"participant":3}"#, headers: [auth]).1.errorCode == "invalid_participant")
        #expect(try app.send(.POST, "/api/v1/votes", body: #"{"participant":"aline","voteId":"x"}"#, headers: [auth]).1.errorCode == "invalid_vote_id")
        let (unknown, unknownBody) = try app.send(.POST, "/api/v1/votes", body: #"{"participant":"boninho"}"#, headers: [auth])
        #expect(unknown.status == .unprocessableEntity)
        #expect(unknownBody.errorCode == "unknown_participant")
    }

    @Test func aVoteWhileTheBrokerIsDownIs503WithRetryAfterAndCostsNoBudget() throws {
        let app = try TestApplication()
        let auth = ("Authorization", "Bearer \(app.token(budget: 1))")
        for _ in 0..<3 {
            let (response, body) = try app.send(.POST, "/api/v1/votes", body: #"{"participant":"diego"}"#, headers: [auth])
            #expect(response.status == .serviceUnavailable)
            #expect(body.errorCode == "broker_unavailable")
            #expect(response.headers.contains { $0.0 == "Retry-After" })
        }
    }

    @Test func aSolvedChallengeBuysOneSessionWhoseTokenIsAccepted() throws {
        let app = try TestApplication()
        let (issued, challenge) = try app.send(.POST, "/api/v1/challenges")
        #expect(issued.status == .created)
        let encoded = try #require(challenge["challenge"] as? String)
        let difficulty = try #require(challenge["difficulty"] as? Int)
        #expect(difficulty == 4)
        let counter = ProofOfWork.solve(try #require(Base64URL.decode(encoded)), difficulty: difficulty)
        let body = #"{"challenge":"\#(encoded)","counter":\#(counter)}"#
        let (created, session) = try app.send(.POST, "/api/v1/sessions", body: body)
        #expect(created.status == .created)
        #expect(session["votesRemaining"] as? Int == 200)
        let token = try #require(session["token"] as? String)
        let (replay, replayBody) = try app.send(.POST, "/api/v1/sessions", body: body)
        #expect(replay.status == .unauthorized)
        #expect(replayBody.errorCode == "challenge_spent")
        // The token passes the check; the vote then fails only because the broker is down.
        #expect(try app.send(.POST, "/api/v1/votes", body: #"{"participant":"aline"}"#, headers: [("Authorization", "Bearer \(token)")]).1.errorCode == "broker_unavailable")
        let (_, other) = try app.send(.POST, "/api/v1/challenges")
        let otherEncoded = try #require(other["challenge"] as? String)
        let otherBytes = try #require(Base64URL.decode(otherEncoded))
        var bad: UInt64 = 0
        while ProofOfWork.leadingZeroBitsForTesting(otherBytes, bad) >= 4 { bad += 1 }
        #expect(try app.send(.POST, "/api/v1/sessions", body: #"{"challenge":"\#(otherEncoded)","counter":\#(bad)}"#).1.errorCode == "solution_wrong")
        #expect(try app.send(.POST, "/api/v1/sessions", body: #"{"challenge":"\#(otherEncoded)","counter":-1}"#).1.errorCode == "invalid_counter")
    }
}

@Suite("Session limits")
struct SessionLimiterTests {
    let keyring = TestApplication.keyring
    let network = ClientNetwork(address: "127.0.0.1")!

    func token(budget: UInt32) -> SessionToken {
        SessionToken.mint(keyring: keyring, network: network, now: 1_000, lifetimeSeconds: 600, budget: budget).token
    }

    @Test func burstThenRateLimitWithRetryAfterThenRefill() {
        let limiter = SessionLimiter(ratePerSecond: 1, burst: 3, maxSessions: 100)
        let session = token(budget: 100)
        for expected in [99, 98, 97] as [UInt32] {
            #expect(limiter.admit(session, nowMillis: 1_000_000) == .allowed(remaining: expected))
        }
        #expect(limiter.admit(session, nowMillis: 1_000_000) == .rateLimited(retryAfterSeconds: 1))
        #expect(limiter.admit(session, nowMillis: 1_000_999) == .rateLimited(retryAfterSeconds: 1))
        #expect(limiter.admit(session, nowMillis: 1_001_001) == .allowed(remaining: 96))
        // Another session is not affected.
        #expect(limiter.admit(token(budget: 5), nowMillis: 1_000_000) == .allowed(remaining: 4))
    }

    @Test func anExhaustedBudgetIsFinalAndRefundsGiveVotesBack() {
        let limiter = SessionLimiter(ratePerSecond: 1000, burst: 1000, maxSessions: 100)
        let session = token(budget: 2)
        #expect(limiter.admit(session, nowMillis: 0) == .allowed(remaining: 1))
        #expect(limiter.admit(session, nowMillis: 0) == .allowed(remaining: 0))
        #expect(limiter.admit(session, nowMillis: 10_000) == .exhausted)
        limiter.refund(session)
        #expect(limiter.admit(session, nowMillis: 10_000) == .allowed(remaining: 0))
    }

    @Test func trackedSessionsStayBounded() {
        let limiter = SessionLimiter(ratePerSecond: 1, burst: 1, maxSessions: 64)
        for _ in 0..<10_000 { _ = limiter.admit(token(budget: 1), nowMillis: 0) }
        #expect(limiter.trackedSessions <= 64 + 16)
    }

    @Test func aChallengeIsSpentOnceAndTheSetFailsClosedWhenFull() {
        let spent = SpentChallenges(capacity: 2)
        let nonce = VoteID.random()
        #expect(spent.spend(nonce: nonce, expiresAt: 100, now: 0) == .fresh)
        #expect(spent.spend(nonce: nonce, expiresAt: 100, now: 50) == .spent)
        #expect(spent.spend(nonce: .random(), expiresAt: 100, now: 0) == .fresh)
        #expect(spent.spend(nonce: .random(), expiresAt: 100, now: 0) == .full)
        // Once they expire there is room again.
        #expect(spent.spend(nonce: .random(), expiresAt: 300, now: 200) == .fresh)
    }

    @Test func spentChallengesExpireByWholeBucketsAndOnlyOnceExpired() {
        let spent = SpentChallenges(capacity: 1000, bucketSeconds: 10)
        let early = VoteID.random(), late = VoteID.random()
        // Expiring at 105 and 119: buckets [100, 110) and [110, 120).
        #expect(spent.spend(nonce: early, expiresAt: 105, now: 0) == .fresh)
        #expect(spent.spend(nonce: late, expiresAt: 119, now: 0) == .fresh)
        #expect(spent.size == (nonces: 2, buckets: 2))
        // Before its expiry a nonce is still spent, at any time up to it.
        #expect(spent.spend(nonce: early, expiresAt: 105, now: 104) == .spent)
        #expect(spent.spend(nonce: late, expiresAt: 119, now: 109) == .spent)
        // At 110 the bucket [100, 110) is gone as a whole; [110, 120) stays until 120.
        #expect(spent.spend(nonce: .random(), expiresAt: 200, now: 110) == .fresh)
        #expect(spent.size == (nonces: 2, buckets: 2))
        #expect(spent.spend(nonce: late, expiresAt: 119, now: 118) == .spent)
        #expect(spent.spend(nonce: .random(), expiresAt: 200, now: 120) == .fresh)
        #expect(spent.size == (nonces: 2, buckets: 1))
    }

    @Test func aFullSetOfLiveNoncesRefusesAtOnceAndFreesWhenABucketExpires() {
        let spent = SpentChallenges(capacity: 100, bucketSeconds: 10)
        for second in 0..<100 { #expect(spent.spend(nonce: .random(), expiresAt: Int64(100 + second), now: 0) == .fresh) }
        #expect(spent.spend(nonce: .random(), expiresAt: 300, now: 50) == .full)
        // [100, 110) expires at 110: ten nonces' room, and no more.
        for _ in 0..<10 { #expect(spent.spend(nonce: .random(), expiresAt: 300, now: 110) == .fresh) }
        #expect(spent.spend(nonce: .random(), expiresAt: 300, now: 110) == .full)
        #expect(spent.size.nonces == 100)
    }

    @Test func difficultyRisesInStepsPerNetworkAndOverallUpToTheCap() {
        let governor = DifficultyGovernor(base: 16, cap: 18, networkWindowMax: 160, overallStep: 1000)
        #expect(governor.networkSteps == [20, 40, 80, 120] && governor.overallSteps == [1000, 2000, 4000, 8000])
        let busy = ClientNetwork(address: "198.51.100.1")!
        let quiet = ClientNetwork(address: "203.0.113.1")!
        var seen: [Int] = []
        for _ in 0..<600 { seen.append(governor.difficulty(for: busy, nowMillis: 0)) }
        #expect(seen.first == 16)
        #expect(seen[19] == 16)
        #expect(seen[20] == 17)
        #expect(seen[40] == 18)
        #expect(seen.last == 18)
        #expect(governor.difficulty(for: quiet, nowMillis: 1) == 16)
        // A new window starts over.
        #expect(governor.difficulty(for: busy, nowMillis: 20_000) == 16)
        // Many quiet networks together raise it too.
        let crowd = DifficultyGovernor(base: 16, cap: 30, networkWindowMax: 160, overallStep: 1000)
        var last = 0
        for index in 0..<9000 { last = crowd.difficulty(for: ClientNetwork(address: "10.\(index / 256 % 256).\(index % 256).1")!, nowMillis: 0) }
        #expect(last == 16 + 4)
    }

    /// Behind the per-network limiter at its defaults (20/s, burst 60: 260 per window), one
    /// network asking as fast as it is let through reaches every network step.
    @Test(arguments: [(20.0, 60), (5.0, 10), (100.0, 500)])
    func everyNetworkStepIsReachableBehindTheNetworkLimit(rate: Double, burst: Int) {
        let limiter = NetworkLimiter(ratePerSecond: rate, burst: burst, maxNetworks: 1024)
        let windowMax = DifficultyGovernor.networkWindowMax(ratePerSecond: rate, burst: burst)
        let governor = DifficultyGovernor(base: 16, cap: 30, networkWindowMax: windowMax, overallStep: 1_000_000)
        let network = ClientNetwork(address: "198.51.100.1")!
        var highest = 0, admitted = 0
        // One try per millisecond for one window.
        for millis in Int64(0)..<DifficultyGovernor.windowMillis where limiter.admit(network, nowMillis: millis) == nil {
            admitted += 1
            highest = max(highest, governor.difficulty(for: network, nowMillis: millis))
        }
        #expect(admitted <= windowMax && admitted >= windowMax - 2, "\(admitted) of \(windowMax)")
        #expect(highest == 16 + DifficultyGovernor.networkStepEighths.count)
    }
}

@Suite("Strict routes")
struct StrictRouteTests {
    @Test(arguments: Route.allCases.filter { $0 != .unmatched })
    func aRouteMatchesOnlyItsExactSpellingWithOrWithoutAQuery(_ route: Route) {
        let path = route.samplePath
        #expect(Route(uri: path) == route)
        #expect(Route(uri: path + "?poll=x") == route)
        for alias in [path + "/", "/" + path, path + "//", path.uppercased(),
                      path.replacingOccurrences(of: "/", with: "//"), path + "%2F", path + ";x",
                      path + "/?x", path + "#x", " " + path, path + "/.", path + "/../" + path.split(separator: "/").last!] {
            #expect(Route(uri: alias) == .unmatched, "\(alias) is not an alias of \(route.rawValue)")
        }
    }

    @Test func aTemplateMatchesAValidPollIDOnly() {
        #expect(Route(uri: "/api/v1/admin/polls/{id}") == .unmatched)
        #expect(Route(uri: "/api/v1/admin/polls/{id}/open") == .unmatched)
        #expect(Route(uri: "/api/v1/admin/polls/P1") == .unmatched)
        #expect(Route(uri: "/api/v1/admin/polls/") == .unmatched)
        #expect(Route(uri: "/api/v1/admin/polls/p1/delete") == .unmatched)
        #expect(Route(uri: "/api/v1/admin/polls/%70%31") == .unmatched)
        #expect(Route(uri: "/api/v1/admin/polls/bbb26-paredao-11/close") == .adminPollClose)
        #expect(Route.pollID(in: "/api/v1/admin/polls/bbb26-paredao-11/close?x=1") == "bbb26-paredao-11")
    }

    @Test func unmatchedIsNotARouteName() {
        #expect(Route(uri: "unmatched") == .unmatched)
        #expect(Route(uri: "") == .unmatched)
        #expect(Route(uri: "?") == .unmatched)
    }


    /// The switches the hot path uses agree with what `Allow` and the templates say.
    @Test(arguments: Route.allCases)
    func allowsAndIsTemplateAgreeWithTheRouteTable(_ route: Route) {
        let every: [HTTPMethod] = [.GET, .HEAD, .POST, .PUT, .DELETE, .PATCH, .OPTIONS, .TRACE, .CONNECT, .RAW(value: "BREW")]
        for method in every {
            #expect(route.allows(method) == route.methods.contains(method), "\(route) \(method)")
        }
        #expect(route.isTemplate == route.rawValue.contains("{"))
    }
    @Test func theApplicationAnswersEverySlashedSpelling404() throws {
        let app = try TestApplication()
        for path in ["/api/v1/challenges/", "/api/v1/sessions/", "/api/v1/votes/", "/api/v1/totals/", "//api/v1/challenges", "/total/"] {
            let (response, body) = try app.send(path.contains("totals") || path.contains("total/") ? .GET : .POST, path)
            #expect(response.status == .notFound, "\(path)")
            #expect(body.errorCode == "not_found", "\(path)")
        }
    }
}

@Suite("Per-network limits")
struct NetworkLimitTests {
    @Test func aNetworkGetsItsBurstThenTheRateAndOthersAreUnaffected() {
        let limiter = NetworkLimiter(ratePerSecond: 2, burst: 3, maxNetworks: 100)
        let busy = ClientNetwork(address: "198.51.100.7")!
        let neighbour = ClientNetwork(address: "198.51.100.200")!  // same /24
        let other = ClientNetwork(address: "203.0.113.1")!
        #expect((0..<3).map { _ in limiter.admit(busy, nowMillis: 0) } == [nil, nil, nil])
        #expect(limiter.admit(neighbour, nowMillis: 0) == 1, "the /24 shares one bucket")
        #expect(limiter.admit(other, nowMillis: 0) == nil)
        #expect(limiter.admit(busy, nowMillis: 499) == 1)
        #expect(limiter.admit(busy, nowMillis: 500) == nil, "one request per 1/rate seconds")
    }

    @Test func anIPv6NetworkIsItsSlash48() {
        let limiter = NetworkLimiter(ratePerSecond: 1, burst: 1, maxNetworks: 100)
        #expect(limiter.admit(ClientNetwork(address: "2001:db8:1:1::1")!, nowMillis: 0) == nil)
        #expect(limiter.admit(ClientNetwork(address: "2001:db8:1:ffff::9")!, nowMillis: 0) != nil)
    }

    @Test func theTableStaysBounded() {
        let limiter = NetworkLimiter(ratePerSecond: 1, burst: 1, maxNetworks: 64)
        for index in 0..<10_000 {
            let address = "10.\(index / 256 % 256).\(index % 256).1"
            #expect(limiter.admit(ClientNetwork(address: address)!, nowMillis: Int64(index)) == nil, "a new network is never refused for lack of room")
        }
        #expect(limiter.trackedNetworks <= 64)
    }

    @Test func challengesFromOneNetworkAre429BeyondTheLimitWithRetryAfter() throws {
        let app = try TestApplication(environment: ["PAREDAO_NETWORK_SESSION_RATE": "0.5", "PAREDAO_NETWORK_SESSION_BURST": "2"])
        #expect(try app.send(.POST, "/api/v1/challenges").0.status == .created)
        #expect(try app.send(.POST, "/api/v1/challenges").0.status == .created)
        let (limited, body) = try app.send(.POST, "/api/v1/challenges")
        #expect(limited.status == .tooManyRequests)
        #expect(body.errorCode == "rate_limited")
        #expect(limited.headers.contains { $0.0 == "Retry-After" })
        // Behind the proxy the limit follows the client's network, not the proxy's; a TCP peer's header is not believed.
        #expect(try app.send(.POST, "/api/v1/challenges", headers: [("X-Real-IP", "203.0.113.9")]).0.status == .tooManyRequests)
        #expect(try app.send(.POST, "/api/v1/challenges", headers: [("X-Real-IP", "203.0.113.9")], peer: "unix").0.status == .created)
        let session = #"{"challenge":"x","counter":1}"#
        #expect(try app.send(.POST, "/api/v1/sessions", body: session).1.errorCode == "challenge_invalid")
        #expect(try app.send(.POST, "/api/v1/sessions", body: session).1.errorCode == "challenge_invalid")
        #expect(try app.send(.POST, "/api/v1/sessions", body: session).1.errorCode == "rate_limited")
    }
}
