/// The credential of an `Authorization: Bearer <credential>` header value (RFC 6750 §2.1),
/// for session tokens and admin credentials alike.
public enum BearerCredential {
    private static let scheme: StaticString = "bearer "

    /// What follows `Bearer ` (the scheme in any letter case, then one space), or `nil` when
    /// the value has another scheme or nothing after it. Only A–Z fold to a–z, so no other
    /// byte stands in for a letter or the space.
    public static func credential(in authorization: String) -> Substring? {
        let utf8 = authorization.utf8
        let length = scheme.utf8CodeUnitCount
        guard utf8.count > length else { return nil }
        let matches = scheme.withUTF8Buffer { expected in
            zip(utf8, expected).allSatisfy { byte, lower in (byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte) == lower }
        }
        guard matches else { return nil }
        // The scheme is ASCII, so the byte after it starts a character.
        return authorization[utf8.index(utf8.startIndex, offsetBy: length)...]
    }
}
