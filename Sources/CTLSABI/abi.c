/* The ABI is the header (include/xpio_tls_abi.h); SwiftPM wants a source. */
#include "xpio_tls_abi.h"
