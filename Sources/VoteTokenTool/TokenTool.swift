import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import VoteShared

/// `paredao-token`: asks the API for proof-of-work challenges, solves them natively and
/// prints one session token per line.
@main
struct TokenTool: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "paredao-token",
        abstract: "Asks VoteAPI for proof-of-work challenges, solves them natively and prints one session token per line.",
        discussion: "Use the tokens as \"Authorization: Bearer <token>\". Exits 1 when fewer tokens than asked could be minted."
    )

    @Option(help: "API base URL") var url = "http://127.0.0.1:8080"
    @Option(help: "how many tokens to mint") var count = 1
    @Option(help: "challenges solved at once") var concurrency = 4
    @Flag(help: "print timing per token on standard error") var verbose = false

    func validate() throws {
        guard count > 0 else { throw ValidationError("--count needs a positive number") }
        guard concurrency > 0 else { throw ValidationError("--concurrency needs a positive number") }
        guard URL(string: url) != nil else { throw ValidationError("--url is not a URL: \(url)") }
    }

    var baseURL: String { url.hasSuffix("/") ? String(url.dropLast()) : url }

    func run() async throws {
        let options = self
        let started = ContinuousClock.now
        var minted = 0
        var failures = 0
        await withTaskGroup(of: Result<String, ToolError>.self) { group in
            var launched = 0
            func launch() {
                guard launched < options.count else { return }
                launched += 1
                group.addTask { await Self.mintOne(options) }
            }
            for _ in 0..<min(options.concurrency, options.count) { launch() }
            for await result in group {
                switch result {
                case .success(let token):
                    FileHandle.standardOutput.write(Data((token + "\n").utf8))
                    minted += 1
                case .failure(let error):
                    failures += 1
                    FileHandle.standardError.write(Data("paredao-token: \(error)\n".utf8))
                    if failures > 10 && minted == 0 { group.cancelAll(); break }
                }
                launch()
            }
        }
        if options.verbose {
            FileHandle.standardError.write(Data("minted \(minted) tokens in \(ContinuousClock.now - started)\n".utf8))
        }
        if minted != options.count { throw ExitCode.failure }
    }

    struct ToolError: Error, CustomStringConvertible {
        var description: String
    }

    static func mintOne(_ options: TokenTool) async -> Result<String, ToolError> {
        do {
            let challengeJSON = try await post(options.baseURL + "/api/v1/challenges", body: nil)
            guard let encoded = challengeJSON["challenge"] as? String, let bytes = Base64URL.decode(encoded) else {
                return .failure(ToolError(description: "unexpected challenge answer: \(challengeJSON)"))
            }
            let difficulty = challengeJSON["difficulty"] as? Int ?? 0
            let counter = ProofOfWork.solve(bytes, difficulty: difficulty)
            let body = #"{"challenge":"\#(encoded)","counter":\#(counter)}"#
            let session = try await post(options.baseURL + "/api/v1/sessions", body: Data(body.utf8))
            guard let token = session["token"] as? String else {
                return .failure(ToolError(description: "unexpected session answer: \(session)"))
            }
            return .success(token)
        } catch let error as ToolError {
            return .failure(error)
        } catch {
            return .failure(ToolError(description: "\(error)"))
        }
    }

    /// POSTs `body`; a `429` is retried after its `Retry-After` (up to 10 times).
    static func post(_ url: String, body: Data?) async throws -> [String: Any] {
        guard let target = URL(string: url) else { throw ToolError(description: "bad URL \(url)") }
        var request = URLRequest(url: target)
        request.httpMethod = "POST"
        if let body {
            request.httpBody = body
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        for _ in 0..<10 {
            let (data, response) = try await URLSession.shared.data(for: request)
            let http = response as? HTTPURLResponse
            let status = http?.statusCode ?? 0
            if status == 429 {
                let wait = (http?.value(forHTTPHeaderField: "Retry-After")).flatMap(Int.init) ?? 1
                try await Task.sleep(for: .seconds(min(max(wait, 1), 30)))
                continue
            }
            guard (200..<300).contains(status), let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw ToolError(description: "\(url) answered \(status): \(String(decoding: data, as: UTF8.self))")
            }
            return object
        }
        throw ToolError(description: "\(url) kept answering 429 (rate limited)")
    }
}
