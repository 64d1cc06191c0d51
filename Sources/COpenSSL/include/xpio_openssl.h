/*
 * OpenSSL 3 for the TLS engine, to the non-deprecated 3.0 API only
 * (OPENSSL_API_COMPAT=30000 and OPENSSL_NO_DEPRECATED come from
 * Package.swift), and what Swift cannot import by itself: OpenSSL's macros
 * (as functions), its composite constants (as `static const`, which Swift
 * imports as constants; macros with casts it does not), and two focused
 * extractors (a GENERAL_NAME's text, a memory BIO's bytes) whose unions and
 * out-pointers are safer in C. The engine's logic stays in Sources/TLS.
 *
 * The libc headers the engine needs come along too, so Sources/TLS imports
 * this module alone.
 */
#ifndef XPIO_OPENSSL_H
#define XPIO_OPENSSL_H

#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/bio.h>
#include <openssl/evp.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <arpa/inet.h>
#include <sys/stat.h>

/* Constants whose macros carry casts or ORs. */
static const uint64_t XPIO_SSL_OP_NO_RENEGOTIATION = SSL_OP_NO_RENEGOTIATION;
static const uint64_t XPIO_SSL_OP_NO_TICKET = SSL_OP_NO_TICKET;
static const uint64_t XPIO_SSL_OP_IGNORE_UNEXPECTED_EOF = SSL_OP_IGNORE_UNEXPECTED_EOF;
static const long XPIO_SSL_MODES = SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER;
static const unsigned long XPIO_XN_FLAG_RFC2253 = XN_FLAG_RFC2253;
static const int XPIO_SSL_R_UNEXPECTED_EOF_WHILE_READING = SSL_R_UNEXPECTED_EOF_WHILE_READING;

/* SSL_CTX_ctrl and SSL_ctrl macros. */
long xpio_ssl_ctx_set_mode(SSL_CTX *ctx, long mode);
int xpio_ssl_ctx_set_min_proto_version(SSL_CTX *ctx, int version);
int xpio_ssl_ctx_set_max_proto_version(SSL_CTX *ctx, int version);
long xpio_ssl_ctx_set_session_cache_client(SSL_CTX *ctx);
int xpio_ssl_ctx_set_servername_callback(SSL_CTX *ctx, int (*callback)(SSL *ssl, int *alert, void *arg), void *arg);
int xpio_ssl_set_tlsext_host_name(SSL *ssl, const char *name);

/* BIO macros. */
void xpio_bio_set_retry_read(BIO *bio);
void xpio_bio_set_retry_write(BIO *bio);
void xpio_bio_clear_retry_flags(BIO *bio);
/* BIO_get_mem_data: the bytes written into a memory BIO (not NUL-terminated). */
long xpio_bio_mem_data(BIO *bio, const char **data);

/* The engine's BIO_METHOD, made once per process (under a lock: two Lua
 * states on two threads may open their first connection at once) from the
 * engine's callbacks. NULL when OpenSSL is out of memory. */
const BIO_METHOD *xpio_bio_method(int (*write)(BIO *, const char *, int),
                                  int (*read)(BIO *, char *, int),
                                  long (*ctrl)(BIO *, int, long, void *),
                                  int (*create)(BIO *),
                                  int (*destroy)(BIO *));

/* STACK_OF macros (inline functions over casts). */
int xpio_sk_x509_num(const STACK_OF(X509) *stack);
X509 *xpio_sk_x509_value(const STACK_OF(X509) *stack, int index);
int xpio_sk_general_name_num(const GENERAL_NAMES *names);
void xpio_general_names_free(GENERAL_NAMES *names);

/* One subjectAltName entry as text into buffer[size] (NUL-terminated):
 * "DNS:name", "IP:127.0.0.1", "IP:::1", "email:...", "URI:...". Answers its
 * length, or -1 for a kind XPIO does not show (or one that does not fit). */
int xpio_general_name_text(const GENERAL_NAMES *names, int index, char *buffer, size_t size);

#endif
