/* ragbox index: collections, documents, chunks, keyword (SQLite FTS5 BM25) and
 * vector (FAISS) search, fused by reciprocal rank fusion.
 *
 * Storage. An index is opened on a data directory DIR:
 *   DIR/ragbox.db                    SQLite (WAL, foreign keys, busy_timeout), shared by
 *                                    all modules; the tables below belong to this module
 *   DIR/faiss/<collection_id>.faiss  one FAISS index per collection (IndexIDMap2, ids =
 *                                    chunk ids, inner product on L2-normalised vectors)
 * SQLite is the source of truth: each chunk's embedding is stored there, and
 * the FAISS file is a cache of it. SQLite records which vector generation and
 * SHA-256 each FAISS file reflects; on open (or before a search, when another
 * process changed the collection) a missing, stale or corrupt FAISS file is
 * rebuilt from SQLite with a log line. FAISS files are written by
 * rb_index_flush() and rb_index_close() (temp file, fsync, rename).
 *
 * Tables owned by this module: collections, documents, chunks, chunk_fts
 * (FTS5, external content = chunks, tokenizer "ragbox_cjk"), chunk_fts_vocab
 * (fts5vocab), faiss_state.
 *
 * Schema versions, for every module. The database carries
 * PRAGMA application_id = RB_INDEX_APPLICATION_ID. Each module keeps its own
 * schema version in the shared table
 *     CREATE TABLE IF NOT EXISTS schema_versions(module TEXT PRIMARY KEY,
 *                                                version INTEGER NOT NULL);
 * (row module='index' is this module's) and migrates its own tables forward,
 * one step per version, inside a transaction. PRAGMA user_version mirrors the
 * index module's version. Other modules open their own connections to
 * DIR/ragbox.db (rb_index_db_path), must enable WAL/foreign keys/busy_timeout
 * themselves, create schema_versions with exactly the DDL above, and must not
 * write this module's tables. A file that is not SQLite, or a SQLite file with
 * another application_id or with tables but no schema_versions, is refused
 * with RB_ERR_FORMAT ("not a ragbox database").
 *
 * Keyword search tokenizes Latin text unicode61-style (case and diacritic
 * folding, words of letters/digits) and Han/kana/hangul runs as overlapping
 * bigrams (single characters as unigrams); queries are tokenized the same way
 * and the MATCH expression is built from tokens, so no query text is ever
 * interpreted as FTS5 syntax.
 *
 * Thread-safety: a struct rb_index may be shared by any number of threads.
 * Searches and reads run concurrently (each thread borrows its own SQLite
 * connection from a pool; FAISS indexes are under a reader/writer lock);
 * writes are serialised per handle (one writer at a time). Several processes
 * may open the same data directory: SQLite WAL arbitrates, and a handle
 * notices another process's vector changes by their generation. rb_index_errmsg
 * is per handle and per thread. The `allow` callback of a search runs on the
 * searching thread and must not call back into the same handle.
 *
 * Ownership: every pointer passed in is borrowed for the duration of the call
 * unless said otherwise. Objects returned through out-parameters are owned by
 * the caller and freed with the matching *_free function (all accept NULL).
 */
#ifndef RAGBOX_INDEX_H
#define RAGBOX_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ragbox/common.h"

/* 'RAGB' in PRAGMA application_id. */
#define RB_INDEX_APPLICATION_ID 0x52414742
/* The index module's current schema version (schema_versions row 'index'). */
#define RB_INDEX_SCHEMA_VERSION 2
/* Collection names: 1..64 bytes of [A-Za-z0-9._-], starting with a letter or digit. */
#define RB_INDEX_NAME_MAX 64
/* Largest accepted vector dimension. */
#define RB_INDEX_DIM_MAX 8192

/* ================================================================ handle */

struct rb_index;

struct rb_index_options {
    const char *data_dir;             /* required; borrowed. Created if absent (unless read_only) */
    const struct rb_config *config;   /* may be NULL (defaults); borrowed, must outlive the
                                       * handle. Keys, section [index]:
                                       *   rrf_k (60), weight_keyword (1.0), weight_vector (1.0),
                                       *   auto_ivf_threshold (20000: vectors at which an "auto"
                                       *   collection switches Flat -> IVF; see bench/index;
                                       *   the old name auto_hnsw_threshold is still read),
                                       *   ivf_nprobe (0 = nlist/128 within 16..128),
                                       *   ivf_train_max (100000: IVF training sample),
                                       *   hnsw_m (32), hnsw_ef_search (128),
                                       *   overfetch (4: candidates per leg = k * overfetch),
                                       *   keyword_max_df (0.05: query terms found in more
                                       *   than this fraction of passages are dropped, in
                                       *   indexes over 5000 passages), busy_timeout_ms (10000) */
    bool read_only;                   /* no writes; stale FAISS files are rebuilt in memory only */
};

/* Opens (creating or migrating when writable) DIR/ragbox.db and loads the
 * FAISS indexes. On failure *out is NULL and err (may be NULL) says why:
 * RB_ERR_FORMAT for a foreign or non-SQLite file, RB_ERR_CORRUPT for a
 * damaged database, RB_ERR_UNSUPPORTED for a newer schema. */
RB_NODISCARD enum rb_status rb_index_open(const struct rb_index_options *opts,
                                          struct rb_index **out, struct rb_errmsg *err);
/* Flushes dirty FAISS indexes (errors are logged) and frees everything. NULL ok. */
void rb_index_close(struct rb_index *idx);
/* Message of the last failed call made by the calling thread on idx
 * ("" if none). Borrowed, valid until that thread's next call on idx. */
const char *rb_index_errmsg(struct rb_index *idx);
/* DIR/ragbox.db for other modules' own connections. Borrowed, valid until close. */
const char *rb_index_db_path(const struct rb_index *idx);
/* Writes every FAISS index changed since the last flush (temp file, fsync,
 * rename) and records its generation and SHA-256 in SQLite. */
RB_NODISCARD enum rb_status rb_index_flush(struct rb_index *idx);

/* =========================================================== collections */

struct rb_index_collection_options {
    int dim;                 /* vector dimension; 0 = fixed by the first vector added */
    const char *factory;     /* FAISS factory string or NULL/"auto": "Flat", "HNSW32",
                              * "HNSW32,Flat", "IVF1024,Flat"... ("IDMap2," is added).
                              * auto = Flat, then IVF-Flat from auto_ivf_threshold vectors
                              * with nlist ~ 4*sqrt(n) (a power of two, <= 2048),
                              * retrained at flush when the size calls for twice
                              * (or a quarter of) the lists */
    const char *policy_json; /* per-collection policy (a JSON object, opaque to the index,
                              * read by answer/web); NULL = "{}" */
};

struct rb_index_collection {
    int64_t id;
    char *name;
    int dim;               /* 0 while no vector has been added */
    char *factory;         /* as configured ("auto" by default) */
    char *index_type;      /* what is in use now: "none", "flat", "hnsw", "ivf" */
    char *index_desc;      /* its parameters: "Flat", "IVF1024 nprobe=16", "HNSW efSearch=128",
                            * "none", "not loaded" */
    char *policy_json;
    int64_t created_us;
    int64_t documents;     /* documents in SQLite */
    int64_t chunks;        /* chunks in SQLite */
    int64_t vectors;       /* chunks with an embedding in SQLite */
    int64_t faiss_ntotal;  /* vectors in the loaded FAISS index (incl. not yet purged deletes) */
};
void rb_index_collection_free(struct rb_index_collection *c);
void rb_index_collection_list_free(struct rb_index_collection *list, size_t n);

/* Creates a collection (RB_ERR_EXISTS if the name is taken, RB_ERR_INVALID for a
 * bad name, factory string or policy JSON). opts may be NULL. */
RB_NODISCARD enum rb_status rb_index_collection_create(struct rb_index *idx, const char *name,
                                                       const struct rb_index_collection_options *opts,
                                                       int64_t *out_id);
/* By name or by id; RB_ERR_NOT_FOUND when absent. *out is caller-owned
 * (rb_index_collection_free). Counts are filled. */
RB_NODISCARD enum rb_status rb_index_collection_get(struct rb_index *idx, const char *name,
                                                    struct rb_index_collection **out);
RB_NODISCARD enum rb_status rb_index_collection_get_by_id(struct rb_index *idx, int64_t id,
                                                          struct rb_index_collection **out);
/* All collections ordered by name, with counts: caller-owned array of *n
 * (rb_index_collection_list_free). This is also the "stats" call. */
RB_NODISCARD enum rb_status rb_index_collection_list(struct rb_index *idx,
                                                     struct rb_index_collection **out, size_t *n);
/* Removes the collection, its documents, chunks, FTS rows, embeddings and FAISS file. */
RB_NODISCARD enum rb_status rb_index_collection_delete(struct rb_index *idx, int64_t id);
/* Replaces the policy JSON (must be a JSON object). */
RB_NODISCARD enum rb_status rb_index_collection_set_policy(struct rb_index *idx, int64_t id,
                                                           const char *policy_json);

/* ============================================================= documents */

enum rb_index_doc_state {
    RB_INDEX_DOC_PENDING = 0, /* known, not (yet) parsed/indexed */
    RB_INDEX_DOC_INDEXED = 1, /* chunks (and embeddings, if any) are in */
    RB_INDEX_DOC_FAILED = 2,  /* ingest failed; `error` says why */
    RB_INDEX_DOC_SKIPPED = 3, /* deliberately not indexed (policy, empty, unsupported) */
};
const char *rb_index_doc_state_name(enum rb_index_doc_state s); /* "pending", ... */

/* A document. As input (rb_index_document_put) every pointer is borrowed and
 * may be NULL except source; as output it is one caller-owned allocation
 * freed with rb_index_document_free. */
struct rb_index_document {
    int64_t id;                 /* output (input: ignored) */
    int64_t collection_id;      /* required */
    const char *source;         /* file path or URI; unique within the collection; required */
    const char *sha256;         /* lower-case hex of the original bytes */
    const char *mime;
    const char *title;
    const char *language;       /* BCP 47 ("en", "zh") */
    int64_t size;               /* bytes */
    int64_t mtime_us;           /* source modification time, us since epoch */
    const char *metadata_json;  /* a JSON object or NULL ("{}") */
    enum rb_index_doc_state state;
    const char *error;          /* why, when state is FAILED/SKIPPED */
    int64_t parent_id;          /* containing document (e-mail attachment), 0 = none.
                                 * Deleting the parent deletes its children. */
    int64_t created_us, updated_us; /* output */
    int64_t chunk_count;        /* output */
};
void rb_index_document_free(struct rb_index_document *doc);
void rb_index_document_list_free(struct rb_index_document **list, size_t n);

/* A chunk: a passage of a document. As input every pointer is borrowed; as
 * output one caller-owned allocation freed with rb_index_chunk_free. */
struct rb_index_chunk {
    int64_t id;            /* output */
    int64_t document_id;   /* output */
    int64_t collection_id; /* output */
    int32_t ordinal;       /* position within the document, 0-based */
    const char *text;      /* UTF-8, required (invalid UTF-8 is refused) */
    int32_t page_start;    /* 1-based page, 0 = not paged */
    int32_t page_end;
    const char *section;   /* heading path ("2 Risk > 2.1 Credit"), may be NULL */
    int64_t byte_start, byte_end; /* offsets in the extracted text, bytes */
    int64_t char_start, char_end; /* the same in code points */
    int32_t token_count;   /* tokens of the embedding model, 0 = unknown */
    const float *embedding; /* NULL or embedding_dim floats (normalised on insert) */
    int embedding_dim;
};
void rb_index_chunk_free(struct rb_index_chunk *c);
void rb_index_chunk_list_free(struct rb_index_chunk **list, size_t n);

/* Inserts the document, or replaces the one with the same (collection,
 * source) together with all its chunks, FTS rows and vectors, in one SQLite
 * transaction. Embeddings must all have the collection's dimension
 * (RB_ERR_DIMENSION otherwise; the first vector fixes a collection's dim).
 * Keeps the document id on replace. out_chunk_ids: NULL or caller array of
 * n_chunks receiving the new chunk ids. Nothing changes on error. */
RB_NODISCARD enum rb_status rb_index_document_put(struct rb_index *idx,
                                                  const struct rb_index_document *doc,
                                                  const struct rb_index_chunk *chunks,
                                                  size_t n_chunks, int64_t *out_document_id,
                                                  int64_t *out_chunk_ids);
/* Changes state (and error text, may be NULL) without touching chunks. */
RB_NODISCARD enum rb_status rb_index_document_set_state(struct rb_index *idx, int64_t document_id,
                                                        enum rb_index_doc_state state,
                                                        const char *error);
RB_NODISCARD enum rb_status rb_index_document_get(struct rb_index *idx, int64_t document_id,
                                                  struct rb_index_document **out);
/* RB_ERR_NOT_FOUND when no document has that source in the collection. */
RB_NODISCARD enum rb_status rb_index_document_find(struct rb_index *idx, int64_t collection_id,
                                                   const char *source,
                                                   struct rb_index_document **out);
/* Every document of the collection with that SHA-256 (rename detection):
 * caller-owned array of *n (may be 0). */
RB_NODISCARD enum rb_status rb_index_document_find_sha256(struct rb_index *idx,
                                                          int64_t collection_id,
                                                          const char *sha256,
                                                          struct rb_index_document ***out,
                                                          size_t *n);
/* Changes the source (a moved file) keeping chunks and vectors. RB_ERR_EXISTS
 * if the new source is taken. */
RB_NODISCARD enum rb_status rb_index_document_rename(struct rb_index *idx, int64_t document_id,
                                                     const char *new_source);
/* Deletes the document, its attachments, chunks, FTS rows and vectors. */
RB_NODISCARD enum rb_status rb_index_document_delete(struct rb_index *idx, int64_t document_id);
/* Documents of a collection ordered by id, from offset, at most limit (0 = all). */
RB_NODISCARD enum rb_status rb_index_document_list(struct rb_index *idx, int64_t collection_id,
                                                   int64_t offset, int64_t limit,
                                                   struct rb_index_document ***out, size_t *n);
/* One chunk (for citations); embedding is not returned (NULL). */
RB_NODISCARD enum rb_status rb_index_chunk_get(struct rb_index *idx, int64_t chunk_id,
                                               struct rb_index_chunk **out);
/* A document's chunks in ordinal order (for neighbouring passages). */
RB_NODISCARD enum rb_status rb_index_document_chunks(struct rb_index *idx, int64_t document_id,
                                                     struct rb_index_chunk ***out, size_t *n);

/* ================================================================ search */

enum rb_index_mode {
    RB_INDEX_MODE_AUTO = 0, /* hybrid when a query vector is given and vectors exist, else keyword */
    RB_INDEX_MODE_HYBRID,   /* keyword + vector, RRF; degrades to keyword for collections
                             * without vectors */
    RB_INDEX_MODE_KEYWORD,  /* FTS5 BM25 only */
    RB_INDEX_MODE_VECTOR,   /* FAISS kNN only (needs a query vector) */
};
const char *rb_index_mode_name(enum rb_index_mode m);
RB_NODISCARD enum rb_status rb_index_mode_parse(const char *text, enum rb_index_mode *out);

/* Access control: return true when the caller may see this document. Called
 * for candidates before ranking results are cut to k (the index over-fetches
 * so that k allowed hits come back when they exist). */
typedef bool (*rb_index_allow_fn)(void *ctx, int64_t collection_id, int64_t document_id);

struct rb_index_query {
    const char *text;               /* keyword query (any text; never parsed as FTS syntax) */
    const float *vector;            /* query embedding or NULL (normalised internally) */
    int vector_dim;
    enum rb_index_mode mode;
    int k;                          /* hits wanted, 1..1000 */
    const int64_t *collection_ids;  /* collections to search, n_collections >= 1 */
    size_t n_collections;
    rb_index_allow_fn allow;        /* NULL = everything allowed */
    void *allow_ctx;
    /* Fusion: score = sum over legs of weight / (rrf_k + rank). Zero/negative
     * values here mean "the configured default". */
    double weight_keyword;
    double weight_vector;
    int rrf_k;
};

struct rb_index_hit {
    int64_t chunk_id;
    int64_t document_id;
    int64_t collection_id;
    char *source;            /* the document's source path or URI */
    char *title;             /* may be NULL */
    int32_t page_start, page_end;
    char *section;           /* may be NULL */
    char *text;              /* the chunk text */
    int32_t ordinal;
    double score;            /* fused (RRF) score; for a one-leg search that leg's RRF term */
    double keyword_score;    /* -bm25 (higher is better); valid when keyword_rank > 0 */
    int keyword_rank;        /* 1-based rank in the keyword leg, 0 = not found there */
    double vector_score;     /* inner product (cosine); valid when vector_rank > 0 */
    int vector_rank;         /* 1-based rank in the vector leg, 0 = not found there */
};

struct rb_index_results {
    struct rb_index_hit *hits; /* caller-owned array of n, best first */
    size_t n;
    enum rb_index_mode mode;   /* the mode actually used */
};
void rb_index_results_free(struct rb_index_results *r); /* frees contents; r itself is the caller's */

/* Runs the query. RB_ERR_DIMENSION when the query vector does not match a
 * searched collection with vectors; RB_ERR_INVALID when mode VECTOR has no
 * vector or mode KEYWORD no text; RB_ERR_NOT_FOUND for an unknown collection. */
RB_NODISCARD enum rb_status rb_index_search(struct rb_index *idx, const struct rb_index_query *q,
                                            struct rb_index_results *out);

/* ============================================================ maintenance */

/* Checks SQLite (PRAGMA integrity_check, foreign_key_check), FTS5
 * ('integrity-check' and row parity with chunks) and, per collection, the
 * FAISS file against SQLite (present, checksum, ntotal and ids equal the
 * chunks with embeddings). Returns RB_OK when the checks ran; the problems
 * found are a caller-owned array of *n strings (free each, then the array;
 * or rb_index_problems_free). Flushes first; the FTS5 check needs a writable
 * handle (on a read-only one it is reported as a problem). */
RB_NODISCARD enum rb_status rb_index_verify(struct rb_index *idx, char ***problems, size_t *n);
void rb_index_problems_free(char **problems, size_t n);

enum rb_index_rebuild_what {
    RB_INDEX_REBUILD_VECTORS = 1, /* FAISS from the SQLite embeddings, then written */
    RB_INDEX_REBUILD_KEYWORD = 2, /* FTS5 from chunks ('rebuild') */
    RB_INDEX_REBUILD_ALL = 3,
};
/* collection_id 0 = every collection (FTS is always rebuilt whole). */
RB_NODISCARD enum rb_status rb_index_rebuild(struct rb_index *idx, int64_t collection_id,
                                             unsigned what);

/* Keyword tokenizer, exposed for tests and for callers that need the same
 * terms (e.g. highlighting): calls emit for each token (folded UTF-8, not
 * NUL-terminated) with its byte span in text. Returns the number of tokens. */
size_t rb_index_tokenize(const char *text, size_t len,
                         void (*emit)(void *ctx, const char *token, size_t token_len,
                                      size_t start, size_t end),
                         void *ctx);

#endif
