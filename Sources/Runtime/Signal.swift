import CSystem

/// The signals XPIO names (Lua: "TERM" or "SIGTERM"; the spec's `signal` enum).
public enum Signal {
    case HUP, INT, QUIT, ILL, TRAP, ABRT, BUS, FPE, KILL, USR1, SEGV, USR2, PIPE, ALRM, TERM
    case CHLD, CONT, STOP, TSTP, TTIN, TTOU, URG, XCPU, XFSZ, VTALRM, PROF, WINCH, IO, PWR, SYS

    public var number: CInt {
        switch self {
        case .HUP: return SIGHUP
        case .INT: return SIGINT
        case .QUIT: return SIGQUIT
        case .ILL: return SIGILL
        case .TRAP: return SIGTRAP
        case .ABRT: return SIGABRT
        case .BUS: return SIGBUS
        case .FPE: return SIGFPE
        case .KILL: return SIGKILL
        case .USR1: return SIGUSR1
        case .SEGV: return SIGSEGV
        case .USR2: return SIGUSR2
        case .PIPE: return SIGPIPE
        case .ALRM: return SIGALRM
        case .TERM: return SIGTERM
        case .CHLD: return SIGCHLD
        case .CONT: return SIGCONT
        case .STOP: return SIGSTOP
        case .TSTP: return SIGTSTP
        case .TTIN: return SIGTTIN
        case .TTOU: return SIGTTOU
        case .URG: return SIGURG
        case .XCPU: return SIGXCPU
        case .XFSZ: return SIGXFSZ
        case .VTALRM: return SIGVTALRM
        case .PROF: return SIGPROF
        case .WINCH: return SIGWINCH
        case .IO: return SIGIO
        case .PWR: return SIGPWR
        case .SYS: return SIGSYS
        }
    }

    /// The highest signal number (SIGRTMAX on Linux).
    public static let highest: CInt = 64
}
