import Synchronization

/// Session tokens whose MAC already checked out, so a voter's next votes skip the HMAC.
///
/// A direct-mapped table indexed by bits of the token's MAC. A slot holds the complete
/// binary token that verified (all 78 bytes), so only byte-for-byte the same token hits:
/// a token with any byte changed misses and gets the full check. The memo vouches for the
/// MAC only — expiry, clock skew and the client's network are checked on every vote. A
/// collision overwrites the older token, which then costs one HMAC on its next vote.
///
/// The memo belongs to one keyring (`TokenKeyring.rememberingVerifiedTokens(slots:)`):
/// a keyring is fixed for the life of a process, so a remembered MAC stays valid.
final class VerifiedTokenMemo: Sendable {
    /// A binary session token, zero-padded to 80 bytes.
    struct Words {
        var w0: UInt64 = 0, w1: UInt64 = 0, w2: UInt64 = 0, w3: UInt64 = 0, w4: UInt64 = 0
        var w5: UInt64 = 0, w6: UInt64 = 0, w7: UInt64 = 0, w8: UInt64 = 0, w9: UInt64 = 0

        init() {}

        init(_ bytes: UnsafeBufferPointer<UInt8>) {
            precondition(bytes.count == SessionToken.length, "a binary session token")
            let raw = UnsafeRawBufferPointer(bytes)
            func word(_ index: Int) -> UInt64 { raw.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self) }
            w0 = word(0); w1 = word(1); w2 = word(2); w3 = word(3); w4 = word(4)
            w5 = word(5); w6 = word(6); w7 = word(7); w8 = word(8)
            for offset in 72..<SessionToken.length { w9 |= UInt64(raw[offset]) << ((offset - 72) * 8) }
        }

        /// Compares every word whatever the first difference (no early exit to time).
        func matches(_ other: Words) -> Bool {
            let difference = (w0 ^ other.w0) | (w1 ^ other.w1) | (w2 ^ other.w2) | (w3 ^ other.w3) | (w4 ^ other.w4)
                | (w5 ^ other.w5) | (w6 ^ other.w6) | (w7 ^ other.w7) | (w8 ^ other.w8) | (w9 ^ other.w9)
            return difference == 0
        }

        /// Bits of the MAC (bytes 46–53): uniformly spread, and fixed by the key holder.
        var slotBits: Int { Int(truncatingIfNeeded: (w5 >> 48) | (w6 << 16)) }
    }

    private final class Stripe: Sendable {
        let slots: Mutex<[Words]>

        init(slots count: Int) {
            slots = Mutex([Words](repeating: Words(), count: count))
        }
    }

    private static let stripeCount = 64
    private let stripes: [Stripe]
    private let slotsPerStripe: Int

    /// A memo of `slots` tokens (rounded up to a power of two, at least 64): 80 bytes each.
    init(slots: Int) {
        var total = Self.stripeCount
        while total < slots { total <<= 1 }
        slotsPerStripe = total / Self.stripeCount
        stripes = (0..<Self.stripeCount).map { _ in Stripe(slots: total / Self.stripeCount) }
    }

    /// The number of tokens the memo can hold.
    var capacity: Int { slotsPerStripe * Self.stripeCount }

    /// Whether exactly these token bytes verified before.
    func contains(_ token: Words) -> Bool {
        let (stripe, slot) = position(of: token)
        return stripes[stripe].slots.withLock { $0[slot].matches(token) }
    }

    /// Remembers token bytes whose MAC just verified.
    func remember(_ token: Words) {
        let (stripe, slot) = position(of: token)
        stripes[stripe].slots.withLock { $0[slot] = token }
    }

    private func position(of token: Words) -> (stripe: Int, slot: Int) {
        let bits = token.slotBits & (capacity - 1)
        return (bits % Self.stripeCount, bits / Self.stripeCount)
    }
}
