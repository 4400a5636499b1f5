/* SHA-256 and random bytes through OpenSSL's libcrypto. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "ragbox/common.h"

enum rb_status rb_sha256_init(struct rb_sha256 *h)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return RB_ERR_NOMEM;
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return RB_ERR_CRYPTO;
    }
    h->ctx = ctx;
    return RB_OK;
}

enum rb_status rb_sha256_update(struct rb_sha256 *h, const void *data, size_t len)
{
    if (!h->ctx)
        return RB_ERR_INVALID;
    return EVP_DigestUpdate(h->ctx, data, len) == 1 ? RB_OK : RB_ERR_CRYPTO;
}

enum rb_status rb_sha256_final(struct rb_sha256 *h, uint8_t out[RB_SHA256_LEN])
{
    if (!h->ctx)
        return RB_ERR_INVALID;
    unsigned int n = 0;
    int ok = EVP_DigestFinal_ex(h->ctx, out, &n);
    EVP_MD_CTX_free(h->ctx);
    h->ctx = NULL;
    return ok == 1 && n == RB_SHA256_LEN ? RB_OK : RB_ERR_CRYPTO;
}

void rb_sha256_abort(struct rb_sha256 *h)
{
    if (h && h->ctx) {
        EVP_MD_CTX_free(h->ctx);
        h->ctx = NULL;
    }
}

enum rb_status rb_sha256(const void *data, size_t len, uint8_t out[RB_SHA256_LEN])
{
    unsigned int n = 0;
    return EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) == 1 ? RB_OK : RB_ERR_CRYPTO;
}

void rb_hex_encode(const uint8_t *bytes, size_t len, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        hex[2 * i] = digits[bytes[i] >> 4];
        hex[2 * i + 1] = digits[bytes[i] & 15];
    }
    hex[2 * len] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

enum rb_status rb_hex_decode(const char *hex, uint8_t *out, size_t out_len)
{
    if (strlen(hex) != out_len * 2)
        return RB_ERR_FORMAT;
    for (size_t i = 0; i < out_len; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return RB_ERR_FORMAT;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return RB_OK;
}

enum rb_status rb_sha256_file(const char *path, char hex[RB_SHA256_HEX_LEN + 1])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return RB_ERR_IO;
    struct rb_sha256 h;
    enum rb_status st = rb_sha256_init(&h);
    if (st != RB_OK) {
        close(fd);
        return st;
    }
    static const size_t chunk = 1 << 16;
    unsigned char *buf = malloc(chunk);
    if (!buf) {
        rb_sha256_abort(&h);
        close(fd);
        return RB_ERR_NOMEM;
    }
    for (;;) {
        ssize_t n = read(fd, buf, chunk);
        if (n < 0) {
            st = RB_ERR_IO;
            break;
        }
        if (n == 0)
            break;
        st = rb_sha256_update(&h, buf, (size_t)n);
        if (st != RB_OK)
            break;
    }
    free(buf);
    close(fd);
    if (st != RB_OK) {
        rb_sha256_abort(&h);
        return st;
    }
    uint8_t digest[RB_SHA256_LEN];
    st = rb_sha256_final(&h, digest);
    if (st == RB_OK)
        rb_hex_encode(digest, RB_SHA256_LEN, hex);
    return st;
}

enum rb_status rb_random_bytes(void *out, size_t len)
{
    if (len > (size_t)INT32_MAX)
        return RB_ERR_INVALID;
    return RAND_bytes(out, (int)len) == 1 ? RB_OK : RB_ERR_CRYPTO;
}
