/// The generator's entry point: one emitter per output, each a pure
/// function of the spec (deterministic: no dates, no hash order).
public enum Generator {
    public static let modes = ["glue", "glue-c", "docs", "types", "conformance", "fuzz"]

    /// The text of output `mode`, or nil for an unknown mode.
    public static func emit(_ mode: String, spec: Spec) -> String? {
        switch mode {
        case "glue": return GlueEmitter(spec: spec).emit()
        case "glue-c": return CGlueEmitter(spec: spec).emit()
        case "docs": return DocsEmitter(spec: spec).emit()
        case "types": return TypesEmitter(spec: spec).emit()
        case "conformance": return ConformanceEmitter(spec: spec).emit()
        case "fuzz": return FuzzCasesEmitter(spec: spec).emit()
        default: return nil
        }
    }
}
