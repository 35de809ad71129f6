/// Unpadded base64url (RFC 4648 §5), as used in tokens and challenges.
public enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    private static let reverse: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(index) }
        return table
    }()

    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var iterator = bytes.makeIterator()
        while let first = iterator.next() {
            let second = iterator.next()
            let third = iterator.next()
            out.append(alphabet[Int(first >> 2)])
            out.append(alphabet[Int((first & 0x03) << 4 | (second ?? 0) >> 4)])
            if let second { out.append(alphabet[Int((second & 0x0F) << 2 | (third ?? 0) >> 6)]) }
            if let third { out.append(alphabet[Int(third & 0x3F)]) }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes unpadded base64url; `nil` on any other character, padding or a bad length.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        var failed = false
        let bytes = [UInt8](unsafeUninitializedCapacity: text.utf8.count * 3 / 4) { buffer, count in
            guard let decoded = decode(text, into: buffer) else {
                failed = true
                count = 0
                return
            }
            count = decoded
        }
        return failed ? nil : bytes
    }

    /// Decodes into `output` without allocating; returns the decoded length, or `nil` when
    /// the text is not canonical base64url or does not fit.
    public static func decode(_ text: some StringProtocol, into output: UnsafeMutableBufferPointer<UInt8>) -> Int? {
        if let decoded = text.utf8.withContiguousStorageIfAvailable({ decode(bytes: $0, into: output) }) {
            return decoded
        }
        var copy = String(text)
        return copy.withUTF8 { decode(bytes: $0, into: output) }
    }

    private static func decode(bytes utf8: UnsafeBufferPointer<UInt8>, into output: UnsafeMutableBufferPointer<UInt8>) -> Int? {
        guard utf8.count % 4 != 1, utf8.count * 3 / 4 <= output.count else { return nil }
        return reverse.withUnsafeBufferPointer { table -> Int? in
            var count = 0
            var accumulator: UInt32 = 0
            var bits: UInt32 = 0
            for byte in utf8 {
                let value = table[Int(byte)]
                guard value != 0xFF else { return nil }
                accumulator = accumulator << 6 | UInt32(value)
                bits += 6
                if bits >= 8 {
                    bits -= 8
                    output[count] = UInt8(truncatingIfNeeded: accumulator >> bits)
                    count += 1
                }
            }
            // Non-canonical encodings (stray low bits) are rejected so a token has one spelling.
            guard accumulator & ((1 << bits) - 1) == 0 else { return nil }
            return count
        }
    }
}
