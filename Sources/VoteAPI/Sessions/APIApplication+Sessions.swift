import VoteShared

/// The session use case: a proof-of-work challenge, then a signed session token for its solution.
extension APIApplication {
    func issueChallenge(_ request: APIRequest) -> APIResponse {
        guard let network = clientNetwork(request) else { return APIResponse(error: .invalidField("client", "Unknown client address.")) }
        let now = Timestamp.nowMillis()
        if let retryAfter = challengeLimiter.admit(network, nowMillis: now) {
            metrics.sessionRejected("network_rate")
            return APIResponse(error: .networkRateLimited(retryAfter: retryAfter))
        }
        let difficulty = governor.difficulty(for: network, nowMillis: now)
        let issued = Challenge.issue(keyring: keyring, now: now / 1000, lifetimeSeconds: Int64(configuration.challengeLifetimeSeconds), difficulty: difficulty)
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("challenge", issued.encoded)
        writer.field("difficulty", Int64(difficulty))
        writer.field("algorithm", "SHA-256")
        writer.field("expiresAt", Timestamp.iso8601(millis: issued.challenge.expiresAt * 1000, fractional: false))
        writer.endObject()
        return APIResponse(status: .created, body: writer.bytes)
    }

    func createSession(_ request: APIRequest) -> APIResponse {
        if let error = request.jsonContentTypeError { return APIResponse(error: error) }
        let fields: FlatJSON.Object
        do {
            fields = try FlatJSON.parseObject(request.bodyBytes)
        } catch {
            return APIResponse(error: .invalidJSON(error.description))
        }
        guard case .string(let encoded)? = fields["challenge"] else {
            return APIResponse(error: .invalidField("challenge", "\"challenge\" must be the string from /api/v1/challenges."))
        }
        guard case .number(_, let text)? = fields["counter"], let counter = UInt64(text) else {
            return APIResponse(error: .invalidField("counter", "\"counter\" must be a whole number from 0 to 2^64-1."))
        }
        guard let network = clientNetwork(request) else { return APIResponse(error: .invalidField("client", "Unknown client address.")) }
        if let retryAfter = sessionLimiter.admit(network, nowMillis: Timestamp.nowMillis()) {
            metrics.sessionRejected("network_rate")
            return APIResponse(error: .networkRateLimited(retryAfter: retryAfter))
        }
        let now = Timestamp.nowMillis() / 1000
        let challenge: Challenge
        do {
            challenge = try Challenge.verify(encoded, counter: counter, keyring: keyring, now: now)
        } catch {
            metrics.sessionRejected(error.code)
            return APIResponse(error: .challenge(error))
        }
        switch spentChallenges.spend(nonce: challenge.nonce, expiresAt: challenge.expiresAt, now: now) {
        case .spent:
            metrics.sessionRejected(ChallengeRejection.spent.code)
            return APIResponse(error: .challenge(.spent))
        case .full:
            return APIResponse(error: .challengeStoreFull)
        case .fresh:
            break
        }
        // The same challenge mints the same session at every instance (see SessionToken), so
        // this instance's spent set only has to catch replays here: a replay at another
        // instance gets the same session id, hence the same budget at the same home instance.
        guard let minted = SessionToken.mint(redeeming: challenge, keyring: keyring, network: network, lifetimeSeconds: Int64(configuration.sessionLifetimeSeconds), budget: UInt32(configuration.sessionBudget)) else {
            metrics.sessionRejected(ChallengeRejection.invalid.code)
            return APIResponse(error: .challenge(.invalid))
        }
        // The session runs from the challenge's issue time: a session lifetime shorter than
        // the challenge's age would mint a token that is dead on arrival.
        guard now < minted.token.expiresAt else {
            metrics.sessionRejected(ChallengeRejection.expired.code)
            return APIResponse(error: .challenge(.expired))
        }
        var writer = JSONWriter(capacity: 200)
        writer.beginObject()
        writer.field("token", minted.encoded)
        writer.field("expiresAt", Timestamp.iso8601(millis: minted.token.expiresAt * 1000, fractional: false))
        writer.field("votesRemaining", Int64(minted.token.budget))
        writer.endObject()
        return APIResponse(status: .created, body: writer.bytes)
    }

    /// The vote's session token, verified for this client's network.
    func authenticate(_ request: APIRequest) -> Result<SessionToken, APIError> {
        guard let header = request.headers.first(name: "Authorization") else { return .failure(.token(.missing)) }
        guard let encoded = BearerCredential.credential(in: header) else { return .failure(.token(.malformed)) }
        guard let network = clientNetwork(request) else { return .failure(.token(.wrongNetwork)) }
        do {
            return .success(try SessionToken.verify(encoded, keyring: keyring, network: network, now: Timestamp.nowMillis() / 1000))
        } catch {
            return .failure(.token(error))
        }
    }
}
