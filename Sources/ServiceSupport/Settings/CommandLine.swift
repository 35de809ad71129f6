public import ArgumentParser
import Foundation

extension ParsableArguments {
    /// Parses the process's arguments; `--help` prints the help and exits 0, anything else
    /// that is not a valid invocation prints the error with the usage and exits 2.
    public static func parseOrExit(_ arguments: [String]? = nil) -> Self {
        do {
            return try parse(arguments)
        } catch {
            let message = fullMessage(for: error)
            if exitCode(for: error) == .success {
                writeStandardOutput(message + "\n")
                Foundation.exit(0)
            }
            writeStandardError(message + "\n")
            Foundation.exit(2)
        }
    }
}

/// Reports a setting that cannot be used and exits with status 2, like a bad flag.
public func exitWithSettingError(_ error: any Error, command: String) -> Never {
    writeStandardError("\(command): configuration error: \(error)\nRun \(command) --help to list the settings.\n")
    exit(2)
}

/// Writes text to standard output (help, results).
public func writeStandardOutput(_ text: String) {
    FileHandle.standardOutput.write(Data(text.utf8))
}

/// Writes text to standard error.
public func writeStandardError(_ text: String) {
    FileHandle.standardError.write(Data(text.utf8))
}
