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

/// Where a poll is in its life: written as a draft, opened on air, closed on air.
public enum PollState: String, Codable, Sendable, CaseIterable {
    case draft
    case open
    case closed
}

/// A paredão: an id, a title, 2 to 4 participants and its state, with the times it was
/// opened and closed (milliseconds since 1970).
public struct Poll: Codable, Sendable, Equatable {
    public var id: String
    public var title: String
    public var participants: [Participant]
    public var state: PollState
    public var createdAtMillis: Int64?
    public var openedAtMillis: Int64?
    /// Votes accepted at or after this instant do not count (set when the poll is closed).
    public var closedAtMillis: Int64?

    /// The most participants a paredão has.
    public static let participantRange = 2...4
    public static let maxTitleLength = 200
    public static let maxNameLength = 100
    public static let maxPhotoURLLength = 500

    /// A poll checked against ``validationProblem``; without a state it is open and has no
    /// opening or closing time (a poll that accepts every vote, as a definition file gives).
    public init(
        id: String, title: String, participants: [Participant], state: PollState = .open,
        createdAtMillis: Int64? = nil, openedAtMillis: Int64? = nil, closedAtMillis: Int64? = nil
    ) throws(ConfigurationError) {
        self.id = id
        self.title = title
        self.participants = participants
        self.state = state
        self.createdAtMillis = createdAtMillis
        self.openedAtMillis = openedAtMillis
        self.closedAtMillis = closedAtMillis
        if let problem = validationProblem { throw ConfigurationError(key: "poll", message: problem) }
    }

    private enum CodingKeys: String, CodingKey {
        case id, title, participants, state, createdAtMillis, openedAtMillis, closedAtMillis
    }

    /// Decodes a poll; `state` and the times are optional (a definition file has none).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(String.self, forKey: .id)
        title = try container.decode(String.self, forKey: .title)
        participants = try container.decode([Participant].self, forKey: .participants)
        state = try container.decodeIfPresent(PollState.self, forKey: .state) ?? .open
        createdAtMillis = try container.decodeIfPresent(Int64.self, forKey: .createdAtMillis)
        openedAtMillis = try container.decodeIfPresent(Int64.self, forKey: .openedAtMillis)
        closedAtMillis = try container.decodeIfPresent(Int64.self, forKey: .closedAtMillis)
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
        if let problem = poll.validationProblem { throw ConfigurationError(key: "PAREDAO_POLL_FILE", message: problem) }
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

    /// What is wrong with this definition, in one sentence, or `nil` when it is valid:
    /// ids of `[a-z0-9_-]{1,64}`, 2–4 participants with distinct ids, a title and names
    /// that are neither empty nor too long, photos that are paths on this site.
    public var validationProblem: String? {
        guard Self.isValidID(id) else { return "ids use 1–64 characters of a-z, 0-9, - and _: \"\(id.prefix(80))\"" }
        let title = title.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !title.isEmpty, title.count <= Self.maxTitleLength else { return "the title must have 1–\(Self.maxTitleLength) characters" }
        guard Self.participantRange.contains(participants.count) else {
            return "a paredão has 2 to 4 participants, found \(participants.count)"
        }
        guard Set(participants.map(\.id)).count == participants.count else { return "participant ids must be unique" }
        for participant in participants {
            guard Self.isValidID(participant.id) else { return "ids use 1–64 characters of a-z, 0-9, - and _: \"\(participant.id.prefix(80))\"" }
            let name = participant.name.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !name.isEmpty, name.count <= Self.maxNameLength else { return "participant names must have 1–\(Self.maxNameLength) characters" }
            guard Self.isSitePath(participant.photoUrl) else {
                return "a photo is empty or a path on this site (\"/img/…\", at most \(Self.maxPhotoURLLength) characters): \"\(participant.photoUrl.prefix(80))\""
            }
        }
        return nil
    }

    /// Empty (no photo), or `/…` but not `//…` (another host), printable ASCII without
    /// quotes or backslashes: the pages load photos from their own origin only (the CSP's
    /// `img-src 'self'`).
    static func isSitePath(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        if bytes.isEmpty { return true }
        guard bytes.count >= 2, bytes.count <= maxPhotoURLLength, bytes[0] == UInt8(ascii: "/"), bytes[1] != UInt8(ascii: "/") else { return false }
        return bytes.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") && $0 != UInt8(ascii: "'") }
    }
}
