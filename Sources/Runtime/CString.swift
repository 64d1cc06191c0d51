/// `bytes` as a NUL-terminated C string: the one way the runtime hands text
/// it holds as bytes (a Lua string's, part of an address) to libc. The
/// buffer has `capacity` bytes when that is more than the text needs. nil
/// when a byte is NUL: libc would see a shorter string than was given.
func cString<C: Collection>(_ bytes: C, capacity: Int = 0) -> [CChar]? where C.Element == UInt8 {
    var text = [CChar](repeating: 0, count: max(capacity, bytes.count + 1))
    for (index, byte) in bytes.enumerated() {
        guard byte != 0 else { return nil }
        text[index] = CChar(bitPattern: byte)
    }
    return text
}
