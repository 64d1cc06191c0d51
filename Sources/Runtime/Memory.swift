import CSystem

/// A growable array of plain values (no references to count) in malloc'd
/// memory, for the task queue's tables. Swift's own arrays trap when an
/// allocation fails (malloc answering NULL under `ulimit -v`, say), and a
/// trap is a crash; growing one of these fails with ENOMEM instead, so
/// scheduling a task out of memory answers "Cannot allocate memory".
/// Growth happens only through `reserve` and `grow`, which the queue calls
/// before it changes anything; `append` has the room by then. One owner,
/// which calls `free` (a struct that copies the pointer: never copied
/// into a second owner).
struct FallibleArray<Element> {
    private var base: UnsafeMutablePointer<Element>?
    private(set) var count = 0
    private(set) var capacity = 0

    init() {}

    subscript(index: Int) -> Element {
        get { base![index] }
        nonmutating set { base![index] = newValue }
    }

    var isEmpty: Bool { count == 0 }

    /// Room for `wanted` elements (at least twice the capacity, as an
    /// array's appends grow), or ENOMEM with nothing changed.
    mutating func reserve(_ wanted: Int) throws(Failure) {
        guard wanted > capacity else { return }
        let grown = Swift.max(wanted, 2 * capacity, 16)
        guard let block = realloc(base, grown * MemoryLayout<Element>.stride) else { throw .system(ENOMEM) }
        base = block.bindMemory(to: Element.self, capacity: grown)
        capacity = grown
    }

    /// Adds `element`; the room was reserved before (a precondition: a
    /// trap, never a write past the end).
    mutating func append(_ element: Element) {
        precondition(count < capacity, "FallibleArray.append without room")
        (base! + count).initialize(to: element)
        count += 1
    }

    /// At least `wanted` elements, the new ones `filler`, or ENOMEM.
    mutating func grow(to wanted: Int, filling filler: Element) throws(Failure) {
        try reserve(wanted)
        while count < wanted { append(filler) }
    }

    mutating func remove(at index: Int) {
        for position in index..<(count - 1) { base![position] = base![position + 1] }
        count -= 1
    }

    /// Empties it, keeping the room.
    mutating func removeAll() { count = 0 }

    mutating func free() {
        CSystem.free(base)
        base = nil
        count = 0
        capacity = 0
    }
}

extension FallibleArray where Element: Equatable {
    func firstIndex(of element: Element) -> Int? {
        for index in 0..<count where base![index] == element { return index }
        return nil
    }
}
