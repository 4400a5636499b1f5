/* Private to audit/: file names, key handling, the head and checkpoint formats. */
#ifndef RAGBOX_AUDIT_IMPL_H
#define RAGBOX_AUDIT_IMPL_H

#include <openssl/evp.h>

#include "ragbox/audit.h"

#define RB_AUDIT_HEAD "head.json"
#define RB_AUDIT_CHECKPOINTS "checkpoints.jsonl"
#define RB_AUDIT_LOCK "audit.lock"
#define RB_AUDIT_PREFIX "audit-"
#define RB_AUDIT_SUFFIX ".jsonl"
#define RB_AUDIT_ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"
/* Longest record line accepted (records carry a query, an answer and details). */
#define RB_AUDIT_MAX_LINE ((size_t)4 << 20)
/* Most records one group-commit slice writes before sealing them with a
 * head: a crash can leave at most this many complete records beyond the
 * signed head (adopted by the next appender, tolerated by verify). */
#define RB_AUDIT_MAX_BATCH 256
#define RB__AUDIT_STR2(x) #x
#define RB__AUDIT_STR(x) RB__AUDIT_STR2(x)
#define RB_AUDIT_SIG_HEX 128 /* Ed25519 signature, 64 bytes, hex */
#define RB_AUDIT_KEY_ID_HEX 16

/* The signed head (see audit.h). */
struct rb__audit_head {
    uint64_t seq;       /* last record sealed, 0 = none */
    char hash[RB_SHA256_HEX_LEN + 1];
    char file[64];      /* current log file name */
    uint64_t size;      /* size of that file after the last sealed record */
    int64_t file_start_us; /* when that file was started (rotation by time) */
    uint64_t cp_seq;    /* seq of the last checkpoint, 0 = none */
    char cp_hash[RB_SHA256_HEX_LEN + 1]; /* SHA-256 of the last checkpoint line */
    char key_id[RB_AUDIT_KEY_ID_HEX + 1];
    char sig[RB_AUDIT_SIG_HEX + 1];
};

/* keys.c */
RB_NODISCARD enum rb_status rb__audit_key_load(const char *path, bool create, EVP_PKEY **out,
                                               struct rb_errmsg *err);
RB_NODISCARD enum rb_status rb__audit_pubkey_load(const char *path, EVP_PKEY **out,
                                                  struct rb_errmsg *err);
RB_NODISCARD enum rb_status rb__audit_pubkey_write(EVP_PKEY *key, const char *path,
                                                   struct rb_errmsg *err);
RB_NODISCARD enum rb_status rb__audit_sign(EVP_PKEY *key, const char *msg, size_t len,
                                           char sig_hex[RB_AUDIT_SIG_HEX + 1]);
bool rb__audit_sig_ok(EVP_PKEY *pub, const char *msg, size_t len, const char *sig_hex);
void rb__audit_key_id(EVP_PKEY *key, char id[RB_AUDIT_KEY_ID_HEX + 1]);
/* The public key path that belongs to a private key path ("x.pem" -> "x.pub.pem"). */
char *rb__audit_pub_path(const char *key_path);
/* <dir>/../keys/audit-ed25519.pem */
char *rb__audit_default_key(const char *dir);

/* util.c: the head and checkpoint messages that get signed */
char *rb__audit_head_message(const struct rb__audit_head *h, size_t *len);
char *rb__audit_checkpoint_message(uint64_t seq, const char *hash, const char *file,
                                   const char *time, const char *reason, const char *prev_cp,
                                   size_t *len);
/* Parses head.json text; RB_ERR_CORRUPT with a message when malformed. */
RB_NODISCARD enum rb_status rb__audit_head_parse(const char *text, size_t len,
                                                 struct rb__audit_head *h, struct rb_errmsg *err);
/* Lists audit-*.jsonl in dir, sorted (caller frees each and the array). */
RB_NODISCARD enum rb_status rb__audit_list_files(const char *dir, char ***names, size_t *n);
void rb__audit_free_list(char **names, size_t n);
bool rb__audit_is_hex(const char *s, size_t len);

#endif
