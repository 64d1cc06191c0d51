#ifndef XPIO_TLS_MODULE_H
#define XPIO_TLS_MODULE_H
#include "xpio_tls_abi.h"
/* The engine (Sources/TLS, Swift over OpenSSL): one provider per process. */
const xpio_tls_provider *xpio_tls_engine(void);
#endif
