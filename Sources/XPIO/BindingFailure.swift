import Runtime

/// Why a binding that checks its own arguments did not succeed: an
/// argument error, which only the Lua edge can have (it names Lua's
/// argument numbers, from the spec's `@name`), or the runtime's failure,
/// passed on as it was. The runtime's `Failure` holds only what the
/// runtime itself finds.
///
/// A spec binding that passes `@name` is a call of one such binding
/// (Bindings.swift); the generated body catches this type for it.
enum BindingFailure: Error {
    /// What the runtime answered.
    case runtime(Failure)
    /// A Lua argument error (raised, not returned): the argument's number
    /// (self counts) and the reason.
    case badArgument(CInt, StaticString)
}
