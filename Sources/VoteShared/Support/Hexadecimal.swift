/// Lower-case hexadecimal digits as ASCII bytes, for the hot paths that write text without
/// building Strings (vote ids, request ids, JSON escapes).
public enum Hexadecimal {
    /// The ASCII digit of `nibble` (0...15): "0"–"9", then "a"–"f".
    @inlinable
    public static func digit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") - 10 + nibble
    }
}
