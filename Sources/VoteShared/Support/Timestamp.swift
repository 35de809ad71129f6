#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// UTC wall-clock time and ISO 8601 formatting without Foundation.
public enum Timestamp {
    /// Milliseconds since 1970 (UTC), from the system's real-time clock.
    public static func nowMillis() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }

    /// `2026-11-22T13:00:00Z`, or with `.123` milliseconds when `fractional`.
    public static func iso8601(millis: Int64, fractional: Bool = true) -> String {
        var bytes: [UInt8] = []
        appendISO8601(millis: millis, fractional: fractional, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the ISO 8601 form of `millis` to `bytes` (no intermediate strings). Any
    /// `Int64` renders without trapping: years outside 0000–9999 carry their sign
    /// (`-1200-…`, `+10000-…`), as ISO 8601's expanded years do.
    public static func appendISO8601(millis: Int64, fractional: Bool = true, to bytes: inout [UInt8]) {
        let (seconds, milli) = floorDivision(millis, 1000)
        let (days, secondOfDay) = floorDivision(seconds, 86400)
        let (year, month, day) = civilDate(daysSince1970: days)
        if year < 0 {
            bytes.append(UInt8(ascii: "-"))
        } else if year > 9999 {
            bytes.append(UInt8(ascii: "+"))
        }
        digits(year.magnitude, 4, &bytes)
        bytes.append(UInt8(ascii: "-"))
        digits(month, 2, &bytes)
        bytes.append(UInt8(ascii: "-"))
        digits(day, 2, &bytes)
        bytes.append(UInt8(ascii: "T"))
        digits(secondOfDay / 3600, 2, &bytes)
        bytes.append(UInt8(ascii: ":"))
        digits(secondOfDay / 60 % 60, 2, &bytes)
        bytes.append(UInt8(ascii: ":"))
        digits(secondOfDay % 60, 2, &bytes)
        if fractional {
            bytes.append(UInt8(ascii: "."))
            digits(milli, 3, &bytes)
        }
        bytes.append(UInt8(ascii: "Z"))
    }

    /// `a / b` rounded toward minus infinity and the remainder that goes with it (in
    /// `0..<b`), for every `a` — `(a - (b - 1)) / b` would overflow near `Int64.min`.
    public static func floorDivision(_ a: Int64, _ b: Int64) -> (quotient: Int64, remainder: Int64) {
        let quotient = a / b
        let remainder = a % b
        return remainder < 0 ? (quotient - 1, remainder + b) : (quotient, remainder)
    }

    private static func digits(_ value: Int64, _ width: Int, _ bytes: inout [UInt8]) {
        digits(value.magnitude, width, &bytes)
    }

    /// At least `width` digits of `value`, zero-padded.
    private static func digits(_ value: UInt64, _ width: Int, _ bytes: inout [UInt8]) {
        var divisor: UInt64 = 1
        for _ in 1..<width { divisor *= 10 }
        var rest = value
        if rest >= divisor * 10 {
            bytes.append(contentsOf: String(value).utf8)
            return
        }
        while divisor > 0 {
            bytes.append(UInt8(ascii: "0") + UInt8(rest / divisor))
            rest %= divisor
            divisor /= 10
        }
    }

    /// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
    static func civilDate(daysSince1970: Int64) -> (Int64, Int64, Int64) {
        let z = daysSince1970 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

}
