/// Reads fixed-width fields off the front of a fuzz input, big-endian; past the end it
/// reads zeros, so every input makes a value of every field.
public struct FuzzInput {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var offset = 0

    public init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    /// The bytes not read yet.
    public var rest: UnsafeBufferPointer<UInt8>.SubSequence { bytes[min(offset, bytes.count)...] }

    public mutating func integer<T: FixedWidthInteger & UnsignedInteger>(_: T.Type = T.self) -> T {
        var value: T = 0
        for _ in 0..<MemoryLayout<T>.size {
            value = value << 8 | T(offset < bytes.count ? bytes[offset] : 0)
            offset += 1
        }
        return value
    }

    public mutating func int64() -> Int64 { Int64(bitPattern: integer(UInt64.self)) }
}
