import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import VoteShared

/// `paredao-token`: asks the API for proof-of-work challenges, solves them natively and
/// prints one session token per line.
@main
enum TokenTool {
    struct Options {
        var baseURL = "http://127.0.0.1:8080"
        var count = 1
        var concurrency = 4
        var verbose = false
    }

    static let usage = """
        Usage: paredao-token [--url URL] [--count N] [--concurrency C] [--verbose]

        Asks VoteAPI for proof-of-work challenges, solves them natively and prints one session
        token per line on standard output (use them as "Authorization: Bearer <token>").

          --url URL          API base URL (default http://127.0.0.1:8080)
          --count N          how many tokens to mint (default 1)
          --concurrency C    challenges solved at once (default 4)
          --verbose          print timing per token on standard error

        """

    static func main() async {
        let options: Options
        do {
            options = try parse(Array(CommandLine.arguments.dropFirst()))
        } catch {
            FileHandle.standardError.write(Data("paredao-token: \(error)\n\n\(usage)".utf8))
            exit(2)
        }
        let started = ContinuousClock.now
        var minted = 0
        var failures = 0
        await withTaskGroup(of: Result<String, ToolError>.self) { group in
            var launched = 0
            func launch() {
                guard launched < options.count else { return }
                launched += 1
                group.addTask { await mintOne(options) }
            }
            for _ in 0..<min(options.concurrency, options.count) { launch() }
            for await result in group {
                switch result {
                case .success(let token):
                    writeStandardOutput(token + "\n")
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
        exit(minted == options.count ? 0 : 1)
    }

    struct ToolError: Error, CustomStringConvertible {
        var description: String
    }

    static func parse(_ arguments: [String]) throws(ToolError) -> Options {
        var options = Options()
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "-h", "--help":
                writeStandardOutput(usage)
                exit(0)
            case "--url":
                guard let value = iterator.next() else { throw ToolError(description: "--url needs a value") }
                options.baseURL = value.hasSuffix("/") ? String(value.dropLast()) : value
            case "--count":
                guard let value = iterator.next().flatMap(Int.init), value > 0 else { throw ToolError(description: "--count needs a positive number") }
                options.count = value
            case "--concurrency":
                guard let value = iterator.next().flatMap(Int.init), value > 0 else { throw ToolError(description: "--concurrency needs a positive number") }
                options.concurrency = value
            case "--verbose":
                options.verbose = true
            default:
                throw ToolError(description: "unknown argument \(argument)")
            }
        }
        return options
    }

    static func mintOne(_ options: Options) async -> Result<String, ToolError> {
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

    static func post(_ url: String, body: Data?) async throws -> [String: Any] {
        guard let target = URL(string: url) else { throw ToolError(description: "bad URL \(url)") }
        var request = URLRequest(url: target)
        request.httpMethod = "POST"
        if let body {
            request.httpBody = body
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard (200..<300).contains(status), let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ToolError(description: "\(url) answered \(status): \(String(decoding: data, as: UTF8.self))")
        }
        return object
    }
}
