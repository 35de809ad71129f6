public import NIOCore
public import ServiceLifecycle

/// A bound listening channel as a `Service`: it serves until graceful shutdown (or
/// cancellation) closes it, and ends when the channel is closed.
public struct ChannelService: Service, CustomStringConvertible {
    public let channel: any Channel
    public let name: String

    public init(_ channel: any Channel, name: String) {
        self.channel = channel
        self.name = name
    }

    public var description: String { name }

    public func run() async throws {
        try await withTaskCancellationOrGracefulShutdownHandler {
            try await channel.closeFuture.get()
        } onCancelOrGracefulShutdown: { [channel] in
            channel.close(promise: nil)
        }
    }
}
