import CLua
import CSystem
import Runtime

/// One call's answer (`xpio_call`, Sources/CLua/include/xpio_glue.h):
/// what generated bodies write their results into. Used by generated code
/// (`Glue.swift`) and the few handwritten bindings only.
///
/// There is no Lua state here, so nothing a body does can raise a Lua
/// error: its arguments were checked in C before it runs (and arrive as
/// its parameters), results are pushed by C after it returns, and failures
/// travel back as a status.
struct Call {
    let raw: UnsafeMutablePointer<xpio_call>

    init(_ raw: UnsafeMutablePointer<xpio_call>) { self.raw = raw }

    // MARK: results
    //
    // Nothing here pushes: `set` fills result slot `position`, and each
    // `answer…` fills the slots a kind of body answers with and returns
    // their count, the status C pushes them by after the body returns.

    func set<T: ResultValue>(_ position: Int32, _ value: T) { value.store(in: xpio_result(raw, position)) }

    /// One result.
    func answer<T: ResultValue>(_ value: T) -> Int32 {
        set(0, value)
        return 1
    }

    /// The `true` of an entry that returns nothing else (`-> true`).
    func answerTrue() -> Int32 { answer(true) }

    /// Stores `object` in the `index`th object C made for this call, as
    /// result `position`.
    func setObject<T: AnyObject>(_ position: Int32, _ index: Int32, _ object: T) {
        xpio_store_object(raw, position, index, Unmanaged.passRetained(object).toOpaque())
    }

    /// Stores `object` as result `position`; when it is one of the objects
    /// given as arguments (`given`: Lua argument numbers and the objects
    /// there), that argument is the result, not a second userdata holding
    /// the same object (whose collection would close it under the first).
    func setObject<T: AnyObject>(_ position: Int32, _ index: Int32, _ object: T, given: [(Int32, UnsafeMutableRawPointer?)]) {
        let pointer = Unmanaged.passUnretained(object).toOpaque()
        for (number, argument) in given where argument == pointer {
            let result = xpio_result(raw, position)!
            result.pointee.tag = Int32(XPIO_ARGUMENT)
            result.pointee.u.index = number
            return
        }
        setObject(position, index, object)
    }

    /// Stores `objects` (all of kind number `kind`) as result `position`, a
    /// list C makes into userdata after the body returns, releasing any it
    /// could not make.
    func setObjects<T: AnyObject>(_ position: Int32, kind: Int32, _ objects: [T]) {
        ObjectList.reserve(objects.count)
        for (index, object) in objects.enumerated() { ObjectList.slots[index] = Unmanaged.passRetained(object).toOpaque() }
        let value = xpio_result(raw, position)!
        value.pointee.tag = Int32(XPIO_OBJECTS)
        value.pointee.count = Int32(objects.count)
        value.pointee.length = Int(kind)
        value.pointee.u.list = UnsafeMutableRawPointer(ObjectList.slots).assumingMemoryBound(to: xpio_value.self)
    }

    /// Where a `whole` entry's try starts: the bytes earlier tries of the
    /// same blocking call moved (0 for a `try_` call).
    var progress: Int64 { raw.pointee.progress }

    /// What a `whole` entry's body answers: the bytes this try moved (its
    /// result) and how many are still to move (the blocking form tries
    /// again until none are).
    func answerMoved(_ moved: Moved) -> Int32 {
        raw.pointee.remaining = moved.remaining
        return answer(Int64(moved.count))
    }

    /// Results of an entry with several alternatives: the value stores itself.
    func answerResults<T: ResultSet>(_ results: T) -> Int32 { results.store(in: self) }

    /// What a when_ body answers: the descriptor to wait on and for what,
    /// or nil (ready at once).
    func answerTarget(_ target: WaitTarget?) -> Int32 {
        let value = xpio_result(raw, 0)!
        guard let target else {
            value.pointee.tag = Int32(XPIO_NIL)
            return 1
        }
        value.pointee.tag = Int32(XPIO_TARGET)
        value.pointee.u.object = Unmanaged.passUnretained(target.descriptor).toOpaque()
        set(1, Int32(target.readiness == .write ? XPIO_WRITABLE : XPIO_READABLE))
        return 2
    }

    /// What `tostring` shows after the metatable's name: a label and a
    /// number, or nothing ("closed").
    func answerSummary(_ summary: (label: StaticString, number: Int64?)?) -> Int32 {
        guard let summary else { return 0 }
        set(0, summary.label)
        guard let number = summary.number else { return 1 }
        set(1, number)
        return 2
    }

    /// The failure as a status for the C glue: results (`nil, message`), a
    /// retry, or an error to raise.
    ///
    /// `retries` is false for entries other than `try_` ones: a would-block
    /// errno (EAGAIN from fork under RLIMIT_NPROC, from a full signal queue)
    /// is then reported as what it is, never as `"retry"`.
    func fail(_ failure: Failure, retries: Bool = true) -> Int32 {
        switch failure {
        case .retry:
            guard retries else { return fail(.system(EAGAIN)) }
            return Int32(XPIO_RETRY)
        case .system(let code):
            raw.pointee.code = code
            return Int32(XPIO_ERRNO)
        case .xpio(let message):
            raw.pointee.message = message.cString
            return Int32(XPIO_MESSAGE)
        case .resolution(let code):
            raw.pointee.message = gai_strerror(code)
            return Int32(XPIO_MESSAGE)
        case .message(let message):
            raw.pointee.message = message.text
            return Int32(XPIO_MESSAGE)
        case .closed(let kind):
            raw.pointee.message = kind.cString
            return Int32(XPIO_CLOSED)
        }
    }

    /// A binding's failure: an argument error to raise, or the runtime's
    /// failure as above.
    func fail(_ failure: BindingFailure, retries: Bool = true) -> Int32 {
        switch failure {
        case .runtime(let failure):
            return fail(failure, retries: retries)
        case .badArgument(let index, let reason):
            raw.pointee.code = index
            raw.pointee.message = reason.cString
            return Int32(XPIO_ARGERROR)
        }
    }
}

/// Reading the object arguments of a body (unretained pointers to the
/// objects of userdata Lua keeps alive for the call; NULL once collected).
enum Arg {
    /// The object, or `.closed(kind)` when its userdata has been collected.
    static func object<T: AnyObject>(_ pointer: UnsafeMutableRawPointer?, _ type: T.Type, _ kind: StaticString) throws(Failure) -> T {
        guard let pointer else { throw .closed(kind) }
        return Unmanaged<T>.fromOpaque(pointer).takeUnretainedValue()
    }

    static func optionalObject<T: AnyObject>(_ pointer: UnsafeMutableRawPointer?, _ type: T.Type) -> T? {
        pointer.map { Unmanaged<T>.fromOpaque($0).takeUnretainedValue() }
    }
}

/// A value of a compound argument, as C checked it (`xpio_item`): the
/// generated readers (Glue.swift) take it apart by its type.
extension xpio_item {
    /// An absent record field or list: what a missing one reads as.
    nonisolated(unsafe) static let absent: xpio_item = {
        var item = xpio_item()
        item.which = -1
        return item
    }()

    /// The value, unless it was left out.
    func ifPresent<T>(_ read: (xpio_item) -> T) -> T? { which < 0 ? nil : read(self) }

    /// A record's field `index` (absent when the record is).
    func field(_ index: Int) -> xpio_item { which < 0 || items == nil ? .absent : items[index] }

    /// An array's elements.
    func list<T>(_ read: (xpio_item) -> T) -> [T] { (0..<Int(count)).map { read(items[$0]) } }

    /// A map's entries (C lists keys and values in turn).
    func pairs<K, V>(_ key: (xpio_item) -> K, _ value: (xpio_item) -> V) -> [(key: K, value: V)] {
        stride(from: 0, to: Int(count), by: 2).map { (key: key(items[$0]), value: value(items[$0 + 1])) }
    }

    func object<T: AnyObject>(_ type: T.Type) -> T? { Arg.optionalObject(object, type) }
}

/// A Lua string argument: bytes that stay valid while the call runs, and
/// NUL-terminated (Lua guarantees it).
struct LuaString {
    let bytes: UnsafeRawBufferPointer
    var cString: UnsafePointer<CChar> { bytes.baseAddress!.assumingMemoryBound(to: CChar.self) }

    init(_ raw: xpio_bytes) { bytes = UnsafeRawBufferPointer(start: raw.bytes, count: raw.length) }

    /// nil for an optional string left out.
    init?(optional raw: xpio_bytes) {
        guard raw.bytes != nil else { return nil }
        self.init(raw)
    }
}

/// A spec enum's Swift type: the generator maps case indexes (spec order)
/// to its cases, so a missing case is a compile error.
protocol SpecEnum {
    init(specCase: Int32)
    var specCase: Int32 { get }
    /// The enum's index in the spec, for results (C names the case).
    static var specIndex: Int32 { get }
}

/// What a body can return as a Lua value: it stores itself in a result
/// slot, which C pushes after the body returns.
protocol ResultValue {
    func store(in value: UnsafeMutablePointer<xpio_value>)
}

extension Bool: ResultValue {
    func store(in value: UnsafeMutablePointer<xpio_value>) {
        value.pointee.tag = Int32(XPIO_BOOLEAN)
        value.pointee.u.integer = self ? 1 : 0
    }
}

extension Int64: ResultValue {
    func store(in value: UnsafeMutablePointer<xpio_value>) {
        value.pointee.tag = Int32(XPIO_INTEGER)
        value.pointee.u.integer = self
    }
}

extension Int: ResultValue {
    func store(in value: UnsafeMutablePointer<xpio_value>) { Int64(self).store(in: value) }
}

extension Int32: ResultValue {
    func store(in value: UnsafeMutablePointer<xpio_value>) { Int64(self).store(in: value) }
}

extension Double: ResultValue {
    func store(in value: UnsafeMutablePointer<xpio_value>) {
        value.pointee.tag = Int32(XPIO_NUMBER)
        value.pointee.u.number = self
    }
}

extension UnsafeRawBufferPointer: ResultValue {
    /// The bytes must stay valid until C has pushed them (after the body
    /// returns): a static buffer, or a Lua string argument.
    func store(in value: UnsafeMutablePointer<xpio_value>) {
        value.pointee.tag = Int32(XPIO_STRING)
        value.pointee.u.string = baseAddress?.assumingMemoryBound(to: CChar.self) ?? ("" as StaticString).cString
        value.pointee.length = count
    }
}

extension StaticString: ResultValue {
    func store(in value: UnsafeMutablePointer<xpio_value>) { utf8Buffer.store(in: value) }
    var cString: UnsafePointer<CChar> { UnsafeRawPointer(utf8Start).assumingMemoryBound(to: CChar.self) }
}

extension Optional: ResultValue where Wrapped: ResultValue {
    func store(in value: UnsafeMutablePointer<xpio_value>) {
        if let self { self.store(in: value) } else { value.pointee.tag = Int32(XPIO_NIL) }
    }
}

extension Address: ResultValue {
    /// Formatted into one of four static buffers, one per result position.
    func store(in value: UnsafeMutablePointer<xpio_value>) {
        let index = Address.nextBuffer
        Address.nextBuffer = (index + 1) % 4
        let buffer = UnsafeMutableRawBufferPointer(rebasing: Address.formatBuffers[(index * 128)..<(index * 128 + 128)])
        UnsafeRawBufferPointer(rebasing: buffer[..<format(into: buffer)]).store(in: value)
    }

    nonisolated(unsafe) static let formatBuffers = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 * 128, alignment: 8)
    nonisolated(unsafe) static var nextBuffer = 0
}

extension OptionValue {
    /// As a `boolean` option's value (what the spec says it is): the
    /// integer the kernel holds is on when it is not 0.
    var asFlag: OptionValue {
        if case .integer(let number) = self { return .flag(number != 0) }
        return self
    }

    /// As an `integer` or `size` option's value.
    var asInteger: OptionValue {
        if case .flag(let flag) = self { return .integer(flag ? 1 : 0) }
        return self
    }
}

extension OptionValue: ResultValue {
    func store(in value: UnsafeMutablePointer<xpio_value>) {
        switch self {
        case .flag(let flag): flag.store(in: value)
        case .integer(let number): number.store(in: value)
        }
    }
}

extension ResultValue where Self: SpecEnum {
    func store(in value: UnsafeMutablePointer<xpio_value>) {
        value.pointee.tag = Int32(XPIO_CASE)
        value.pointee.count = specCase
        value.pointee.length = Int(Self.specIndex)
    }
}

extension Array: ResultValue where Element == Address {
    /// A list of address strings, formatted into a scratch area that lives
    /// until the next list is pushed (C pushes it right after the body).
    func store(in value: UnsafeMutablePointer<xpio_value>) {
        AddressList.reserve(count)
        for (index, address) in enumerated() {
            let text = UnsafeMutableRawBufferPointer(rebasing: AddressList.text[(index * 128)..<(index * 128 + 128)])
            UnsafeRawBufferPointer(rebasing: text[..<address.format(into: text)]).store(in: AddressList.values + index)
        }
        value.pointee.tag = Int32(XPIO_LIST)
        value.pointee.count = Int32(count)
        value.pointee.u.list = AddressList.values
    }
}

/// The scratch area of address lists (`xpio.resolve`'s results).
enum AddressList {
    nonisolated(unsafe) static var capacity = 0
    nonisolated(unsafe) static var values = UnsafeMutablePointer<xpio_value>.allocate(capacity: 1)
    nonisolated(unsafe) static var text = UnsafeMutableRawBufferPointer.allocate(byteCount: 128, alignment: 8)

    static func reserve(_ count: Int) {
        guard count > capacity else { return }
        values.deallocate()
        text.deallocate()
        capacity = count
        values = .allocate(capacity: count)
        values.initialize(repeating: xpio_value(), count: count)
        text = .allocate(byteCount: count * 128, alignment: 8)
    }
}

/// The results of an entry whose spec lists alternatives (`-> A or B, C`):
/// the value knows which one it is and stores its values.
protocol ResultSet {
    func store(in call: Call) -> Int32
}

/// The scratch list of objects (`setObjects`), taken by C right after the body.
enum ObjectList {
    nonisolated(unsafe) static var capacity = 0
    nonisolated(unsafe) static var slots = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: 1)

    static func reserve(_ count: Int) {
        guard count > capacity else { return }
        slots.deallocate()
        capacity = count
        slots = .allocate(capacity: count)
    }
}
