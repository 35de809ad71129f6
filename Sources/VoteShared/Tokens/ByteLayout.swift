/// Big-endian reads and writes for the fixed binary layouts of challenges and tokens.
extension Array where Element == UInt8 {
    mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        var bigEndian = value.bigEndian
        Swift.withUnsafeBytes(of: &bigEndian) { append(contentsOf: $0) }
    }

    func readBigEndian<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        var value: T = 0
        for index in offset..<offset + MemoryLayout<T>.size { value = value << 8 | T(self[index]) }
        return value
    }
}
