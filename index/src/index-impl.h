/* Private to the index module: the handle, and helpers shared by its files. */
#ifndef RAGBOX_INDEX_IMPL_H
#define RAGBOX_INDEX_IMPL_H

#include <pthread.h>
#include <sqlite3.h>

#include "ragbox/index.h"

#define RB_INDEX_LOG "index"

/* Kinds of FAISS index in use for a collection. */
enum rb__vkind { RB__VKIND_NONE = 0, RB__VKIND_FLAT, RB__VKIND_HNSW, RB__VKIND_IVF };

/* One collection's in-memory vector index. Protected by rb_index.vlock:
 * searches hold it shared, changes hold it exclusive. */
struct rb__vcoll {
    int64_t id;
    int dim;
    void *faiss;            /* FaissIndex* (IDMap2) or NULL when not loaded/empty */
    enum rb__vkind kind;
    bool loaded;            /* faiss reflects SQLite at `generation` */
    int64_t generation;     /* collections.vec_generation the index reflects */
    bool dirty;             /* differs from the file on disk */
    bool writing;           /* a writer of this handle is between commit and apply */
    int64_t train_at;       /* IVF asked for but too few vectors: rebuild at this many */
    bool native_ids;        /* faiss is an IndexIVF holding chunk ids itself (no IDMap2):
                             * deletes remove ids directly */
    int64_t nlist;          /* IVF lists of the loaded index, 0 for other kinds */
    int nprobe;             /* IVF lists probed per query (set on load/build) */
    /* IDMap2-over-HNSW/IVF deletes (see vectors.c): deleted ids are tombstoned here,
     * filtered out of results, and purged by a rebuild at flush. Open-addressing set. */
    int64_t *tomb;
    size_t tomb_cap, tomb_n;
};

struct rb_index {
    char *data_dir;
    char *db_path;
    char *faiss_dir;
    bool read_only;
    /* tunables (from [index] in the configuration) */
    int rrf_k;
    double weight_keyword, weight_vector;
    double keyword_max_df; /* query terms in more than this fraction of passages are dropped */
    int64_t auto_ivf_threshold; /* "auto" collections: Flat below, IVF from here */
    int64_t ivf_train_max;      /* IVF training sample cap (vectors) */
    int hnsw_m, hnsw_ef_search, overfetch;
    int ivf_nprobe;             /* 0 = derived from nlist (see vectors.c) */
    int busy_timeout_ms;

    pthread_key_t err_key;       /* per-thread struct rb_errmsg */
    pthread_mutex_t write_mutex; /* one writer at a time; guards db_write */
    sqlite3 *db_write;
    pthread_mutex_t pool_mutex;  /* guards the reader pool */
    sqlite3 **pool;
    size_t pool_n, pool_cap;

    pthread_rwlock_t vlock;      /* guards vcolls and every FAISS index */
    struct rb__vcoll **vcolls;
    size_t n_vcolls, cap_vcolls;
};

/* Per-thread error text of this handle; returns status. */
enum rb_status rb__err(struct rb_index *idx, enum rb_status st, const char *fmt, ...) RB_PRINTF(3, 4);
/* Records SQLite's message for db: "what: message". Maps codes to statuses. */
enum rb_status rb__dberr(struct rb_index *idx, sqlite3 *db, const char *what);

/* Statement cache on a connection (see index.c): release, never finalize, what
 * rb__prepare_cached returned; rb__db_close finalizes them all and closes. */
int rb__prepare_cached(sqlite3 *db, const char *sql, sqlite3_stmt **out);
void rb__stmt_release(sqlite3_stmt *s);
void rb__db_close(sqlite3 *db);
/* Reader connections (any thread). */
RB_NODISCARD enum rb_status rb__reader_get(struct rb_index *idx, sqlite3 **out);
void rb__reader_put(struct rb_index *idx, sqlite3 *db);
/* Opens a connection with pragmas and the tokenizer registered. */
RB_NODISCARD enum rb_status rb__db_connect(struct rb_index *idx, bool writable, sqlite3 **out,
                                           struct rb_errmsg *err);

/* tokenizer.c */
#define RB__TOK_QUERY 1
typedef int (*rb__tok_emit)(void *ctx, const char *tok, size_t len, size_t start, size_t end,
                            bool prefix);
int rb__tokenize(const char *text, size_t len, int flags, rb__tok_emit emit, void *ctx);
int rb__fts5_register(sqlite3 *db);
/* Builds a safe FTS5 MATCH expression from free text: quoted tokens joined by
 * OR (English stop words dropped unless nothing else remains). NULL when the
 * text has no tokens. Caller frees. */
char *rb__fts_match_expr(const char *text);
/* Distinct query tokens (stop words dropped unless nothing else remains);
 * prefix[i] marks one-character CJK runs, matched as prefixes. Caller frees. */
RB_NODISCARD enum rb_status rb__query_terms(const char *text, char ***toks, bool **prefix,
                                            size_t *n);

/* vectors.c (callers hold vlock as noted) */
struct rb__vcoll *rb__vcoll_find(struct rb_index *idx, int64_t id);             /* any lock */
RB_NODISCARD enum rb_status rb__vcoll_add(struct rb_index *idx, int64_t id, int dim,
                                          struct rb__vcoll **out);           /* exclusive */
void rb__vcoll_forget(struct rb_index *idx, int64_t id);                     /* exclusive */
void rb__vcoll_free(struct rb__vcoll *vc);
/* Makes vc reflect SQLite at generation `gen` (file load or rebuild). Exclusive. */
RB_NODISCARD enum rb_status rb__vcoll_ensure(struct rb_index *idx, sqlite3 *db,
                                             struct rb__vcoll *vc, int64_t gen);
/* Rebuilds vc from SQLite embeddings. Exclusive. */
RB_NODISCARD enum rb_status rb__vcoll_rebuild(struct rb_index *idx, sqlite3 *db,
                                              struct rb__vcoll *vc, int64_t gen);
/* Applies a committed change: add n vectors (ids, dim floats each) and remove ids. Exclusive. */
RB_NODISCARD enum rb_status rb__vcoll_apply(struct rb_index *idx, sqlite3 *db,
                                            struct rb__vcoll *vc, const int64_t *add_ids,
                                            const float *add_vecs, size_t n_add,
                                            const int64_t *del_ids, size_t n_del, int64_t gen);
/* Writes vc to its file and records it in faiss_state. Caller holds write_mutex
 * and vlock exclusive. */
RB_NODISCARD enum rb_status rb__vcoll_persist(struct rb_index *idx, struct rb__vcoll *vc);
/* kNN: up to k (id, score) pairs, tombstones removed. Shared lock. */
RB_NODISCARD enum rb_status rb__vcoll_search(struct rb_index *idx, struct rb__vcoll *vc,
                                             const float *q, int64_t k, int64_t *ids,
                                             float *scores, int64_t *n_out);
bool rb__vcoll_tombstoned(const struct rb__vcoll *vc, int64_t id);
char *rb__faiss_path(struct rb_index *idx, int64_t id);
const char *rb__vkind_name(enum rb__vkind k);
/* "IVF1024,Flat nprobe=16", "HNSW32,Flat efSearch=128", "Flat" or "none". Shared lock. Caller frees. */
char *rb__vcoll_describe(struct rb_index *idx, const struct rb__vcoll *vc);
/* The IVF list count an "auto" collection of n vectors gets, and the nprobe used with nlist lists. */
int64_t rb__auto_nlist(int64_t n);
int rb__ivf_nprobe(const struct rb_index *idx, int64_t nlist);
/* L2-normalises v in place; false for a zero or non-finite vector. */
bool rb__normalize(float *v, int dim);
/* Checks the FAISS file of a collection against SQLite; appends problems. */
RB_NODISCARD enum rb_status rb__vcoll_verify_file(struct rb_index *idx, sqlite3 *db, int64_t cid,
                                                  const char *name, char ***problems, size_t *n,
                                                  size_t *cap);
RB_NODISCARD enum rb_status rb__problem_add(char ***problems, size_t *n, size_t *cap,
                                            const char *fmt, ...) RB_PRINTF(4, 5);

#endif
