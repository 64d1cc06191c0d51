import Foundation
import Testing
@testable import GeneratorCore

/// Every output of the generator for a small spec that uses every construct
/// of the format (Reference/Spec), compared with the committed expected
/// output (Reference/Expected), the way swift-openapi-generator's reference
/// tests work: a change to an emitter shows up as a reviewable diff.
/// `XPIO_UPDATE_REFERENCES=1 swift test --filter ReferenceTests` rewrites
/// the expected files after an intended change.
@Suite struct ReferenceTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Reference").path

    @Test(arguments: Generator.modes)
    func outputMatchesTheReference(_ mode: String) throws {
        let spec = try SpecParser.parse(directory: Self.root + "/Spec")
        let text = try #require(Generator.emit(mode, spec: spec))
        let path = Self.root + "/Expected/\(mode).txt"
        if ProcessInfo.processInfo.environment["XPIO_UPDATE_REFERENCES"] == "1" {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        }
        let expected = try String(contentsOfFile: path, encoding: .utf8)
        guard text != expected else { return }
        let actual = NSTemporaryDirectory() + "xpio-reference-\(mode).txt"
        try text.write(toFile: actual, atomically: true, encoding: .utf8)
        let diff = Foundation.Process()
        diff.executableURL = URL(fileURLWithPath: "/usr/bin/diff")
        diff.arguments = ["-u", path, actual]
        let pipe = Pipe()
        diff.standardOutput = pipe
        try diff.run()
        diff.waitUntilExit()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        Issue.record("the \(mode) output differs from Reference/Expected/\(mode).txt:\n\(output)")
    }

    /// The reference spec really uses what it is meant to cover.
    @Test func theReferenceSpecCoversTheFormat() throws {
        let spec = try SpecParser.parse(directory: Self.root + "/Spec")
        let entries = spec.entries
        #expect(entries.contains { $0.kind == .blocking } && entries.contains { $0.kind == .when })
        #expect(entries.contains { $0.binding == .native } && entries.contains { $0.binding == .pending })
        #expect(entries.contains { $0.results.alternatives.count > 1 })
        #expect(entries.contains { $0.params.contains { if case .valueOf = $0.type { return true } else { return false } } })
        #expect(entries.contains { $0.results.positions.contains { if case .valueOf = $0 { return true } else { return false } } })
        #expect(entries.contains { if case .swift(let text) = $0.binding { return text.contains("@") } else { return false } })
        #expect(!spec.records.isEmpty && spec.enums.contains { $0.cases.contains { $0.valueType != nil } })
    }
}
