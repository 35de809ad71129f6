import Crypto
import Foundation
import Synchronization

/// The HMAC keys that sign challenges and session tokens, by one-byte key id.
///
/// The key file holds one `id:base64-secret` per line (`#` starts a comment); the last
/// line signs, every line verifies. Rotate by appending a new id, then later removing
/// the old one once its tokens have expired.
public struct TokenKeyring: Sendable {
    public let signingKeyID: UInt8
    private let keys: [UInt8: ImmutableKey]
    private let networkHashes = NetworkHashCache()
    /// Tokens whose MAC verified, when enabled (`rememberingVerifiedTokens(slots:)`).
    private(set) var verifiedTokens: VerifiedTokenMemo?

    public init(keys: [(id: UInt8, secret: [UInt8])]) throws(ConfigurationError) {
        guard let last = keys.last else {
            throw ConfigurationError(key: "PAREDAO_TOKEN_KEYS", message: "no token keys")
        }
        var table: [UInt8: ImmutableKey] = [:]
        for key in keys {
            guard key.secret.count >= 32 else {
                throw ConfigurationError(key: "PAREDAO_TOKEN_KEYS", message: "key \(key.id) is shorter than 32 bytes")
            }
            let symmetric = SymmetricKey(data: key.secret)
            table[key.id] = ImmutableKey(key: symmetric, keyed: HMAC<SHA256>(key: symmetric))
        }
        signingKeyID = last.id
        self.keys = table
    }

    /// Parses the key file format (`id:base64` per line).
    public init(parsing text: String, source: String) throws(ConfigurationError) {
        var keys: [(id: UInt8, secret: [UInt8])] = []
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, let id = UInt8(parts[0]), let data = Data(base64Encoded: String(parts[1])) else {
                throw ConfigurationError(key: source, message: "expected lines of id:base64-secret")
            }
            keys.append((id, Array(data)))
        }
        try self.init(keys: keys)
    }

    /// The inline keys (`id:base64`, comma-separated) when given, else the key file at `path`.
    public static func load(inlineKeys: String, keysFile path: String) throws(ConfigurationError) -> TokenKeyring {
        if !inlineKeys.isEmpty {
            return try TokenKeyring(parsing: inlineKeys.replacingOccurrences(of: ",", with: "\n"), source: "PAREDAO_TOKEN_KEYS")
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigurationError(key: "PAREDAO_TOKEN_KEYS_FILE", message: "cannot read \(path); run ./preflight.sh (or scripts/make-secrets.sh) to generate it")
        }
        return try TokenKeyring(parsing: text, source: path)
    }

    /// A fresh random 32-byte secret, base64 encoded, for a key file line.
    public static func generateSecret() -> String {
        Data(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }).base64EncodedString()
    }

    /// This keyring, remembering up to `slots` session tokens that verified so that a
    /// token seen again skips its HMAC (80 bytes per slot; 0 turns the memo off).
    public func rememberingVerifiedTokens(slots: Int) -> TokenKeyring {
        var copy = self
        copy.verifiedTokens = slots > 0 ? VerifiedTokenMemo(slots: slots) : nil
        return copy
    }

    func key(id: UInt8) -> SymmetricKey? { keys[id]?.key }

    /// An HMAC-SHA256 already keyed with key `id` (copy it, then update): keying once per
    /// key instead of once per token halves the cost of a check.
    func keyedMAC(id: UInt8) -> HMAC<SHA256>? { keys[id]?.keyed }

    /// The keyed hash of `network` under key `id`, cached: a voter's network rarely changes.
    func networkHash(_ network: ClientNetwork, keyID: UInt8) -> UInt64? {
        if let cached = networkHashes.lookup(network, keyID: keyID) { return cached }
        guard let key = key(id: keyID) else { return nil }
        let hash = network.hash(using: key)
        networkHashes.store(hash, for: network, keyID: keyID)
        return hash
    }

    var signingKey: SymmetricKey {
        // The initialiser guarantees the signing id has a key.
        keys[signingKeyID]?.key ?? SymmetricKey(size: .bits256)
    }
}

/// A key that is never mutated after creation, so sharing it across threads is safe even
/// though swift-crypto does not mark `SymmetricKey` as `Sendable`.
private struct ImmutableKey: @unchecked Sendable {
    let key: SymmetricKey
    let keyed: HMAC<SHA256>
}

/// A bounded map from (key id, network) to its keyed hash; emptied when full.
private final class NetworkHashCache: Sendable {
    private struct Key: Hashable {
        var keyID: UInt8
        var network: ClientNetwork
    }

    private static let capacity = 65_536
    private let entries = Mutex<[Key: UInt64]>([:])

    func lookup(_ network: ClientNetwork, keyID: UInt8) -> UInt64? {
        entries.withLock { $0[Key(keyID: keyID, network: network)] }
    }

    func store(_ hash: UInt64, for network: ClientNetwork, keyID: UInt8) {
        entries.withLock { entries in
            if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
            entries[Key(keyID: keyID, network: network)] = hash
        }
    }
}
