internal import CMongoC

/// A BSON document owned by Swift: built with `append`, read with `fields()`. The C
/// `bson_t` never leaves this module.
public final class BSONDocument {
    let handle: OpaquePointer
    private let isReply: Bool

    /// An empty document.
    public init() {
        guard let handle = bson_new() else { preconditionFailure("bson_new: out of memory") }
        self.handle = handle
        isReply = false
    }

    /// Storage the driver fills in (a reply, a cursor's document copy).
    init(replyStorage: Void) {
        guard let handle = paredao_bson_reply_new() else { preconditionFailure("bson reply: out of memory") }
        self.handle = handle
        isReply = true
    }

    /// A copy of a document the driver owns (a cursor's current document).
    init(copying borrowed: OpaquePointer) {
        guard let handle = bson_copy(borrowed) else { preconditionFailure("bson_copy: out of memory") }
        self.handle = handle
        isReply = false
    }

    /// Parses (canonical or relaxed) extended JSON.
    public init(json: String) throws(MongoError) {
        var error = bson_error_t()
        let parsed = json.withCString { bson_new_from_json(UnsafeRawPointer($0).assumingMemoryBound(to: UInt8.self), -1, &error) }
        guard let parsed else { throw MongoError(error) }
        handle = parsed
        isReply = false
    }

    deinit {
        if isReply { paredao_bson_reply_free(handle) } else { bson_destroy(handle) }
    }

    /// Empties the document for reuse (a scratch document built once per vote).
    public func removeAll() {
        bson_reinit(handle)
    }

    /// Relaxed extended JSON, for logs and tests.
    public var json: String {
        var length = 0
        guard let text = bson_as_relaxed_extended_json(handle, &length) else { return "{}" }
        defer { bson_free(text) }
        return String(cString: text)
    }

    // MARK: Building

    @discardableResult
    public func append(_ key: String, _ value: String) -> BSONDocument {
        let ok = value.withCString { bson_append_utf8(handle, key, -1, $0, Int32(value.utf8.count)) }
        check(ok, key)
        return self
    }

    @discardableResult
    public func append(_ key: String, int64 value: Int64) -> BSONDocument {
        check(bson_append_int64(handle, key, -1, value), key)
        return self
    }

    @discardableResult
    public func append(_ key: String, int32 value: Int32) -> BSONDocument {
        check(bson_append_int32(handle, key, -1, value), key)
        return self
    }

    @discardableResult
    public func append(_ key: String, bool value: Bool) -> BSONDocument {
        check(bson_append_bool(handle, key, -1, value), key)
        return self
    }

    /// A UTC datetime (milliseconds since the epoch).
    @discardableResult
    public func append(_ key: String, dateMillis value: Int64) -> BSONDocument {
        check(bson_append_date_time(handle, key, -1, value), key)
        return self
    }

    /// Binary data of subtype 4 (UUID): 16 bytes.
    @discardableResult
    public func append(_ key: String, uuid bytes: [UInt8]) -> BSONDocument {
        let ok = bytes.withUnsafeBufferPointer { bson_append_binary(handle, key, -1, BSON_SUBTYPE_UUID, $0.baseAddress, UInt32($0.count)) }
        check(ok, key)
        return self
    }

    @discardableResult
    public func append(_ key: String, document: BSONDocument) -> BSONDocument {
        check(bson_append_document(handle, key, -1, document.handle), key)
        return self
    }

    /// An array: `values` are appended under the keys "0", "1", ….
    @discardableResult
    public func append(_ key: String, array values: [BSONDocument]) -> BSONDocument {
        let array = BSONDocument()
        for (index, value) in values.enumerated() {
            array.append(String(index), document: value)
        }
        check(bson_append_array(handle, key, -1, array.handle), key)
        return self
    }

    /// An array whose elements were appended to `array` under the keys "0", "1", ….
    @discardableResult
    public func append(_ key: String, arrayDocument array: BSONDocument) -> BSONDocument {
        check(bson_append_array(handle, key, -1, array.handle), key)
        return self
    }

    /// An array of strings.
    @discardableResult
    public func append(_ key: String, strings values: [String]) -> BSONDocument {
        let array = BSONDocument()
        for (index, value) in values.enumerated() {
            array.append(String(index), value)
        }
        check(bson_append_array(handle, key, -1, array.handle), key)
        return self
    }

    private func check(_ appended: Bool, _ key: String) {
        // bson_append_* fails only past the 2 GiB document limit or on a key with a NUL:
        // both are programming errors in the code building the document.
        precondition(appended, "BSON document too large or bad key \"\(key)\"")
    }

    // MARK: Reading

    /// The document's fields, in order, decoded into Swift values.
    public func fields() -> BSONFields {
        guard let iterator = paredao_bson_iter_new() else { return BSONFields(elements: []) }
        defer { paredao_bson_iter_free(iterator) }
        guard bson_iter_init(iterator, handle) else { return BSONFields(elements: []) }
        return BSONFields(elements: Self.elements(of: iterator))
    }

    private static func elements(of iterator: OpaquePointer) -> [BSONFields.Element] {
        var elements: [BSONFields.Element] = []
        while bson_iter_next(iterator) {
            let key = String(cString: bson_iter_key(iterator))
            elements.append(BSONFields.Element(key: key, value: value(at: iterator)))
        }
        return elements
    }

    private static func value(at iterator: OpaquePointer) -> BSONValue {
        switch bson_iter_type(iterator) {
        case BSON_TYPE_DOUBLE: return .double(bson_iter_double(iterator))
        case BSON_TYPE_UTF8:
            var length: UInt32 = 0
            guard let text = bson_iter_utf8(iterator, &length) else { return .string("") }
            return .string(text.withMemoryRebound(to: UInt8.self, capacity: Int(length)) {
                String(decoding: UnsafeBufferPointer(start: $0, count: Int(length)), as: UTF8.self)
            })
        case BSON_TYPE_DOCUMENT, BSON_TYPE_ARRAY:
            let isArray = bson_iter_type(iterator) == BSON_TYPE_ARRAY
            guard let child = paredao_bson_iter_new() else { return .unsupported }
            defer { paredao_bson_iter_free(child) }
            guard bson_iter_recurse(iterator, child) else { return .unsupported }
            let elements = elements(of: child)
            return isArray ? .array(elements.map(\.value)) : .document(BSONFields(elements: elements))
        case BSON_TYPE_BINARY:
            var subtype = BSON_SUBTYPE_BINARY
            var length: UInt32 = 0
            var bytes: UnsafePointer<UInt8>?
            bson_iter_binary(iterator, &subtype, &length, &bytes)
            guard let bytes else { return .binary([]) }
            return .binary(Array(UnsafeBufferPointer(start: bytes, count: Int(length))))
        case BSON_TYPE_BOOL: return .bool(bson_iter_bool(iterator))
        case BSON_TYPE_DATE_TIME: return .date(millis: bson_iter_date_time(iterator))
        case BSON_TYPE_NULL: return .null
        case BSON_TYPE_INT32: return .int32(bson_iter_int32(iterator))
        case BSON_TYPE_INT64: return .int64(bson_iter_int64(iterator))
        default: return .unsupported
        }
    }
}

/// A decoded BSON value. Types the store never writes come back as `unsupported`.
public enum BSONValue: Equatable, Sendable {
    case double(Double)
    case string(String)
    case document(BSONFields)
    case array([BSONValue])
    case binary([UInt8])
    case bool(Bool)
    case date(millis: Int64)
    case null
    case int32(Int32)
    case int64(Int64)
    case unsupported

    /// An integer of either width.
    public var integer: Int64? {
        switch self {
        case .int32(let value): Int64(value)
        case .int64(let value): value
        default: nil
        }
    }
}

/// A document's fields in order; `subscript` finds the first field of a name.
public struct BSONFields: Equatable, Sendable {
    public struct Element: Equatable, Sendable {
        public var key: String
        public var value: BSONValue

        public init(key: String, value: BSONValue) {
            self.key = key
            self.value = value
        }
    }

    public var elements: [Element]

    public init(elements: [Element]) {
        self.elements = elements
    }

    public subscript(key: String) -> BSONValue? {
        elements.first { $0.key == key }?.value
    }
}
