/* ragbox web: the intranet HTTP server, its JSON API, authentication and
 * access control, and the static UI.
 *
 * Two parts:
 *   - The access store (struct rb_web_auth): users (Argon2id password hashes),
 *     roles, groups, per-collection read/write grants, sessions (ids stored as
 *     SHA-256), API keys (stored as SHA-256, scoped, revocable) and each user's
 *     question history. Its tables (prefix web_) live in the shared
 *     DIR/ragbox.db under schema_versions row 'web'; it opens its own SQLite
 *     connection. The CLI uses it directly (`ragbox user add`, `apikey create`).
 *   - The server (struct rb_web): libmicrohttpd with an internal thread pool
 *     (epoll per thread), HTTP/1.1 keep-alive, optional TLS (GnuTLS inside
 *     libmicrohttpd), bounded header/body sizes, connection limits and
 *     timeouts, a router, /metrics, the JSON API and the embedded UI.
 *
 * Access rule (rb_web_auth_can): admin may read and write every collection;
 * any other user may read (write) a collection when a grant with read (write)
 * exists for the user or for a group the user belongs to. Search and ask
 * restrict retrieval to the collections this check allows, and the index's
 * per-candidate `allow` callback re-checks each hit, so a chunk from a
 * forbidden collection never reaches a result, prompt, citation, error
 * message or metric label.
 *
 * Thread-safety: a struct rb_web_auth may be shared by threads (one mutex
 * around its connection; password hashing runs outside the lock). A struct
 * rb_web runs its own threads; open/close from one thread.
 *
 * Ownership: pointers passed in are borrowed for the call unless said
 * otherwise; strings returned through `char **` are caller-owned (free()).
 */
#ifndef RAGBOX_WEB_H
#define RAGBOX_WEB_H

#include <stdbool.h>
#include <stdint.h>

#include "ragbox/common.h"

/* The web module's schema version (schema_versions row 'web'). */
#define RB_WEB_SCHEMA_VERSION 1
/* User and group names: 1..64 bytes of [A-Za-z0-9._@-], starting with a letter or digit. */
#define RB_WEB_NAME_MAX 64
/* Passwords: 8..1024 bytes. */
#define RB_WEB_PASSWORD_MIN 8
#define RB_WEB_PASSWORD_MAX 1024

/* ============================================================ access store */

enum rb_web_role {
    RB_WEB_ROLE_USER = 0,    /* reads/writes collections it is granted */
    RB_WEB_ROLE_AUDITOR = 1, /* reads the audit trail; collections only by grant */
    RB_WEB_ROLE_ADMIN = 2,   /* manages users, groups, grants, keys, collections */
};
const char *rb_web_role_name(enum rb_web_role r); /* "user", "auditor", "admin" */
RB_NODISCARD enum rb_status rb_web_role_parse(const char *text, enum rb_web_role *out);

/* API key scopes (bit set). */
enum rb_web_scope {
    RB_WEB_SCOPE_READ = 1,   /* GET /api/..., search, ask */
    RB_WEB_SCOPE_WRITE = 2,  /* state-changing /api/... calls the user may make */
    RB_WEB_SCOPE_ADMIN = 4,  /* admin/auditor endpoints (the user's role still applies) */
    RB_WEB_SCOPE_OPENAI = 8, /* /v1/... */
};
/* "read,write,admin,openai" (any subset, comma-separated) -> bits. */
RB_NODISCARD enum rb_status rb_web_scope_parse(const char *text, unsigned *out);
/* Writes the comma-separated names (buf >= 32 bytes). */
void rb_web_scope_format(unsigned scopes, char *buf, size_t size);

struct rb_web_auth;

struct rb_web_auth_options {
    const char *db_path;            /* DIR/ragbox.db; required; borrowed */
    const struct rb_config *config; /* may be NULL; section [web]:
                                     *   argon2_t_cost (2), argon2_m_cost_kib (19456),
                                     *   argon2_parallelism (1), session_ttl_s (28800),
                                     *   session_idle_s (3600) */
};

/* Opens (creating/migrating) the web tables. On failure *out is NULL and err says why. */
RB_NODISCARD enum rb_status rb_web_auth_open(const struct rb_web_auth_options *opts,
                                             struct rb_web_auth **out, struct rb_errmsg *err);
void rb_web_auth_close(struct rb_web_auth *auth);
/* Last error of the calling thread on this handle; borrowed. */
const char *rb_web_auth_errmsg(struct rb_web_auth *auth);

struct rb_web_user {
    int64_t id;
    char name[RB_WEB_NAME_MAX + 1];
    enum rb_web_role role;
    bool disabled;
    int64_t created_us;
};

/* RB_ERR_EXISTS when taken, RB_ERR_INVALID for a bad name or password. */
RB_NODISCARD enum rb_status rb_web_user_add(struct rb_web_auth *auth, const char *name,
                                            enum rb_web_role role, const char *password,
                                            int64_t *out_id);
RB_NODISCARD enum rb_status rb_web_user_get(struct rb_web_auth *auth, const char *name,
                                            struct rb_web_user *out);
RB_NODISCARD enum rb_status rb_web_user_get_by_id(struct rb_web_auth *auth, int64_t id,
                                                  struct rb_web_user *out);
/* Caller-owned array of *n (free()). */
RB_NODISCARD enum rb_status rb_web_user_list(struct rb_web_auth *auth, struct rb_web_user **out,
                                             size_t *n);
/* Deletes the user, their sessions, keys, memberships, grants and history. */
RB_NODISCARD enum rb_status rb_web_user_delete(struct rb_web_auth *auth, const char *name);
RB_NODISCARD enum rb_status rb_web_user_set_role(struct rb_web_auth *auth, const char *name,
                                                 enum rb_web_role role);
/* Also ends the user's sessions. */
RB_NODISCARD enum rb_status rb_web_user_set_password(struct rb_web_auth *auth, const char *name,
                                                     const char *password);
RB_NODISCARD enum rb_status rb_web_user_set_disabled(struct rb_web_auth *auth, const char *name,
                                                     bool disabled);
/* Checks a password (constant work whether or not the user exists).
 * RB_ERR_AUTH when wrong, unknown or disabled. */
RB_NODISCARD enum rb_status rb_web_user_verify(struct rb_web_auth *auth, const char *name,
                                               const char *password, struct rb_web_user *out);

/* Groups. */
RB_NODISCARD enum rb_status rb_web_group_add(struct rb_web_auth *auth, const char *name,
                                             int64_t *out_id);
RB_NODISCARD enum rb_status rb_web_group_delete(struct rb_web_auth *auth, const char *name);
RB_NODISCARD enum rb_status rb_web_group_member_add(struct rb_web_auth *auth, const char *group,
                                                    const char *user);
RB_NODISCARD enum rb_status rb_web_group_member_remove(struct rb_web_auth *auth,
                                                       const char *group, const char *user);
/* JSON array [{"name":..,"members":[..]}]; caller frees with cJSON_Delete. */
RB_NODISCARD enum rb_status rb_web_group_list(struct rb_web_auth *auth, cJSON **out);

/* Grants on a collection (by its index id) to a user or group. read=false and
 * write=false removes the grant. write implies nothing about read. */
enum rb_web_principal { RB_WEB_PRINCIPAL_USER = 0, RB_WEB_PRINCIPAL_GROUP = 1 };
RB_NODISCARD enum rb_status rb_web_grant_set(struct rb_web_auth *auth, int64_t collection_id,
                                             enum rb_web_principal kind, const char *name,
                                             bool read, bool write);
/* JSON array [{"collection_id":..,"kind":"user|group","name":..,"read":b,"write":b}];
 * collection_id <= 0 lists all. */
RB_NODISCARD enum rb_status rb_web_grant_list(struct rb_web_auth *auth, int64_t collection_id,
                                              cJSON **out);
/* Drops every grant on a deleted collection. */
RB_NODISCARD enum rb_status rb_web_grant_drop_collection(struct rb_web_auth *auth,
                                                         int64_t collection_id);
/* The access check: may this user read (write) this collection? Any error
 * (unknown user, database failure) answers false. */
bool rb_web_auth_can(struct rb_web_auth *auth, int64_t user_id, int64_t collection_id,
                     bool write);

/* API keys: "rbk_" + 64 hex digits. *out_key (caller frees) is the only copy
 * of the secret; the store keeps its SHA-256. */
RB_NODISCARD enum rb_status rb_web_apikey_create(struct rb_web_auth *auth, const char *user,
                                                 const char *name, unsigned scopes,
                                                 char **out_key, int64_t *out_id);
/* Revokes a key (owner_id > 0: only if it belongs to that user). */
RB_NODISCARD enum rb_status rb_web_apikey_revoke(struct rb_web_auth *auth, int64_t key_id,
                                                 int64_t owner_id);
/* JSON array of keys (no secrets); user_id <= 0 lists everyone's. */
RB_NODISCARD enum rb_status rb_web_apikey_list(struct rb_web_auth *auth, int64_t user_id,
                                               cJSON **out);
/* Resolves a presented key: RB_ERR_AUTH when unknown, revoked or the user is disabled. */
RB_NODISCARD enum rb_status rb_web_apikey_check(struct rb_web_auth *auth, const char *key,
                                                struct rb_web_user *out_user,
                                                unsigned *out_scopes, int64_t *out_key_id);

/* Sessions: *out_id (65-byte hex, the cookie value) and *out_csrf (65-byte hex). */
RB_NODISCARD enum rb_status rb_web_session_create(struct rb_web_auth *auth, int64_t user_id,
                                                  char out_id[65], char out_csrf[65]);
/* RB_ERR_AUTH when unknown or expired; refreshes the idle timer. */
RB_NODISCARD enum rb_status rb_web_session_check(struct rb_web_auth *auth, const char *id,
                                                 struct rb_web_user *out_user,
                                                 char out_csrf[65]);
RB_NODISCARD enum rb_status rb_web_session_delete(struct rb_web_auth *auth, const char *id);

/* Question history. */
RB_NODISCARD enum rb_status rb_web_history_add(struct rb_web_auth *auth, int64_t user_id,
                                               const char *collection, const char *question,
                                               const char *answer, const char *citations_json,
                                               int64_t *out_id);
/* JSON array of the user's entries, newest first (limit 0 = all). */
RB_NODISCARD enum rb_status rb_web_history_list(struct rb_web_auth *auth, int64_t user_id,
                                                int64_t limit, cJSON **out);
/* entry_id > 0 deletes one entry, else all of the user's; *out_deleted = rows. */
RB_NODISCARD enum rb_status rb_web_history_delete(struct rb_web_auth *auth, int64_t user_id,
                                                  int64_t entry_id, int64_t *out_deleted);

/* ================================================================= server */

struct rb_web;

struct rb_web_options {
    const char *data_dir;           /* required; borrowed */
    const struct rb_config *config; /* may be NULL; borrowed, must outlive the server.
                                     * Section [web]: listen ("127.0.0.1:8080"),
                                     * tls_cert, tls_key (PEM paths; both = HTTPS),
                                     * threads (16: requests wait on the audit
                                     * fsync and SQLite, so more than the cores),
                                     * answer_workers (4: streamed asks),
                                     * job_workers (2: questions in parallel per
                                     * batch job), max_connections (256),
                                     * max_connections_per_ip (64), connection_timeout_s (30),
                                     * max_header_bytes (32768), max_body_bytes (1 MiB),
                                     * max_upload_bytes (256 MiB), json_max_depth (32),
                                     * login_max_failures (5), login_backoff_max_s (900) */
    const char *listen;             /* overrides web.listen; "ADDR:PORT", "[v6]:PORT"; port 0
                                     * picks a free port (see rb_web_port) */
    const char *model_path;         /* overrides [engine] model (else [answer] model):
                                     * the generation model (GGUF); none = extractive */
    const char *embedding_model_path; /* overrides [engine] embedding_model (else [answer]
                                       * embed_model): vector leg and /v1/embeddings */
};

/* Opens the stores and starts listening. On failure *out is NULL, err says why. */
RB_NODISCARD enum rb_status rb_web_open(const struct rb_web_options *opts, struct rb_web **out,
                                        struct rb_errmsg *err);
/* The bound TCP port. */
int rb_web_port(const struct rb_web *web);
/* Whether it serves HTTPS. */
bool rb_web_tls(const struct rb_web *web);
/* Stops accepting, finishes in-flight requests, frees everything. NULL ok. */
void rb_web_close(struct rb_web *web);

#endif
