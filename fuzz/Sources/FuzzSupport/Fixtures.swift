public import VoteShared

/// The fixed world every target checks against. fuzz/make-corpus.py signs the seed tokens
/// and challenges with the same keys, clock and networks: keep the two in step.
public enum Fixtures {
    /// "Now" for every verification, in seconds since 1970 (2027-01-15T08:00:00Z).
    public static let now: Int64 = 1_800_000_000

    /// Key 1 (old, still verifies): 32 bytes of 0x11. Key 2 (signs): bytes 0, 1, …, 31.
    public static let keys: [(id: UInt8, secret: [UInt8])] = [
        (1, [UInt8](repeating: 0x11, count: 32)),
        (2, (0..<32).map { UInt8($0) }),
    ]

    /// The keyring without the verified-token memo: every token gets the full MAC check.
    public static let keyring: TokenKeyring = {
        do {
            return try TokenKeyring(keys: keys)
        } catch {
            fatalError("fixture keyring: \(error)")
        }
    }()

    /// The same keys, remembering verified tokens as the API does.
    public static let rememberingKeyring = keyring.rememberingVerifiedTokens(slots: 1024)

    /// The network the seed tokens were minted for, and another one.
    public static let network = requireNetwork("203.0.113.7")
    public static let otherNetwork = requireNetwork("198.51.100.9")

    /// A three-participant poll, as the API loads from its poll file.
    public static let poll: Poll = {
        do {
            return try Poll(id: "paredao-fuzz", title: "Fuzz", participants: [
                Participant(id: "ana", name: "Ana", photoUrl: "/a.jpg"),
                Participant(id: "bia", name: "Bia", photoUrl: "/b.jpg"),
                Participant(id: "caio_2", name: "Caio", photoUrl: "/c.jpg"),
            ])
        } catch {
            fatalError("fixture poll: \(error)")
        }
    }()

    static func requireNetwork(_ address: String) -> ClientNetwork {
        guard let network = ClientNetwork(address: address) else { fatalError("fixture network \(address)") }
        return network
    }
}
