/* Ed25519 keys for the audit checkpoints and head, through OpenSSL EVP. The
 * private key is PEM (PKCS#8) in a 0600 file outside the audit directory. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "audit-impl.h"

static void openssl_error(struct rb_errmsg *err, const char *what, const char *path)
{
    char buf[256] = "";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    rb_errmsg_set(err, RB_ERR_CRYPTO, "%s %s: %s", what, path, buf[0] ? buf : "OpenSSL error");
}

char *rb__audit_pub_path(const char *key_path)
{
    size_t n = strlen(key_path);
    if (n > 4 && strcmp(key_path + n - 4, ".pem") == 0)
        return rb_asprintf("%.*s.pub.pem", (int)(n - 4), key_path);
    return rb_asprintf("%s.pub.pem", key_path);
}

char *rb__audit_default_key(const char *dir)
{
    return rb_asprintf("%s/../keys/audit-ed25519.pem", dir);
}

static enum rb_status write_new_file(const char *path, const void *data, size_t len, mode_t mode,
                                     struct rb_errmsg *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return rb_errmsg_set(err, errno == EEXIST ? RB_ERR_EXISTS : RB_ERR_IO, "cannot create %s: %s",
                             path, strerror(errno));
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(path);
            return rb_errmsg_set(err, RB_ERR_IO, "cannot write %s: %s", path, strerror(e));
        }
        p += w;
        len -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        unlink(path);
        return rb_errmsg_set(err, RB_ERR_IO, "cannot sync %s: %s", path, strerror(errno));
    }
    return rb_fs_sync_parent(path) == RB_OK
               ? RB_OK
               : rb_errmsg_set(err, RB_ERR_IO, "cannot sync the directory of %s", path);
}

enum rb_status rb__audit_pubkey_write(EVP_PKEY *key, const char *path, struct rb_errmsg *err)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (!bio)
        return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    if (PEM_write_bio_PUBKEY(bio, key) != 1) {
        BIO_free(bio);
        openssl_error(err, "cannot encode the public key for", path);
        return RB_ERR_CRYPTO;
    }
    char *mem = NULL;
    long n = BIO_get_mem_data(bio, &mem);
    enum rb_status st = rb_fs_write_atomic(path, mem, (size_t)n);
    BIO_free(bio);
    if (st != RB_OK)
        return rb_errmsg_set(err, st, "cannot write the public key %s", path);
    chmod(path, 0644);
    return RB_OK;
}

/* Loads the private key, or creates it (and its .pub.pem) when absent and
 * create is set. A key file readable by group or others is refused. */
enum rb_status rb__audit_key_load(const char *path, bool create, EVP_PKEY **out,
                                  struct rb_errmsg *err)
{
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (errno != ENOENT || !create)
            return rb_errmsg_set(err, errno == ENOENT ? RB_ERR_NOT_FOUND : RB_ERR_IO,
                                 "audit signing key %s: %s", path, strerror(errno));
        char *dir = rb_strdup(path);
        if (!dir)
            return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
            *slash = '\0';
            if (rb_fs_mkdirs(dir, 0700) != RB_OK) {
                rb_errmsg_set(err, RB_ERR_IO, "cannot create the key directory %s", dir);
                free(dir);
                return RB_ERR_IO;
            }
        }
        free(dir);
        EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        if (!key) {
            openssl_error(err, "cannot generate the Ed25519 key", path);
            return RB_ERR_CRYPTO;
        }
        BIO *bio = BIO_new(BIO_s_mem());
        if (!bio || PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1) {
            BIO_free(bio);
            EVP_PKEY_free(key);
            openssl_error(err, "cannot encode the key", path);
            return RB_ERR_CRYPTO;
        }
        char *mem = NULL;
        long n = BIO_get_mem_data(bio, &mem);
        enum rb_status st = write_new_file(path, mem, (size_t)n, 0600, err);
        BIO_free(bio);
        if (st == RB_ERR_EXISTS) {
            /* Another process created it first: use theirs. */
            EVP_PKEY_free(key);
            return rb__audit_key_load(path, false, out, err);
        }
        if (st != RB_OK) {
            EVP_PKEY_free(key);
            return st;
        }
        char *pub = rb__audit_pub_path(path);
        st = pub ? rb__audit_pubkey_write(key, pub, err) : RB_ERR_NOMEM;
        free(pub);
        if (st != RB_OK) {
            EVP_PKEY_free(key);
            return st;
        }
        RB_INFO("audit", "created the audit signing key %s", path);
        *out = key;
        return RB_OK;
    }
    if (!S_ISREG(sb.st_mode))
        return rb_errmsg_set(err, RB_ERR_INVALID, "audit signing key %s is not a file", path);
    if (sb.st_mode & 077)
        return rb_errmsg_set(err, RB_ERR_DENIED,
                             "audit signing key %s is accessible by group/others (mode %03o); "
                             "chmod 600 it",
                             path, (unsigned)(sb.st_mode & 0777));
    FILE *f = fopen(path, "rb");
    if (!f)
        return rb_errmsg_set(err, RB_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!key) {
        openssl_error(err, "cannot read the private key", path);
        return RB_ERR_CRYPTO;
    }
    if (EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
        EVP_PKEY_free(key);
        return rb_errmsg_set(err, RB_ERR_CRYPTO, "%s is not an Ed25519 key", path);
    }
    *out = key;
    return RB_OK;
}

enum rb_status rb__audit_pubkey_load(const char *path, EVP_PKEY **out, struct rb_errmsg *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return rb_errmsg_set(err, errno == ENOENT ? RB_ERR_NOT_FOUND : RB_ERR_IO,
                             "cannot open the audit public key %s: %s", path, strerror(errno));
    EVP_PKEY *key = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    if (!key) {
        /* A private key file works too (the machine holding it may verify). */
        ERR_clear_error();
        rewind(f);
        key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    }
    fclose(f);
    if (!key) {
        openssl_error(err, "cannot read the public key", path);
        return RB_ERR_CRYPTO;
    }
    if (EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
        EVP_PKEY_free(key);
        return rb_errmsg_set(err, RB_ERR_CRYPTO, "%s is not an Ed25519 key", path);
    }
    *out = key;
    return RB_OK;
}

enum rb_status rb__audit_sign(EVP_PKEY *key, const char *msg, size_t len,
                              char sig_hex[RB_AUDIT_SIG_HEX + 1])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return RB_ERR_NOMEM;
    uint8_t sig[64];
    size_t sig_len = sizeof sig;
    enum rb_status st = RB_ERR_CRYPTO;
    if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
        EVP_DigestSign(ctx, sig, &sig_len, (const unsigned char *)msg, len) == 1 && sig_len == 64) {
        rb_hex_encode(sig, 64, sig_hex);
        st = RB_OK;
    }
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return st;
}

bool rb__audit_sig_ok(EVP_PKEY *pub, const char *msg, size_t len, const char *sig_hex)
{
    uint8_t sig[64];
    if (!sig_hex || strlen(sig_hex) != RB_AUDIT_SIG_HEX || rb_hex_decode(sig_hex, sig, 64) != RB_OK)
        return false;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return false;
    bool ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pub) == 1 &&
              EVP_DigestVerify(ctx, sig, 64, (const unsigned char *)msg, len) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

/* First 8 bytes of SHA-256 of the raw public key, hex: names the key in records. */
void rb__audit_key_id(EVP_PKEY *key, char id[RB_AUDIT_KEY_ID_HEX + 1])
{
    uint8_t raw[32], digest[RB_SHA256_LEN];
    size_t n = sizeof raw;
    rb_strlcpy(id, "unknown", RB_AUDIT_KEY_ID_HEX + 1);
    if (EVP_PKEY_get_raw_public_key(key, raw, &n) == 1 && rb_sha256(raw, n, digest) == RB_OK)
        rb_hex_encode(digest, RB_AUDIT_KEY_ID_HEX / 2, id);
    ERR_clear_error();
}

enum rb_status rb_audit_export_public_key(const char *key_path, const char *out_path, bool create,
                                          struct rb_errmsg *err)
{
    EVP_PKEY *key = NULL;
    enum rb_status st = rb__audit_key_load(key_path, create, &key, err);
    if (st != RB_OK)
        return st;
    st = rb__audit_pubkey_write(key, out_path, err);
    EVP_PKEY_free(key);
    return st;
}
