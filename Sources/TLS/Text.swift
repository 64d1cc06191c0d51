import COpenSSL

/// Writes a NUL-terminated message into a caller's C buffer, truncating to
/// fit. Messages are built from static prefixes and OpenSSL's C strings:
/// Embedded Swift has no String formatting to lean on (and C's snprintf is
/// variadic, which Swift cannot call), so this is the engine's one way of
/// composing text.
struct Text {
    let buffer: UnsafeMutablePointer<CChar>
    let size: Int
    private(set) var length = 0

    /// Starts an empty message in buffer[size]; a zero size writes nothing.
    init(_ buffer: UnsafeMutablePointer<CChar>, _ size: Int) {
        self.buffer = buffer
        self.size = size
        if size > 0 { buffer[0] = 0 }
    }

    mutating func append(_ text: StaticString) {
        text.withUTF8Buffer { bytes in
            for byte in bytes { put(CChar(bitPattern: byte)) }
        }
    }

    /// Appends a C string; NULL appends nothing.
    mutating func append(_ text: UnsafePointer<CChar>?) {
        guard var p = text else { return }
        while p.pointee != 0 {
            put(p.pointee)
            p += 1
        }
    }

    private mutating func put(_ c: CChar) {
        guard length + 1 < size else { return }
        buffer[length] = c
        length += 1
        buffer[length] = 0
    }
}

/// A malloc'd copy of a C string, freed with `free`; nil for NULL (or out of memory).
func duplicate(_ s: UnsafePointer<CChar>?) -> UnsafeMutablePointer<CChar>? {
    guard let s else { return nil }
    return strdup(s)
}
