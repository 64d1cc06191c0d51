import CSystem

/// The files `xpio.fdopen` made non-blocking, with how many of its objects
/// hold each. O_NONBLOCK belongs to the open file, which a duplicate shares
/// with the number it was made from (and with every other duplicate): the
/// object that found the file blocking may close while another fdopen of
/// the same file still reads it, and that one's `try_` calls must not start
/// to block. So the file is made blocking again when the last object that
/// holds it closes, and an fdopen of a file XPIO made non-blocking joins
/// it rather than finding it non-blocking "already".
///
/// A file is known by its device and inode (`fstat`), which every
/// duplicate shares; two separate opens of one file (a tty opened twice)
/// count as one, and the last to close makes its own open blocking again.
enum NonBlockingFiles {
    /// A class, not a struct: every socket has a place for one, where 17
    /// bytes inline (two words and the optional's tag) took the socket to
    /// the next malloc block, 32 bytes per connection pair, for a field
    /// only fdopen'd files fill. A reference is one word.
    final class Key: Equatable {
        let device: UInt64
        let inode: UInt64

        init(device: UInt64, inode: UInt64) {
            self.device = device
            self.inode = inode
        }

        static func == (a: Key, b: Key) -> Bool { a.device == b.device && a.inode == b.inode }
    }

    /// One thread (docs/ARCHITECTURE.md), so no lock.
    nonisolated(unsafe) private static var held: [(key: Key, holders: Int)] = []

    /// An fdopen'd duplicate `fd`, just made non-blocking (`madeNonBlocking`)
    /// or found so: its file's key when the file is XPIO's to make blocking
    /// again at the last close, else nil.
    static func hold(_ fd: CInt, madeNonBlocking: Bool) -> Key? {
        var status = stat()
        guard case .success = Sys.fstat(fd, &status) else {
            // No key, no sharing: the object restores what it changed.
            return madeNonBlocking ? Key(device: UInt64.max, inode: UInt64(fd)) : nil
        }
        let key = Key(device: UInt64(status.st_dev), inode: UInt64(status.st_ino))
        if let index = held.firstIndex(where: { $0.key == key }) {
            held[index].holders += 1
            return held[index].key
        }
        guard madeNonBlocking else { return nil }
        held.append((key, 1))
        return key
    }

    /// An object that held `key` lets go (closed or detached): true when it
    /// was the last, and its file should be made blocking again.
    static func release(_ key: Key) -> Bool {
        guard let index = held.firstIndex(where: { $0.key == key }) else { return true }
        held[index].holders -= 1
        guard held[index].holders == 0 else { return false }
        held.remove(at: index)
        return true
    }
}
