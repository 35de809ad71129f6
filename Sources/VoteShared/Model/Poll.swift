import Foundation

/// One person on the wall ("emparedado").
public struct Participant: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var photoUrl: String

    public init(id: String, name: String, photoUrl: String) {
        self.id = id
        self.name = name
        self.photoUrl = photoUrl
    }
}

/// The poll being voted on: an id, a title and 2 or 3 participants.
public struct Poll: Codable, Sendable, Equatable {
    public var id: String
    public var title: String
    public var participants: [Participant]

    public init(id: String, title: String, participants: [Participant]) throws(ConfigurationError) {
        self.id = id
        self.title = title
        self.participants = participants
        try validate()
    }

    /// Loads and validates a poll definition file (JSON).
    public static func load(from path: String) throws(ConfigurationError) -> Poll {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ConfigurationError(key: "PAREDAO_POLL_FILE", message: "cannot read \(path): \(error.localizedDescription)")
        }
        let poll: Poll
        do {
            poll = try JSONDecoder().decode(Poll.self, from: data)
        } catch {
            throw ConfigurationError(key: "PAREDAO_POLL_FILE", message: "\(path) is not a valid poll definition: \(error)")
        }
        try poll.validate()
        return poll
    }

    /// Whether `text` may be a poll or participant id: 1–64 characters of a-z, 0-9, - and _
    /// (safe as a MongoDB field name and in a URL).
    public static func isValidID(_ text: some StringProtocol) -> Bool {
        (1...64).contains(text.utf8.count)
            && text.utf8.allSatisfy { $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 122) }
    }

    /// The index of the participant with `id`, if any.
    public func participantIndex(of id: some StringProtocol) -> Int? {
        participants.firstIndex { $0.id == id }
    }

    private func validate() throws(ConfigurationError) {
        guard (2...3).contains(participants.count) else {
            throw ConfigurationError(key: "PAREDAO_POLL_FILE", message: "a paredão has 2 or 3 participants, found \(participants.count)")
        }
        guard Set(participants.map(\.id)).count == participants.count else {
            throw ConfigurationError(key: "PAREDAO_POLL_FILE", message: "participant ids must be unique")
        }
        for text in [id] + participants.map(\.id) {
            guard Self.isValidID(text) else {
                throw ConfigurationError(key: "PAREDAO_POLL_FILE", message: "ids use 1–64 characters of a-z, 0-9, - and _: \"\(text)\"")
            }
        }
    }
}
