import CSystem

/// Turns host names into addresses with `getaddrinfo`.
///
/// `localhost` and names under `.localhost` are loopback by RFC 6761 and
/// never leave the process: 127.0.0.1 and ::1, whatever /etc/hosts says.
public enum Resolver {
    /// The address an endpoint names, resolving a name now (blocking the
    /// caller while getaddrinfo runs); the first one of `family` (any
    /// family when nil).
    static func resolveNow(_ endpoint: Endpoint, family: AddressFamily?, passive: Bool) throws(Failure) -> Address {
        switch endpoint {
        case .address(let address): return address
        case .name(let host, let service):
            var first: Address?
            try lookup(host: host, service: service, family: family, passive: passive) { address in
                if first == nil { first = address }
            }
            guard let first else { throw .resolution(EAI_NONAME) }
            return first
        }
    }

    /// Calls `found` with each address getaddrinfo gives for `host` and
    /// `service` (either may be empty), in its order, without duplicates.
    static func lookup(host: UnsafeRawBufferPointer, service: UnsafeRawBufferPointer, family: AddressFamily?,
                       passive: Bool, _ found: (Address) -> Void) throws(Failure) {
        var hints = addrinfo()
        hints.ai_family = family.map { $0.domain } ?? AF_UNSPEC
        hints.ai_flags = passive ? AI_PASSIVE : 0
        hints.ai_socktype = CInt(SOCK_STREAM.rawValue)
        let loopback = isLocalhost(host)
        if loopback && family == nil {
            try lookup(host: host, service: service, family: .inet6, passive: passive, found)
            try lookup(host: host, service: service, family: .inet, passive: passive, found)
            return
        }
        let six: StaticString = "::1", four: StaticString = "127.0.0.1"
        let hostBytes = loopback ? (family == .inet6 ? six.utf8Buffer : four.utf8Buffer) : host
        if loopback { hints.ai_flags |= AI_NUMERICHOST }
        var hostText = [CChar](repeating: 0, count: hostBytes.count + 1)
        for (i, byte) in hostBytes.enumerated() { hostText[i] = CChar(bitPattern: byte) }
        var serviceText = [CChar](repeating: 0, count: service.count + 1)
        for (i, byte) in service.enumerated() { serviceText[i] = CChar(bitPattern: byte) }
        var list: UnsafeMutablePointer<addrinfo>?
        let code = Sys.getaddrinfo(host.isEmpty && !loopback ? nil : hostText, service.isEmpty ? nil : serviceText, &hints, &list)
        guard code == 0 else {
            if code == EAI_SYSTEM { throw Failure.errno(xpio_errno()) }
            throw .resolution(code)
        }
        defer { freeaddrinfo(list) }
        var seen: [Address] = []
        var entry = list
        while let current = entry {
            if let raw = current.pointee.ai_addr, Int(current.pointee.ai_addrlen) <= MemoryLayout<sockaddr_storage>.size {
                var address = Address()
                address.length = current.pointee.ai_addrlen
                withUnsafeMutableBytes(of: &address.storage) { $0.copyMemory(from: UnsafeRawBufferPointer(start: raw, count: Int(current.pointee.ai_addrlen))) }
                if !seen.contains(where: { $0.sameBytes(as: address) }) {
                    seen.append(address)
                    found(address)
                }
            }
            entry = current.pointee.ai_next
        }
    }

    static func isLocalhost(_ host: UnsafeRawBufferPointer) -> Bool {
        let name: StaticString = "localhost"
        func matches(_ bytes: Slice<UnsafeRawBufferPointer>) -> Bool {
            bytes.count == name.utf8CodeUnitCount && zip(bytes, UnsafeRawBufferPointer(name.utf8Buffer)).allSatisfy { ($0 | 0x20) == $1 }
        }
        if matches(host[...]) { return true }
        return host.count > 10 && host[host.count - 10] == UInt8(ascii: ".") && matches(host[(host.count - 9)...])
    }
}

extension Address {
    func sameBytes(as other: Address) -> Bool {
        guard length == other.length else { return false }
        var a = storage, b = other.storage
        return withUnsafeBytes(of: &a) { x in withUnsafeBytes(of: &b) { y in x.prefix(Int(length)).elementsEqual(y.prefix(Int(length))) } }
    }
}

extension StaticString {
    public var utf8Buffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: utf8Start, count: utf8CodeUnitCount) }
}
