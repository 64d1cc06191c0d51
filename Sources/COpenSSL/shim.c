/* OpenSSL's macros as functions, for Sources/TLS (see xpio_openssl.h). */
#include "xpio_openssl.h"
#include <pthread.h>
#include <stdio.h>

long xpio_ssl_ctx_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }
int xpio_ssl_ctx_set_min_proto_version(SSL_CTX *ctx, int version) { return (int)SSL_CTX_set_min_proto_version(ctx, version); }
int xpio_ssl_ctx_set_max_proto_version(SSL_CTX *ctx, int version) { return (int)SSL_CTX_set_max_proto_version(ctx, version); }
/* Client sessions go to the engine's own cache (SessionCache.swift), by host:
 * OpenSSL's internal store is for servers' lookups. */
long xpio_ssl_ctx_set_session_cache_client(SSL_CTX *ctx) {
    return SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
}

int xpio_ssl_ctx_set_servername_callback(SSL_CTX *ctx, int (*callback)(SSL *, int *, void *), void *arg) {
    if (!SSL_CTX_set_tlsext_servername_callback(ctx, callback)) return 0;
    return (int)SSL_CTX_set_tlsext_servername_arg(ctx, arg);
}

int xpio_ssl_set_tlsext_host_name(SSL *ssl, const char *name) { return (int)SSL_set_tlsext_host_name(ssl, name); }

void xpio_bio_set_retry_read(BIO *bio) { BIO_set_retry_read(bio); }
void xpio_bio_set_retry_write(BIO *bio) { BIO_set_retry_write(bio); }
void xpio_bio_clear_retry_flags(BIO *bio) { BIO_clear_retry_flags(bio); }
long xpio_bio_mem_data(BIO *bio, const char **data) {
    char *p = NULL;
    long n = BIO_get_mem_data(bio, &p);
    *data = p;
    return n;
}

static pthread_mutex_t method_lock = PTHREAD_MUTEX_INITIALIZER;
static BIO_METHOD *method;

const BIO_METHOD *xpio_bio_method(int (*write)(BIO *, const char *, int),
                                  int (*read)(BIO *, char *, int),
                                  long (*ctrl)(BIO *, int, long, void *),
                                  int (*create)(BIO *),
                                  int (*destroy)(BIO *)) {
    pthread_mutex_lock(&method_lock);
    if (method == NULL) {
        int index = BIO_get_new_index();
        BIO_METHOD *m = index < 0 ? NULL : BIO_meth_new(index | BIO_TYPE_SOURCE_SINK, "xpio socket");
        if (m != NULL && (!BIO_meth_set_write(m, write) || !BIO_meth_set_read(m, read) ||
                          !BIO_meth_set_ctrl(m, ctrl) || !BIO_meth_set_create(m, create) ||
                          !BIO_meth_set_destroy(m, destroy))) {
            BIO_meth_free(m);
            m = NULL;
        }
        method = m;   /* kept for the life of the process (the module is nodelete) */
    }
    pthread_mutex_unlock(&method_lock);
    return method;
}

int xpio_sk_x509_num(const STACK_OF(X509) *stack) { return sk_X509_num(stack); }
X509 *xpio_sk_x509_value(const STACK_OF(X509) *stack, int index) { return sk_X509_value(stack, index); }
int xpio_sk_general_name_num(const GENERAL_NAMES *names) { return sk_GENERAL_NAME_num(names); }
void xpio_general_names_free(GENERAL_NAMES *names) { GENERAL_NAMES_free(names); }

/* Copies prefix then the string's bytes; -1 if it does not fit. */
static int put(char *buffer, size_t size, const char *prefix, const unsigned char *data, size_t length) {
    size_t p = strlen(prefix);
    if (p + length + 1 > size) return -1;
    memcpy(buffer, prefix, p);
    memcpy(buffer + p, data, length);
    buffer[p + length] = 0;
    return (int)(p + length);
}

int xpio_general_name_text(const GENERAL_NAMES *names, int index, char *buffer, size_t size) {
    const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, index);
    if (name == NULL) return -1;
    switch (name->type) {
    case GEN_DNS:
        return put(buffer, size, "DNS:", ASN1_STRING_get0_data(name->d.dNSName),
                   (size_t)ASN1_STRING_length(name->d.dNSName));
    case GEN_EMAIL:
        return put(buffer, size, "email:", ASN1_STRING_get0_data(name->d.rfc822Name),
                   (size_t)ASN1_STRING_length(name->d.rfc822Name));
    case GEN_URI:
        return put(buffer, size, "URI:", ASN1_STRING_get0_data(name->d.uniformResourceIdentifier),
                   (size_t)ASN1_STRING_length(name->d.uniformResourceIdentifier));
    case GEN_IPADD: {
        const unsigned char *ip = ASN1_STRING_get0_data(name->d.iPAddress);
        int length = ASN1_STRING_length(name->d.iPAddress);
        char text[INET6_ADDRSTRLEN];
        int family = length == 4 ? AF_INET : length == 16 ? AF_INET6 : 0;
        if (family == 0 || inet_ntop(family, ip, text, sizeof text) == NULL) return -1;
        return put(buffer, size, "IP:", (const unsigned char *)text, strlen(text));
    }
    default:
        return -1;
    }
}
