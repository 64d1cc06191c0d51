// The TLS engine: to be written (Sources/CTLSABI/include/xpio_tls_abi.h is its contract).
