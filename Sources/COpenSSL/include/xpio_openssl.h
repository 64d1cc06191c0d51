/*
 * OpenSSL 3 for the TLS engine, to the non-deprecated 3.0 API only
 * (OPENSSL_API_COMPAT=30000 and OPENSSL_NO_DEPRECATED come from
 * Package.swift), and inline functions for what Swift cannot import:
 * OpenSSL's macros.
 */
#ifndef XPIO_OPENSSL_H
#define XPIO_OPENSSL_H

#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/bio.h>

#endif
