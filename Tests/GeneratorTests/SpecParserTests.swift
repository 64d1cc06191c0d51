import Testing
@testable import GeneratorCore

/// The spec format's rules, each with the error it gives (naming the line).
@Suite struct SpecParserTests {
    func parse(_ text: String) throws -> Spec {
        try SpecParser.parse(files: [("object tqueue xpio.tqueue: TaskQueue = xpio.tqueue()\n" + text, "Spec/test.spec")])
    }

    func error(_ text: String) -> String {
        do {
            _ = try parse(text)
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test func typesParseIntoTheModel() throws {
        let spec = try parse("""
            function f(a: cstring[], b: table<name, cstring>?, c: integer|signal?, d: size? = 4) -> string|nil = try F.f()
            enum signal: Signal prefix SIG
              | HUP | INT
            """)
        let params = spec.entries[0].params
        #expect(params[0].type == .array(.cstring))
        #expect(params[1].type == .map(.name, .cstring) && params[1].optional)
        #expect(params[2].type == .union([.integer, .enumeration("signal")]) && params[2].optional)
        #expect(params[3].type == .size && params[3].defaultValue == "4")
        #expect(spec.entries[0].results.positions == [.union([.string, .nilValue])])
        #expect(spec.enums[0].cases.map(\.name) == ["HUP", "INT"])
        #expect(spec.enums[0].prefix == "SIG")
    }

    @Test func errorsNameTheLine() {
        #expect(error("function f(a: strng) -> true = F.f()") == "Spec/test.spec:2: error: unknown type `strng`")
        #expect(error("function f() -> true") .hasPrefix("Spec/test.spec:2: error: an entry names what implements it"))
        #expect(error("blocking tqueue:f() -> true = F.f()") == "Spec/test.spec:2: error: a blocking entry names its when_ partner: [when_NAME]")
        #expect(error("blocking tqueue:f() -> true [when_f] = F.f()")
            == "Spec/test.spec:2: error: blocking `f` names `when_f`, which is not a when entry of `tqueue`")
        #expect(error("function f(a: integer?, b: integer) -> true = F.f()") == "Spec/test.spec:2: error: a required parameter follows an optional one")
        #expect(error("method nothing:f() -> true = F.f()") == "Spec/test.spec:2: error: unknown object kind `nothing`")
        #expect(error("function f(value: option.value) -> true = F.f()").contains("needs an earlier parameter `option`"))
        #expect(error("  | stray") == "Spec/test.spec:2: error: `|` lines belong to an enum or a record")
        #expect(error("function f(a: integer) -> true = F.f(a, at: @b)")
            == "Spec/test.spec:2: error: `@b` names no parameter (`@name` is a parameter's argument number)")
        #expect(throws: SpecError.self) { try SpecParser.parse(files: [("    doc without a header", "Spec/a.spec")]) }
    }

    /// A blocking call waits with its when_ partner's body on its own checked
    /// arguments: the partner takes, after its task, the blocking entry's
    /// first parameters as they are.
    @Test func aWhenPartnerTakesTheBlockingEntrysFirstParameters() throws {
        let blocking = "blocking tqueue:w(what: string, max: size? = 4) -> true [when_w] = try this.w(what)\n"
        let spec = try parse(blocking + "when tqueue:when_w(task: task, what: string) -> true [read] = try this.t(what)")
        let glue = CGlueEmitter(spec: spec).emit()
        #expect(glue.contains("static int32_t wait_tqueue_w(xpio_call *call, xpio_args *args) {"))
        #expect(glue.contains("return xpio_body_tqueue_when_w(call, a->self, a->what);"))
        #expect(glue.contains(".wait_target = wait_tqueue_w"))
        let message = "Spec/test.spec:2: error: `when_w` takes, after its task, the first parameters of `w` as they are"
        #expect(error(blocking + "when tqueue:when_w(task: task, max: size? = 4) -> true [read] = try this.t()") == message)
        #expect(error(blocking + "when tqueue:when_w(task: task, what: cstring) -> true [read] = try this.t()") == message)
    }

    @Test func wholeNamesARequiredParameterOfAnEntryCountingBytes() throws {
        let when = "\nwhen tqueue:when_w(task: task) -> true [write] = try this.w()"
        let spec = try parse("blocking tqueue:w(data: string) -> integer [when_w, whole data] = try this.w(data.bytes)" + when)
        #expect(spec.entries[0].whenPartner == "when_w" && spec.entries[0].whole == "data")
        let function = spec.allFunctions.first { $0.qualifiedName == "tqueue:w" }!
        #expect(CGlueEmitter(spec: spec).entryLiteral(function).contains(".whole = 1"))
        // Its body starts where earlier tries stopped and says what remains.
        let resumed = try parse("blocking tqueue:w(data: string) -> integer [when_w, whole data] = try this.w(data, progress)" + when)
        let glue = GlueEmitter(spec: resumed).emit()
        #expect(glue.contains("let progress = c.progress") && glue.contains("return c.answerMoved(try this.w(data, progress))"))
        #expect(error("blocking tqueue:w(data: string?) -> integer [when_w, whole data] = try this.w()" + when)
            == "Spec/test.spec:2: error: `whole data` names no required parameter")
        #expect(error("blocking tqueue:w(data: string) -> true [when_w, whole data] = try this.w()" + when)
            == "Spec/test.spec:2: error: a `whole` entry returns the bytes written: `-> integer`")
        #expect(error("blocking tqueue:w(data: string) -> integer [when_w, all data] = try this.w()" + when)
            .contains("may say `whole PARAM`"))
    }

    @Test func atNameIsTheArgumentNumberSelfCounting() throws {
        let spec = try parse("method tqueue:f(a: integer, b: integer) -> true = try F.f(b, at: @b, first: @a, me: @self)")
        let function = spec.allFunctions.first { $0.qualifiedName == "tqueue:f" }!
        let glue = GlueEmitter(spec: spec)
        #expect(glue.argumentPositions(in: "F.f(b, at: @b, first: @a, me: @self)", function) == "F.f(b, at: 3, first: 2, me: 1)")
    }

    @Test func theProjectSpecParses() throws {
        let spec = try SpecParser.parse(directory: #filePath.replacingOccurrences(of: "Tests/GeneratorTests/SpecParserTests.swift", with: "Spec"))
        #expect(spec.kinds.map(\.name).contains("socket"))
        #expect(spec.allFunctions.contains { $0.qualifiedName == "socket:try_read" })
    }
}
