import NIOHTTP1
import VoteShared

/// A connection's peer, worked out once per connection rather than once per request.
struct Peer {
    /// Whether its X-Real-IP / X-Forwarded-For header is believed.
    var isTrustedProxy: Bool
    /// The peer's own network, used when it is not a trusted proxy.
    var network: ClientNetwork?
    /// The peer's address as the socket gave it (for the admin audit log).
    var address: String = ""
}

extension APIApplication {
    /// The client's network: the proxy's header when the peer is a trusted proxy, else the peer.
    func clientNetwork(_ request: APIRequest) -> ClientNetwork? {
        if request.peer.isTrustedProxy {
            if let real = request.headers.first(name: "X-Real-IP"), let network = ClientNetwork(address: real.trimmingSpaces) {
                return network
            }
            if let forwarded = request.headers.first(name: "X-Forwarded-For"),
               let last = forwarded.split(separator: ",").last,
               let network = ClientNetwork(address: last.trimmingSpaces) {
                return network
            }
        }
        return request.peer.network
    }

    /// The client's address as the audit log shows it: the proxy's `X-Real-IP` when the
    /// peer is a trusted proxy and the header is an address, else the peer's own.
    func clientAddress(_ request: APIRequest) -> String {
        if request.peer.isTrustedProxy, let real = request.headers.first(name: "X-Real-IP"), ClientNetwork(address: real.trimmingSpaces) != nil {
            return String(real.trimmingSpaces)
        }
        return request.peer.address
    }

    /// What the API needs to know of a connection's peer address. A peer on the proxy's
    /// unix socket is the local nginx (only processes allowed to open that file reach it);
    /// a TCP peer is trusted only when `PAREDAO_TRUSTED_PROXIES` lists it.
    func peer(address: String?, onProxySocket: Bool = false) -> Peer {
        if onProxySocket { return Peer(isTrustedProxy: true, network: nil, address: "unix") }
        let address = address ?? ""
        return Peer(isTrustedProxy: trustedProxies.contains(address), network: ClientNetwork(address: address), address: address)
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs (header values; no copy, no Foundation).
    var trimmingSpaces: Substring {
        let text = Substring(self)
        let utf8 = text.utf8
        var start = utf8.startIndex
        var end = utf8.endIndex
        while start < end, utf8[start] == 0x20 || utf8[start] == 0x09 { start = utf8.index(after: start) }
        while start < end {
            let last = utf8.index(before: end)
            guard utf8[last] == 0x20 || utf8[last] == 0x09 else { break }
            end = last
        }
        return text[start..<end]
    }
}
