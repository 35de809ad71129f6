import Crypto
import Foundation

/// What an admin request's `Authorization` header is worth.
public enum AdminAuthentication: Equatable, Sendable {
    /// No `Authorization: Bearer …` at all (401).
    case missing
    /// A bearer value that matches no credential (403).
    case wrong
    /// The credential of this name.
    case valid(name: String)
}

/// The admin credentials, `name:secret` per line (generated at set-up into the secrets
/// folder, never in the repository). The bearer value is the whole line; the secret is
/// compared in constant time (an HMAC under a key made at start, checked with
/// `isValidAuthenticationCode`), so neither its bytes nor its length leak through timing.
public struct AdminCredentials: Sendable {
    private let box: KeyBox
    private var key: SymmetricKey { box.key }
    private let macs: [String: Data]
    private let decoy: Data

    /// The names of the credentials (for logs).
    public var names: [String] { macs.keys.sorted() }
    public var isEmpty: Bool { macs.isEmpty }

    /// Credentials from lines of `name:secret` (`#` comments and blank lines skipped); a
    /// name is `[a-z0-9_-]{1,64}`, a secret at least 16 characters.
    public init(lines: String) throws(ConfigurationError) {
        let key = SymmetricKey(size: .bits256)
        box = KeyBox(key: key)
        var macs: [String: Data] = [:]
        for raw in lines.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let colon = line.firstIndex(of: ":") else {
                throw ConfigurationError(key: "PAREDAO_ADMIN_TOKEN_FILE", message: "a credential line is name:secret")
            }
            let name = String(line[..<colon])
            let secret = line[line.index(after: colon)...]
            guard Poll.isValidID(name), secret.utf8.count >= 16 else {
                throw ConfigurationError(key: "PAREDAO_ADMIN_TOKEN_FILE", message: "a credential is name ([a-z0-9_-]{1,64}) : secret (16 characters or more)")
            }
            macs[name] = Data(HMAC<SHA256>.authenticationCode(for: Data(line.utf8), using: key))
        }
        self.macs = macs
        decoy = Data(HMAC<SHA256>.authenticationCode(for: Data("decoy".utf8), using: key))
    }

    /// Reads the credentials file; a missing file is no credentials (admin disabled).
    public static func load(file path: String) throws(ConfigurationError) -> AdminCredentials {
        guard FileManager.default.fileExists(atPath: path) else { return try AdminCredentials(lines: "") }
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(key: "PAREDAO_ADMIN_TOKEN_FILE", message: "cannot read \(path): \(error.localizedDescription)")
        }
        return try AdminCredentials(lines: text)
    }

    /// Checks an `Authorization` header value (`Bearer name:secret`).
    public func authenticate(authorization: String?) -> AdminAuthentication {
        guard let authorization, let credential = BearerCredential.credential(in: authorization) else { return .missing }
        let value = credential.trimmingCharacters(in: .whitespaces)
        guard !value.isEmpty else { return .missing }
        let name = value.firstIndex(of: ":").map { String(value[..<$0]) } ?? ""
        // An unknown name is checked against a decoy, so it costs the same as a wrong secret.
        let expected = macs[name] ?? decoy
        let valid = HMAC<SHA256>.isValidAuthenticationCode(expected, authenticating: Data(value.utf8), using: key)
        return valid && macs[name] != nil ? .valid(name: name) : .wrong
    }

    /// The name a bearer value claims when it is one of ours, else `nil`: for counting
    /// refused attempts per name without letting a client add names.
    public func claimedName(authorization: String?) -> String? {
        guard let authorization, let credential = BearerCredential.credential(in: authorization) else { return nil }
        let value = credential.trimmingCharacters(in: .whitespaces)
        guard let colon = value.firstIndex(of: ":") else { return nil }
        let name = String(value[..<colon])
        return macs[name] != nil ? name : nil
    }
}

/// The MAC key, never changed after start (SymmetricKey is not marked Sendable).
private struct KeyBox: @unchecked Sendable {
    let key: SymmetricKey
}
