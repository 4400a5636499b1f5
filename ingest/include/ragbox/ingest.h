/* ragbox ingest: document parsers, the structure-aware chunker and the ingest
 * pipeline (watched folders, durable SQLite job queue, index sync).
 *
 * Data flow. A file's bytes enter rb_ingest_parse_file(), which runs the
 * format parser (PDF via poppler-glib with tesseract OCR for pages without a
 * text layer, images via tesseract, DOCX/XLSX/PPTX/ODT via libzip+libxml2,
 * HTML via libxml2, Markdown via cmark-gfm, text via uchardet+iconv, CSV,
 * e-mail via GMime) in a forked child process with rlimits and a wall-clock
 * timeout; the child returns a struct rb_ingest_doc over a pipe. The document
 * model is one UTF-8 text plus an ordered list of blocks (heading, paragraph,
 * list item, table, code) that point into that text by byte range, and the
 * byte offsets where each page begins. rb_ingest_chunk() cuts a document into
 * chunks along its structure under a token budget measured by a caller
 * callback (the embedding model's tokenizer, or rb_ingest_estimate_tokens).
 * The pipeline (struct rb_ingest) stores documents and chunks through the
 * index module, vectors coming from a struct rb_ingest_embedder.
 *
 * Thread-safety: parsing and chunking functions are reentrant (no shared
 * state). A struct rb_ingest handle belongs to one thread at a time.
 *
 * Ownership: all pointers passed in are borrowed for the call. Documents and
 * chunk lists returned are caller-owned and freed with their *_free function
 * (NULL is a no-op).
 */
#ifndef RAGBOX_INGEST_H
#define RAGBOX_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ragbox/common.h"

/* ========================================================== document model */

enum rb_ingest_format {
    RB_INGEST_FORMAT_UNKNOWN = 0,
    RB_INGEST_FORMAT_PDF,
    RB_INGEST_FORMAT_IMAGE, /* PNG, JPEG, TIFF, ...: OCR */
    RB_INGEST_FORMAT_DOCX,
    RB_INGEST_FORMAT_XLSX,
    RB_INGEST_FORMAT_PPTX,
    RB_INGEST_FORMAT_ODT,
    RB_INGEST_FORMAT_HTML,
    RB_INGEST_FORMAT_MARKDOWN,
    RB_INGEST_FORMAT_TEXT,
    RB_INGEST_FORMAT_CSV,
    RB_INGEST_FORMAT_EMAIL,
    RB_INGEST_FORMAT_EPUB,  /* ZIP + XHTML: the HTML parser over the spine */
    RB_INGEST_FORMAT_RTF,
    RB_INGEST_FORMAT_COUNT
};
const char *rb_ingest_format_name(enum rb_ingest_format f); /* "pdf", "docx", ... */
const char *rb_ingest_format_mime(enum rb_ingest_format f);
/* Detects the format from content (magic bytes, ZIP members) and the file
 * name's extension (name may be NULL). */
enum rb_ingest_format rb_ingest_detect(const char *name, const void *data, size_t len);

enum rb_ingest_block_kind {
    RB_INGEST_BLOCK_HEADING = 0,
    RB_INGEST_BLOCK_PARAGRAPH,
    RB_INGEST_BLOCK_LIST_ITEM,
    RB_INGEST_BLOCK_TABLE,
    RB_INGEST_BLOCK_CODE,
};
const char *rb_ingest_block_kind_name(enum rb_ingest_block_kind k);

/* A byte range [start, end) of the document text. */
struct rb_ingest_span {
    size_t start, end;
};

/* One block. Its text is doc->text[byte_start, byte_end) (no trailing newline).
 * A table is rendered one row per line, cells separated by " | "; rows[i] is
 * each row's range; the first header_rows rows are its header. */
struct rb_ingest_block {
    enum rb_ingest_block_kind kind;
    int level;                      /* heading 1..9; list nesting depth 1..; else 0 */
    int32_t page_start, page_end;   /* 1-based; 0 = the document is not paged */
    size_t byte_start, byte_end;    /* into doc->text */
    size_t char_start, char_end;    /* the same in code points */
    struct rb_ingest_span *rows;    /* tables: n_rows row ranges, else NULL */
    size_t n_rows;
    size_t header_rows;             /* tables: 0 or 1 */
};

/* An attachment (e-mail): ingested as its own document linked to its parent. */
struct rb_ingest_attachment {
    char *name;  /* file name (sanitised, no '/'), never NULL */
    char *mime;  /* declared content type, never NULL */
    char *data;  /* the decoded bytes */
    size_t len;
};

struct rb_ingest_doc {
    enum rb_ingest_format format;
    char *text;                     /* UTF-8, NUL-terminated, text_len bytes */
    size_t text_len;
    struct rb_ingest_block *blocks; /* n_blocks, in reading order */
    size_t n_blocks;
    size_t *page_starts;            /* n_pages byte offsets where page i+1 begins; NULL if unpaged */
    int32_t n_pages;                /* 0 = not paged */
    int32_t ocr_pages;              /* pages (or images) whose text came from OCR */
    char *title;                    /* may be NULL */
    char *language;                 /* "zh" or "en" (CJK ratio), may be NULL */
    char *metadata_json;            /* JSON object (e-mail headers, sheet names...), never NULL */
    struct rb_ingest_attachment *attachments;
    size_t n_attachments;
};
void rb_ingest_doc_free(struct rb_ingest_doc *doc);
/* 1-based page containing byte offset off (0 if the document is unpaged). */
int32_t rb_ingest_doc_page_at(const struct rb_ingest_doc *doc, size_t off);

/* ================================================================ parsing */

struct rb_ingest_limits {
    size_t max_file_bytes;       /* input size (default 256 MiB) */
    size_t max_text_bytes;       /* extracted text (default 64 MiB) */
    size_t max_unzipped_bytes;   /* total decompressed bytes of a ZIP container (256 MiB) */
    double max_zip_ratio;        /* refuse a member inflating beyond this ratio (200) */
    int max_pages;               /* PDF pages / slides / sheets parsed (5000) */
    int max_depth;               /* XML/HTML/MIME nesting (256) */
    size_t max_blocks;           /* blocks per document (1,000,000) */
    size_t max_attachments;      /* per e-mail (100) */
    int timeout_ms;              /* wall clock per file in the sandbox (900000: OCR of a
                                  * scanned page takes 3-20 s on one core) */
    int cpu_seconds;             /* RLIMIT_CPU of the sandbox (900) */
    size_t max_memory_bytes;     /* RLIMIT_AS of the sandbox (2 GiB; not under ASan) */
    bool ocr;                    /* OCR pages without text and images (true) */
    int ocr_dpi;                 /* rendering resolution for OCR (200) */
    int ocr_page_timeout_ms;     /* per page (60000) */
    int ocr_max_pages;           /* pages OCR'd per document (200) */
    const char *ocr_languages;   /* tesseract languages ("eng+chi_sim"), borrowed */
    bool pdf_tables;             /* find tables on PDF pages from the text geometry (true) */
};
/* Fills the defaults above. */
void rb_ingest_limits_default(struct rb_ingest_limits *l);
/* Reads section [ingest] keys max_file_mb, max_text_mb, max_unzipped_mb,
 * max_pages, timeout_s, memory_mb, ocr (bool), ocr_dpi, ocr_max_pages, ocr_languages,
 * pdf_tables (bool) over
 * the defaults. ocr_languages stays borrowed from cfg. */
RB_NODISCARD enum rb_status rb_ingest_limits_from_config(const struct rb_config *cfg,
                                                         struct rb_ingest_limits *l,
                                                         struct rb_errmsg *err);

/* Parses in the calling process. Only for trusted callers, fuzzers and
 * benchmarks: a hostile file can exhaust memory/CPU here. format UNKNOWN =
 * detect. *out is caller-owned; NULL on error, with err saying why
 * (RB_ERR_PARSE broken file, RB_ERR_DENIED encrypted, RB_ERR_TOO_LARGE a
 * limit, RB_ERR_UNSUPPORTED format, RB_ERR_ENCODING undecodable text). */
RB_NODISCARD enum rb_status rb_ingest_parse_buffer(const void *data, size_t len, const char *name,
                                                   enum rb_ingest_format format,
                                                   const struct rb_ingest_limits *limits,
                                                   struct rb_ingest_doc **out,
                                                   struct rb_errmsg *err);
/* Reads and parses path in a sandboxed child process (fork; RLIMIT_AS,
 * RLIMIT_CPU, RLIMIT_FSIZE=0; killed after timeout_ms). A crash, a hang or a
 * limit in the child is RB_ERR_CHILD / RB_ERR_TIMEOUT / RB_ERR_TOO_LARGE for
 * this file only. limits may be NULL (defaults). */
RB_NODISCARD enum rb_status rb_ingest_parse_file(const char *path,
                                                 const struct rb_ingest_limits *limits,
                                                 struct rb_ingest_doc **out,
                                                 struct rb_errmsg *err);
/* Same for bytes already in memory (e-mail attachments). */
RB_NODISCARD enum rb_status rb_ingest_parse_sandboxed(const void *data, size_t len,
                                                      const char *name,
                                                      const struct rb_ingest_limits *limits,
                                                      struct rb_ingest_doc **out,
                                                      struct rb_errmsg *err);

/* The pipe format between sandbox and parent (exposed for tests/fuzzing):
 * serialises doc into a caller-owned buffer; deserialise validates every
 * length and offset (RB_ERR_CORRUPT). */
RB_NODISCARD enum rb_status rb_ingest_doc_serialize(const struct rb_ingest_doc *doc,
                                                    struct rb_buf *out);
RB_NODISCARD enum rb_status rb_ingest_doc_deserialize(const void *data, size_t len,
                                                      struct rb_ingest_doc **out,
                                                      struct rb_errmsg *err);

/* =============================================================== chunking */

/* Counts tokens of text[0, len) (not NUL-terminated). */
typedef size_t (*rb_ingest_count_fn)(void *ctx, const char *text, size_t len);
/* A model-free estimate: one token per CJK character, ~1.3 per Latin word,
 * one per other symbol. Usable as an rb_ingest_count_fn (ctx ignored). */
size_t rb_ingest_estimate_tokens(void *ctx, const char *text, size_t len);

struct rb_ingest_chunk_options {
    int max_tokens;     /* budget per chunk (default 384) */
    int overlap_tokens; /* tokens of preceding sentences repeated at the start of the
                         * next chunk of the same section (default 48) */
    int min_tokens;     /* a section body shorter than this (e.g. a one-line intro) stays
                         * in one chunk with the subsection that follows it (24) */
    rb_ingest_count_fn count; /* NULL = rb_ingest_estimate_tokens */
    void *count_ctx;
};
void rb_ingest_chunk_options_default(struct rb_ingest_chunk_options *o);
/* Reads [ingest] chunk_tokens, chunk_overlap, chunk_min_tokens; a vertical or
 * collection may override through section [ingest.<name>] (name may be NULL). */
RB_NODISCARD enum rb_status rb_ingest_chunk_options_from_config(
    const struct rb_config *cfg, const char *name, struct rb_ingest_chunk_options *o,
    struct rb_errmsg *err);

struct rb_ingest_chunk {
    char *text;                   /* UTF-8; equals doc->text[byte_start, byte_end) except a
                                   * table chunk that does not begin at its header row,
                                   * which is prefixed by the header row and "\n" */
    size_t text_len;
    size_t byte_start, byte_end;  /* into doc->text */
    size_t char_start, char_end;  /* code points */
    int32_t page_start, page_end; /* 0 when unpaged */
    char *section;                /* "3 Results > 3.2 Outcomes" or NULL */
    int32_t token_count;          /* by the count callback */
};
struct rb_ingest_chunks {
    struct rb_ingest_chunk *items; /* caller-owned, n items in document order */
    size_t n;
};
void rb_ingest_chunks_free(struct rb_ingest_chunks *c); /* frees contents */

/* Cuts doc into chunks: a chunk never spans two sections (a heading starts a
 * new chunk; only headings with nothing under them, or a parent section's
 * body shorter than min_tokens, join the subsection below), never cuts inside a sentence unless one sentence alone exceeds
 * the budget (then at a word or character boundary), and keeps table rows
 * with their header row. English sentence ends (. ! ? followed by space and
 * not an abbreviation/decimal) and CJK ends (。！？；) are recognised. */
RB_NODISCARD enum rb_status rb_ingest_chunk(const struct rb_ingest_doc *doc,
                                            const struct rb_ingest_chunk_options *opts,
                                            struct rb_ingest_chunks *out, struct rb_errmsg *err);

/* ============================================================== redaction */

/* Whether a collection's policy JSON asks for redaction at ingest:
 * {"redaction": {"ingest": true}} (absent = false). RB_ERR_INVALID, with a
 * message, when the policy is not a JSON object or "redaction" is not an
 * object of booleans: a policy that cannot be read is never ignored. */
RB_NODISCARD enum rb_status rb_ingest_policy_redacts(const char *policy_json, bool *on,
                                                     struct rb_errmsg *err);

/* Redacts personal data (every rule of the verticals module: payment cards,
 * IBAN, SSN, Chinese ID, phone, e-mail, dates of birth, MRN, account numbers)
 * in place in each chunk's text and section, and, when the pointers are
 * non-NULL, in *title and in the string values of *metadata_json (owned,
 * replaced by owned redacted copies; NULL values stay NULL). Each finding
 * becomes "[REDACTED:<TYPE>]". Offsets: byte_start/byte_end and
 * char_start/char_end keep locating the chunk in the document's text as
 * extracted, before redaction (so a chunk can still be traced to its place in
 * the source file); they are not offsets into the stored, redacted text,
 * whose length may differ. text_len is updated and token_count recounted
 * with opts->count (NULL opts = the estimate). *n_redacted (may be NULL)
 * counts the findings. RB_ERR_UNSUPPORTED when built without verticals. */
RB_NODISCARD enum rb_status rb_ingest_redact_chunks(struct rb_ingest_chunks *chunks,
                                                    const struct rb_ingest_chunk_options *opts,
                                                    char **title, char **metadata_json,
                                                    size_t *n_redacted, struct rb_errmsg *err);

struct rb_index;
/* The collection's policy applied to chunks about to be stored in it: looks
 * the policy up in idx and, when it says {"redaction": {"ingest": true}},
 * calls rb_ingest_redact_chunks. *applied (may be NULL) says whether it did.
 * The ingest pipeline and the web server's upload path both store chunks
 * through this. */
RB_NODISCARD enum rb_status rb_ingest_apply_collection_policy(
    struct rb_index *idx, int64_t collection_id, struct rb_ingest_chunks *chunks,
    const struct rb_ingest_chunk_options *opts, char **title, char **metadata_json,
    bool *applied, size_t *n_redacted, struct rb_errmsg *err);

/* ============================================================== embedding */

/* Where vectors come from: the engine's embedding model plugs in here.
 * embed() writes n * dim floats for the n texts (borrowed), in order. */
struct rb_ingest_embedder {
    void *ctx;
    int dim;
    size_t max_batch; /* texts per embed() call */
    RB_NODISCARD enum rb_status (*embed)(void *ctx, const char *const *texts, size_t n,
                                         float *out, struct rb_errmsg *err);
    /* Tokens of text, for chunk budgets; may be NULL (the estimate is used). */
    size_t (*count_tokens)(void *ctx, const char *text, size_t len);
};

struct rb_engine_model;
/* Fills *out with an embedder backed by an engine embedding model (borrowed,
 * must outlive the embedder): vectors from rb_engine_embed, token counts from
 * the model's own tokenizer (so chunk budgets are in the model's tokens).
 * RB_ERR_INVALID when the model is not an embedding model. */
RB_NODISCARD enum rb_status rb_ingest_embedder_from_engine(struct rb_engine_model *model,
                                                           struct rb_ingest_embedder *out,
                                                           struct rb_errmsg *err);

/* =============================================================== pipeline */

struct rb_index;
struct rb_ingest;

struct rb_ingest_options {
    struct rb_index *index;           /* required; borrowed, must outlive the handle */
    const struct rb_config *config;   /* may be NULL; borrowed */
    const struct rb_ingest_embedder *embedder; /* NULL = keyword-only (no vectors) */
    int max_attempts;                 /* failures before quarantine (default 5) */
    int64_t retry_base_ms;            /* back-off: base * 2^(attempts-1) (default 2000) */
};

RB_NODISCARD enum rb_status rb_ingest_open(const struct rb_ingest_options *opts,
                                           struct rb_ingest **out, struct rb_errmsg *err);
void rb_ingest_close(struct rb_ingest *ing);
const char *rb_ingest_errmsg(struct rb_ingest *ing);

/* Adds (or re-checks) a file or, recursively, a folder for collection_name
 * (created when its first job runs): enqueues one durable job per file —
 * with force, every file; without, only files whose size or mtime differ
 * from what was last indexed (a rescan) — and delete jobs for documents
 * under that path whose file is gone. Hidden and temporary files (".*",
 * "~$*", "*.tmp", "*.part", "*.swp") and symlinks are skipped. *queued gets
 * the number of jobs (may be NULL). */
RB_NODISCARD enum rb_status rb_ingest_enqueue_path(struct rb_ingest *ing,
                                                   const char *collection_name, const char *path,
                                                   bool force, size_t *queued);
/* Jobs not yet finished (queued or running) whose path is `path` or under it. */
RB_NODISCARD enum rb_status rb_ingest_pending(struct rb_ingest *ing, const char *path,
                                              int64_t *n);
/* Last recorded outcome of a file: "indexed", "failed" (will retry),
 * "quarantined", or NULL when unknown; error text into *error (caller frees,
 * may be NULL). */
RB_NODISCARD enum rb_status rb_ingest_file_state(struct rb_ingest *ing, const char *collection,
                                                 const char *path, char **state, char **error);

struct rb_ingest_job_result {
    char *path;         /* absolute */
    char *collection;
    char *action;       /* "added", "updated", "unchanged", "renamed", "deleted", "failed",
                         * "quarantined", "retry" */
    char *error;        /* NULL unless failed */
    int64_t document_id;
    int64_t chunks;
    int64_t pages;
    double seconds;
};
void rb_ingest_job_result_clear(struct rb_ingest_job_result *r);

/* Runs the next due job (idempotent: safe to re-run after a crash at any
 * point). Returns RB_ERR_NOT_FOUND when no job is due; *next_due_us then says
 * when the next delayed retry is due (0 = none). r may be NULL. */
RB_NODISCARD enum rb_status rb_ingest_run_one(struct rb_ingest *ing,
                                              struct rb_ingest_job_result *r,
                                              int64_t *next_due_us);

struct rb_ingest_status {
    int64_t queued;      /* jobs due or waiting for retry */
    int64_t running;     /* jobs marked running (of a live or crashed worker) */
    int64_t done;        /* jobs completed since the queue was created */
    int64_t failed;      /* files whose last attempt failed and that will be retried */
    int64_t quarantined; /* files given up after max_attempts */
    int64_t files;       /* files tracked */
    double pages_per_s;  /* throughput of the last 100 completed jobs */
    double docs_per_s;
};
RB_NODISCARD enum rb_status rb_ingest_get_status(struct rb_ingest *ing,
                                                 struct rb_ingest_status *st);
/* Failures (path, reason, attempts) as a JSON array string (caller frees). */
RB_NODISCARD enum rb_status rb_ingest_failures_json(struct rb_ingest *ing, size_t limit,
                                                    char **out);
/* Requeues quarantined files (clears their attempt counts). */
RB_NODISCARD enum rb_status rb_ingest_retry_quarantined(struct rb_ingest *ing, size_t *n);

/* The daemon loop: watches every folder of [ingest] watch = "DIR:collection,
 * DIR2:collection2" with inotify (recursive), rescans every rescan_s seconds
 * (default 300) and at start, and drains the queue until *stop becomes true
 * (set it from a signal handler). */
RB_NODISCARD enum rb_status rb_ingest_daemon_run(struct rb_ingest *ing,
                                                 volatile int *stop);

#endif
