/* ragbox answer: the question path.
 *
 *   question -> language (EN/ZH) -> hybrid retrieval over the collections the
 *   caller may read -> context packed to the model's token budget (deduplicated,
 *   ordered, labelled "[n] document p. page §section") -> the vertical's prompt
 *   template -> streaming generation (local engine or a remote OpenAI-compatible
 *   server) or extractive selection -> citations [n] mapped back to chunks ->
 *   cite-or-refuse -> audit record.
 *
 * The building blocks (language detection, term extraction, sentence
 * splitting, the extractive scorer, context packing, citation parsing, the
 * refusal policy and the generation backends) are public so the web server,
 * the batch runner and the evaluator use exactly the same code.
 *
 * Thread-safety: the pure functions are thread-safe. A struct rb_answer_backend
 * serves one generation at a time (callers serialise, or open one per thread;
 * the remote backend is cheap to open). A struct rb_answerer (the pipeline)
 * is used by one thread at a time; the batch runner opens one per worker.
 *
 * Ownership: every pointer documented as "owned" in a result struct is freed
 * by the matching *_free function; "borrowed" pointers stay owned by their
 * source and are valid for the stated lifetime.
 */
#ifndef RAGBOX_ANSWER_H
#define RAGBOX_ANSWER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ragbox/common.h"
#include "ragbox/index.h"

/* ============================================================== language */

enum rb_answer_lang { RB_ANSWER_LANG_EN = 0, RB_ANSWER_LANG_ZH = 1 };

/* Chinese when at least 30 % of the letters are CJK (a question mixing a few
 * English terms into Chinese is Chinese), English otherwise. */
enum rb_answer_lang rb_answer_detect_lang(const char *text, size_t len);
const char *rb_answer_lang_code(enum rb_answer_lang lang); /* "en" / "zh", static */

/* ================================================================= terms */

/* The scoring terms of a text: lower-cased Latin words and numbers (English
 * stop-words and question words removed, numbers normalised: "1,234.50" ->
 * "1234.50"), and for CJK runs the characters and their overlapping bigrams. Chinese function words (的, 是, 什么, 多少 ...)
 * are removed before bigramming. */
struct rb_answer_terms {
    char **term; /* owned array of n owned strings, in text order, duplicates kept */
    size_t n;
};
RB_NODISCARD enum rb_status rb_answer_terms_extract(const char *text, size_t len,
                                                    struct rb_answer_terms *out);
void rb_answer_terms_free(struct rb_answer_terms *t);

/* ============================================================= sentences */

/* Byte spans [start, end) of the sentences of text (English . ! ? followed by
 * a space and not an abbreviation or a decimal point; Chinese 。！？；;
 * line breaks; a table row "a | b | c" is its own sentence). Whitespace-only
 * spans are dropped. Caller frees *spans (pairs: spans[2i], spans[2i+1]). */
RB_NODISCARD enum rb_status rb_answer_split_sentences(const char *text, size_t len,
                                                      size_t **spans, size_t *n);

/* ============================================================== passages */

/* A retrieved chunk as the answer path sees it (filled from the index). */
struct rb_answer_passage {
    int64_t chunk_id;
    int64_t document_id;
    char *document;   /* owned: document title or file name */
    char *doc_hash;   /* owned: SHA-256 hex of the source document, may be NULL */
    char *collection; /* owned, may be NULL */
    int page;         /* 1-based page, 0 when the format has no pages */
    char *section;    /* owned, may be NULL */
    char *text;       /* owned: chunk text (UTF-8) */
    double score;     /* retrieval score (higher is better; fused hybrid score) */
    double keyword_score; /* BM25 leg (higher better), 0 when absent */
    double vector_score;  /* cosine leg, 0 when absent */
};
void rb_answer_passage_clear(struct rb_answer_passage *p);

/* ============================================================ extractive */

struct rb_answer_extract_options {
    size_t max_sentences;  /* default 3 */
    size_t max_chars;      /* whole answer, default 800 bytes */
    double rank_weight;    /* weight of the chunk-rank prior, default 0.15 */
    double min_relative;   /* keep sentences scoring >= this * best, default 0.55 */
};

/* One selected sentence: a copy of its text and the passage it came from. */
struct rb_answer_sentence {
    char *text;     /* owned */
    size_t passage; /* index into the passages given */
    double score;
    double coverage; /* idf-weighted fraction of the question's terms it contains, 0..1 */
};

struct rb_answer_extract {
    struct rb_answer_sentence *sentence; /* owned array of n, best first */
    size_t n;
    double best_coverage; /* coverage of the question by the best single passage, 0..1 */
};

/* Scores every sentence of every passage against the question (BM25 over
 * sentences with idf from the retrieved pool, CJK bigrams, plus a prior on
 * the passage's retrieval rank) and picks the best-supported ones, skipping
 * near-duplicates. passages are in rank order. opts may be NULL. */
RB_NODISCARD enum rb_status rb_answer_extract(const char *question,
                                              const struct rb_answer_passage *passages,
                                              size_t n_passages,
                                              const struct rb_answer_extract_options *opts,
                                              struct rb_answer_extract *out);
void rb_answer_extract_free(struct rb_answer_extract *e);

/* idf-weighted fraction of the question's terms that occur in text (0..1);
 * idf from the pool of texts given (pool may be the passages themselves). */
double rb_answer_coverage(const char *question, const char *text,
                          const struct rb_answer_passage *pool, size_t n_pool);

/* ============================================================ packing */

/* Counts tokens of a text for the model in use; NULL = estimate (one token per
 * CJK character, one per 4 other bytes). */
typedef size_t (*rb_answer_count_fn)(void *user, const char *text, size_t len);

struct rb_answer_packed {
    char *context;       /* owned: "[1] doc p. 3 §Sec\ntext\n\n[2] ..." */
    size_t *passage_of;  /* owned: label n (1-based) -> passage index: passage_of[n-1] */
    size_t n_labels;
    size_t tokens;       /* tokens used by the context */
    size_t n_dropped;    /* passages left out (duplicates or no room) */
};
/* Packs passages (rank order) into at most budget tokens: exact and near
 * duplicates (same chunk, or > 90 % shared terms with one already packed) are
 * skipped; a passage that does not fit whole is truncated on a sentence
 * boundary when at least 200 tokens remain, otherwise dropped. Labels follow
 * rank order. */
RB_NODISCARD enum rb_status rb_answer_pack(const struct rb_answer_passage *passages, size_t n,
                                           size_t budget, rb_answer_count_fn count,
                                           void *count_user, struct rb_answer_packed *out);
void rb_answer_packed_free(struct rb_answer_packed *p);
/* The label line of a passage: "document p. 3 §section" (caller frees). */
char *rb_answer_source_label(const struct rb_answer_passage *p);

/* ============================================================ citations */

/* Citation labels used in an answer: "[1]", "[1, 3]", "[1][2]", "[1-3]",
 * "【1】", "［1］". Distinct labels in order of first use, each in 1..max_label
 * (others are returned in *invalid so callers can detect invented sources).
 * Caller frees *labels. */
RB_NODISCARD enum rb_status rb_answer_parse_citations(const char *answer, size_t max_label,
                                                      int **labels, size_t *n,
                                                      size_t *invalid);

/* The refusal text in the question's language; reason is
 * RB_ANSWER_REFUSE_NO_EVIDENCE or RB_ANSWER_REFUSE_UNCITED. Static storage. */
enum rb_answer_refusal {
    RB_ANSWER_REFUSE_NONE = 0,
    RB_ANSWER_REFUSE_NO_EVIDENCE,  /* nothing retrieved, or evidence below the threshold */
    RB_ANSWER_REFUSE_UNCITED,      /* the model's answer cites nothing that was retrieved */
    RB_ANSWER_REFUSE_POLICY,       /* the vertical's policy forbids answering */
};
const char *rb_answer_refusal_text(enum rb_answer_refusal reason, enum rb_answer_lang lang);
const char *rb_answer_refusal_name(enum rb_answer_refusal reason); /* "no_evidence", ... */

/* ============================================================ backends */

/* One chat message (borrowed strings). */
struct rb_answer_message {
    const char *role; /* "system", "user", "assistant" */
    const char *content;
};

/* Streaming callback: a piece of generated UTF-8 text (not NUL-terminated).
 * Return false to stop generation (the call then returns RB_ERR_CANCELLED). */
typedef bool (*rb_answer_stream_fn)(void *user, const char *piece, size_t len);

struct rb_answer_gen_params {
    int max_tokens;     /* default 512 */
    float temperature;  /* default 0 (greedy) */
    float top_p;        /* default 1 */
    uint64_t seed;      /* 0 = fixed default */
};

struct rb_answer_backend;

/* The generic interface (a struct of function pointers, as engine backends). */
struct rb_answer_backend_ops {
    const char *name; /* "local", "remote" */
    enum rb_status (*generate)(struct rb_answer_backend *b, const struct rb_answer_message *msgs,
                               size_t n_msgs, const struct rb_answer_gen_params *params,
                               rb_answer_stream_fn on_piece, void *user, char **text);
    size_t (*count_tokens)(struct rb_answer_backend *b, const char *text, size_t len);
    void (*close)(struct rb_answer_backend *b);
};

struct rb_answer_backend {
    const struct rb_answer_backend_ops *ops;
    size_t context_tokens;  /* the model's context window */
    char model_id[256];     /* model name (remote) or file name (local) */
    char model_hash[RB_SHA256_HEX_LEN + 1]; /* SHA-256 of the GGUF file; "" when remote */
    struct rb_errmsg err;
};

/* Generates a reply to msgs, streaming pieces to on_piece (may be NULL); the
 * whole reply in *text (caller frees) when text is non-NULL. */
RB_NODISCARD enum rb_status rb_answer_backend_generate(struct rb_answer_backend *b,
                                                       const struct rb_answer_message *msgs,
                                                       size_t n_msgs,
                                                       const struct rb_answer_gen_params *params,
                                                       rb_answer_stream_fn on_piece, void *user,
                                                       char **text);
size_t rb_answer_backend_count_tokens(struct rb_answer_backend *b, const char *text, size_t len);
const char *rb_answer_backend_errmsg(const struct rb_answer_backend *b);
void rb_answer_backend_close(struct rb_answer_backend *b); /* NULL ok */

/* Remote OpenAI-compatible server (vLLM, TGI, llama.cpp server, ragbox web):
 * POST {base_url}/chat/completions with "stream": true, Server-Sent Events.
 * TLS verification is on unless insecure; ca_file adds a private CA. A
 * transient failure (connect error, timeout before the first byte, HTTP 429
 * or 5xx) is retried up to `retries` times with exponential back-off starting
 * at backoff_ms (doubling, capped at 8 s, honouring Retry-After); once tokens
 * have streamed to the caller there is no retry. */
struct rb_answer_remote_options {
    const char *base_url;   /* e.g. "https://gpu1:8000/v1" (required) */
    const char *model;      /* model name sent in the request (required) */
    const char *api_key;    /* bearer token, may be NULL */
    const char *ca_file;    /* PEM CA bundle, may be NULL */
    bool insecure;          /* skip TLS verification (testing only) */
    long connect_timeout_ms; /* default 5000 */
    long timeout_ms;        /* whole request, default 120000 */
    long idle_timeout_ms;   /* abort when no byte arrives for this long, default 30000 */
    int retries;            /* default 3 */
    long backoff_ms;        /* default 250 */
    size_t context_tokens;  /* the server model's window, default 8192 */
};
RB_NODISCARD enum rb_status rb_answer_backend_open_remote(const struct rb_answer_remote_options *o,
                                                          struct rb_answer_backend **out,
                                                          struct rb_errmsg *err);

/* The local engine on a GGUF generation model (the default backend). The
 * model's own chat template is used; chat_template names one ("chatml",
 * "llama3", "llama2", "phi3") for a model that carries none, else a model
 * without a template is prompted as a completion model. model_hash is the
 * SHA-256 of the file (for the audit trail). */
struct rb_answer_local_options {
    const char *model_path;    /* required */
    int n_ctx;                 /* 0 = the model's, capped at 4096 */
    int n_threads;             /* 0 = all cores */
    const char *chat_template; /* NULL = the model's own */
};
RB_NODISCARD enum rb_status rb_answer_backend_open_local(const struct rb_answer_local_options *o,
                                                         struct rb_answer_backend **out,
                                                         struct rb_errmsg *err);

/* ================================================================ results */

/* One source the answer cites (label [n] in the answer text). */
struct rb_answer_citation {
    int label;           /* the n of [n] */
    int64_t chunk_id;
    int64_t document_id;
    char *document;      /* owned */
    char *doc_hash;      /* owned, may be NULL */
    char *collection;    /* owned, may be NULL */
    int page;            /* 1-based, 0 = none */
    char *section;       /* owned, may be NULL */
    char *text;          /* owned: the chunk text */
    double score;        /* retrieval score */
};

enum rb_answer_mode {
    RB_ANSWER_MODE_AUTO = 0,   /* generate when a backend is configured, else extractive */
    RB_ANSWER_MODE_EXTRACTIVE, /* best-supported sentences, no LLM */
    RB_ANSWER_MODE_GENERATE,   /* LLM (error when no backend) */
};

struct rb_answer_result {
    char *answer;             /* owned: the text shown to the user (refusal text when refused) */
    bool refused;
    enum rb_answer_refusal refusal;
    enum rb_answer_lang lang;
    const char *mode_used;    /* static: "extractive", "local", "remote" */
    struct rb_answer_citation *citation; /* owned array of n_citations, label order */
    size_t n_citations;
    struct rb_answer_passage *passage;   /* owned: what retrieval returned, rank order */
    size_t n_passages;
    double evidence;          /* best passage coverage of the question, 0..1 */
    double threshold;         /* the vertical's refusal threshold applied */
    char *withheld;           /* owned: a generated answer withheld as uncited, or NULL */
    char *vertical;           /* owned */
    char *template_id;        /* owned: "finance/answer.en" etc., may be NULL */
    char *template_version;   /* owned, may be NULL */
    char model_hash[RB_SHA256_HEX_LEN + 1];
    char audit_id[96];        /* "" when not audited */
    int64_t latency_ms;
    size_t context_tokens;    /* tokens of packed context */
    char *draft;              /* owned: drafting kind ("notice", "reply"), NULL = an answer */
    bool redacted;            /* answer, citation and passage texts went through PII
                                 redaction (collection policy / pack apply_to_answers) */
    size_t n_redactions;      /* findings replaced in the answer and citation texts */
};
void rb_answer_result_free(struct rb_answer_result *r); /* frees members; NULL ok */

/* The result as JSON: {answer, refused, refusal, lang, mode, citations:[{label,
 * document, page, section, chunk_id, document_id, doc_hash, text, score}],
 * evidence, threshold, audit_id, latency_ms, vertical, template, model_hash}
 * (+ "retrieved" with passages when with_passages). Caller cJSON_Deletes. */
cJSON *rb_answer_result_json(const struct rb_answer_result *r, bool with_passages);

/* Builds the extractive answer from the selected sentences: each sentence
 * followed by its source label [n], labels numbered by first use; fills
 * r->answer and r->citation from passages. disclaimer (may be NULL) is
 * appended on its own paragraph. */
RB_NODISCARD enum rb_status rb_answer_compose_extractive(const struct rb_answer_extract *ex,
                                                         const struct rb_answer_passage *passages,
                                                         const char *disclaimer,
                                                         struct rb_answer_result *r);

/* Maps the labels [n] of a generated answer to citations through the packed
 * context (label n -> passages[packed->passage_of[n-1]]). Returns the number
 * of valid distinct labels in *n_cited. */
RB_NODISCARD enum rb_status rb_answer_map_citations(const char *answer,
                                                    const struct rb_answer_packed *packed,
                                                    const struct rb_answer_passage *passages,
                                                    struct rb_answer_result *r, size_t *n_cited);

/* ============================================================== respond */

/* The answer policy of a vertical (from its pack, measured thresholds). */
struct rb_answer_policy {
    double min_evidence;     /* refuse when the best passage covers less of the question */
    const char *disclaimer;  /* appended to every non-refused answer, may be NULL (borrowed) */
    bool figures_from_sources; /* refuse a generated answer quoting a figure (number) that no
                                  cited source contains (finance figures, medical dosages) */
    size_t max_sentences;    /* extractive: sentences to show, 0 = 3 */
    const char *refusal;     /* the pack's no-evidence refusal text in the question's
                                language, NULL = the built-in one (borrowed) */
    bool redact_answers;     /* the pack's [redaction] apply_to_answers (a collection's
                                policy may override it) */
    bool doses_from_sources; /* healthcare (never_invent_dosages): refuse a generated answer
                                stating a dose ("<number> <unit>": mg, mcg, g, ml, IU, units,
                                tablets, 毫克, 片 ...) that no cited source states with the
                                same number and unit, single digits included */
};

/* Renders the vertical's prompt template: the system and user messages for
 * the packed context and the question (caller frees both). */
typedef enum rb_status (*rb_answer_render_fn)(void *user, const char *context,
                                              const char *question, enum rb_answer_lang lang,
                                              char **system, char **user_message);

struct rb_answer_respond_options {
    const char *question;
    enum rb_answer_mode mode;
    struct rb_answer_backend *backend; /* borrowed; NULL = extractive */
    const struct rb_answer_policy *policy;
    rb_answer_render_fn render;        /* required when generating */
    void *render_user;
    struct rb_answer_gen_params gen;
    size_t context_budget;             /* context tokens; 0 = backend window - prompt - answer */
    /* Streaming: pieces of the answer as produced (the extractive answer in
     * one piece). When generation ends uncited the result is a refusal that
     * supersedes what was streamed; consumers show the final result.answer. */
    rb_answer_stream_fn on_piece;
    void *stream_user;
    /* Text whose figures a generated answer may quote besides the cited
     * sources (policy figures_from_sources): drafting passes the request and
     * the issuing date. NULL for answers: a figure must come from a source. */
    const char *figures_allowed;
    /* What the evidence check measures against the passages, NULL = question
     * (drafting passes the request without its drafting instructions). */
    const char *evidence_question;
};

/* Steps after retrieval: evidence check, packing, prompt, generation or
 * extraction, citation mapping, cite-or-refuse. Takes ownership of the
 * passages array (n, rank order; freed with the result, also on error). */
RB_NODISCARD enum rb_status rb_answer_respond(const struct rb_answer_respond_options *o,
                                              struct rb_answer_passage *passages, size_t n,
                                              struct rb_answer_result *out,
                                              struct rb_errmsg *err);

/* ============================================================= answerer */

/* The whole question path over the index: retrieval (hybrid, keyword or
 * vector) restricted to the requested collections and the caller's ACL,
 * then rb_answer_respond, then the audit record. */

/* Embeds a query for the vector leg: *vec is caller-freed, *dim its length. */
typedef enum rb_status (*rb_answer_embed_fn)(void *user, const char *text, float **vec, int *dim);
#ifdef RAGBOX_ANSWER_HAVE_LOCAL
/* rb_answer_embed_fn over the engine: user is a struct rb_engine_model * opened
 * as an embedding model (safe from several threads, as the engine's model is). */
RB_NODISCARD enum rb_status rb_answer_engine_embed(void *user, const char *text, float **vec,
                                                   int *dim);
#endif

/* Redacts personal data in text (UTF-8, len bytes): a malloc'd NUL-terminated
 * copy with each finding replaced by "[REDACTED:<TYPE>]", NULL when out of
 * memory. Same signature as rb_redact_audit_hook (verticals). */
typedef char *(*rb_answer_redact_fn)(void *user, const char *text, size_t len);

/* Per-collection answer policy, read from the collection's policy JSON
 * (rb_index_collection.policy_json):
 *   {"redaction": {"answers": true|false, "ingest": true|false}}
 * "answers" absent = the vertical pack's [redaction] apply_to_answers. Sets
 * *answers_set when the key is present. Malformed JSON or a non-boolean value
 * is RB_ERR_INVALID (a policy that cannot be read is not silently ignored). */
RB_NODISCARD enum rb_status rb_answer_policy_redacts_answers(const char *policy_json,
                                                             bool *answers_set, bool *answers);

/* What the audit trail receives for each ask (all borrowed for the call). */
struct rb_answer_audit_event {
    const char *user;          /* may be NULL */
    const char *client;        /* client address, may be NULL */
    const char *collections;   /* comma-separated names */
    const char *vertical;
    const char *question;      /* raw: the audit side redacts it per the vertical */
    const struct rb_answer_result *result; /* retrieved chunks, citations, answer, outcome */
    const char *outcome;       /* "answered", "refused", "error" */
    const char *error;         /* when outcome is "error" */
};
/* Records the event; writes the record id into audit_id (size bytes). */
typedef enum rb_status (*rb_answer_audit_fn)(void *user, const struct rb_answer_audit_event *ev,
                                             char *audit_id, size_t size);

/* The vertical's pack as the answerer uses it: policy and the template
 * `template_name` ("answer", or "draft-notice" / "draft-reply" in drafting
 * mode). A template other than "answer" that the pack does not declare is
 * RB_ERR_NOT_FOUND (the answerer reports which templates the pack has). */
typedef enum rb_status (*rb_answer_vertical_fn)(void *user, const char *vertical,
                                                enum rb_answer_lang lang,
                                                const char *template_name,
                                                struct rb_answer_policy *policy,
                                                rb_answer_render_fn *render, void **render_user,
                                                const char **template_id,
                                                const char **template_version);

struct rb_answerer_options {
    struct rb_index *index;            /* required, borrowed (shared by threads) */
    struct rb_answer_backend *backend; /* borrowed, NULL = extractive only */
    rb_answer_embed_fn embed;          /* NULL = no vector leg */
    void *embed_user;
    rb_answer_audit_fn audit;          /* NULL = not audited (tests, eval) */
    void *audit_user;
    rb_answer_vertical_fn vertical;    /* NULL = the built-in policy defaults and no template */
    void *vertical_user;
    rb_answer_redact_fn redact;        /* PII redaction of answers (collection policy / pack
                                        * apply_to_answers); NULL = none available: a request
                                        * whose policy demands redaction then fails */
    void *redact_user;
    int k;                             /* passages to retrieve, default 8 */
    int max_tokens;                    /* answer length, default 512 */
};

struct rb_answer_request {
    const char *question;
    const char *const *collections;    /* names, n_collections >= 1 */
    size_t n_collections;
    const char *vertical;              /* NULL = "general" */
    enum rb_answer_mode mode;
    enum rb_index_mode retrieval;      /* AUTO = hybrid when an embedder is set */
    int k;                             /* 0 = the answerer's */
    rb_index_allow_fn allow;           /* the caller's ACL, NULL = all */
    void *allow_ctx;
    const char *user;
    const char *client;
    rb_answer_stream_fn on_piece;      /* may be NULL */
    void *stream_user;
    /* Drafting mode (NULL/"" = an ordinary answer): "notice" or "reply" drafts
     * an official notice / reply letter from the retrieved sources with the
     * pack's template draft-<kind> (government). Needs a generation backend:
     * extractive mode (explicit, or no model configured) is RB_ERR_CONFIG; an
     * unknown kind is RB_ERR_INVALID; a pack without the template is
     * RB_ERR_NOT_FOUND. The question is the drafting request. */
    const char *draft;
};

/* Drafting kinds accepted in rb_answer_request.draft, NULL-terminated. */
extern const char *const rb_answer_draft_kinds[];

struct rb_answerer;
RB_NODISCARD enum rb_status rb_answerer_open(const struct rb_answerer_options *o,
                                             struct rb_answerer **out, struct rb_errmsg *err);
void rb_answerer_close(struct rb_answerer *a);
/* Answers; on RB_OK *out holds the answer or refusal (free with
 * rb_answer_result_free). Errors (bad collection, model failure) are audited
 * too, with *out still freed by the caller. */
RB_NODISCARD enum rb_status rb_answerer_ask(struct rb_answerer *a,
                                            const struct rb_answer_request *req,
                                            struct rb_answer_result *out, struct rb_errmsg *err);

/* Retrieval only (also used by eval): passages for the question, rank order;
 * *passages caller-owned (rb_answer_passages_free). */
RB_NODISCARD enum rb_status rb_answerer_retrieve(struct rb_answerer *a,
                                                 const struct rb_answer_request *req,
                                                 struct rb_answer_passage **passages, size_t *n,
                                                 struct rb_errmsg *err);
void rb_answer_passages_free(struct rb_answer_passage *p, size_t n);

/* The built-in refusal thresholds per vertical and language (measured on the
 * dev sets with `ragbox eval`; see answerer.c). Unknown verticals get "general". */
double rb_answer_default_min_evidence(const char *vertical, enum rb_answer_lang lang);

/* ================================================================= batch */

/* A batch job: every row of a question table (column "question", optional
 * "id") answered by `workers` threads, each with its own worker handle from
 * open_worker. Results stream into a journal beside the output
 * (<out>.journal, one JSON line per finished question, flushed and fsync'd),
 * so an interrupted or killed job resumes without redoing finished questions;
 * the journal records the SHA-256 of the question file and a resumed job with
 * a changed question file is refused. When every row is done the output is
 * written (JSONL, CSV or XLSX by extension, in question order) and the journal
 * removed. *stop (may be NULL), set from a signal handler, stops taking new
 * questions; finished ones stay in the journal (RB_ERR_CANCELLED). */
struct rb_answer_batch_ops {
    RB_NODISCARD enum rb_status (*open_worker)(void *user, void **worker, struct rb_errmsg *err);
    /* Answers one question into *out (zeroed by the caller). A failure is
     * recorded for that row (column "error") and the job goes on. */
    RB_NODISCARD enum rb_status (*ask)(void *worker, const char *id, const char *question,
                                       struct rb_answer_result *out, struct rb_errmsg *err);
    void (*close_worker)(void *worker);
    void *user;
};

struct rb_answer_batch_options {
    const char *questions_path; /* .jsonl, .csv or .xlsx */
    const char *out_path;       /* .jsonl, .csv or .xlsx */
    int workers;                /* default 1, max 64 */
    bool progress;              /* draw a progress bar with ETA on stderr */
    bool restart;               /* discard an existing journal */
    volatile int *stop;         /* may be NULL */
};

struct rb_answer_batch_summary {
    size_t total;      /* questions in the file */
    size_t resumed;    /* already done in the journal before this run */
    size_t answered;   /* done with an answer (all runs) */
    size_t refused;    /* done with a refusal (all runs) */
    size_t failed;     /* done with an error (all runs) */
    size_t asked_now;  /* questions answered by this run */
    double seconds;    /* this run's wall time */
    double mean_latency_ms; /* over this run's questions */
};

RB_NODISCARD enum rb_status rb_answer_batch_run(const struct rb_answer_batch_options *o,
                                                const struct rb_answer_batch_ops *ops,
                                                struct rb_answer_batch_summary *summary,
                                                struct rb_errmsg *err);

/* ============================================================ evaluation */

/* Ranking metrics of one query with binary relevance: ranked[i] is true when
 * the i-th result (0-based) is relevant; n_relevant is the number of relevant
 * items that exist. recall_at[k] for k = 1..max_k (fraction of the relevant
 * items in the top k; with one gold document: hit or not). */
struct rb_answer_ranking {
    double recall_at[21]; /* index k = 1..20 */
    double mrr;           /* 1 / rank of the first relevant result, 0 when none */
    double ndcg10;
};
void rb_answer_rank_metrics(const bool *ranked, size_t n_ranked, size_t n_relevant,
                            struct rb_answer_ranking *out);

/* Whether an answer agrees with a short gold answer:
 *  - yes/no/maybe (also YES/NO): the verdict the answer opens with or states
 *    ("Yes, ...", "The answer is no", 是/否/不是);
 *  - a figure: a number in the answer equal to the gold's within 0.5 %
 *    (scale words and units, "%", "$", "million", thousand separators ignored);
 *  - otherwise a span: the normalised gold text (lower case, no punctuation or
 *    spaces) is contained in the normalised answer.
 * Returns -1 when the gold answer is not short (longer than 12 words / 40
 * characters), so callers skip it. */
int rb_answer_match_gold(const char *answer, const char *gold);

/* `ragbox eval` over the development sets (see answer/src/eval.c). */
typedef enum rb_status (*rb_answer_ingest_fn)(void *user, struct rb_index *idx,
                                              int64_t collection_id, const char *path,
                                              struct rb_errmsg *err);
struct rb_answer_eval_options {
    struct rb_index *index;        /* where the eval-<set> collections live (borrowed) */
    const char *sets_dir;          /* e.g. ../shared/eval */
    const char *const *sets;       /* set names, NULL = all six */
    size_t n_sets;
    size_t limit;                  /* questions per set, 0 = all */
    int k;                         /* retrieval depth for the metrics, default 10 */
    int answer_k;                  /* passages given to the answer, default 5 */
    bool have_vectors;             /* run the vector and hybrid legs (needs embed) */
    rb_answer_embed_fn embed;
    void *embed_user;
    rb_answer_ingest_fn ingest;    /* NULL = built-in .txt paragraph chunker */
    void *ingest_user;
    bool reingest;                 /* rebuild the collections even when complete */
    struct rb_answer_backend *backend; /* NULL = extractive answers */
    rb_answer_render_fn render;
    void *render_user;
    double min_evidence;           /* < 0 = the per-vertical defaults */
    const char *out_dir;           /* eval-report.md and eval-report.json go here */
    bool progress;                 /* progress lines on stderr */
    bool print;                    /* print the markdown report on stdout */
};
RB_NODISCARD enum rb_status rb_answer_eval_run(const struct rb_answer_eval_options *o,
                                               struct rb_errmsg *err);

/* ================================================================ forget */

/* Right to be forgotten. Removes documents (by source or id), or every chunk
 * whose text mentions one of a person's identifiers (case-insensitive, spaces
 * folded) plus whole documents whose source, title or metadata mention them;
 * then rebuilds the keyword index from the remaining chunks (FTS5 keeps
 * deleted terms in old segments), rewrites the vector files, VACUUMs the
 * database and truncates its WAL, so the text is gone from every file of the
 * data directory. Partially affected documents keep their other chunks
 * (without vectors, which cannot be recomputed here: re-ingest the document
 * to restore them). The report says what went, for the audit tombstone,
 * without the identifiers. */
struct rb_answer_forget_request {
    const char *collection;
    const char *const *documents;   /* source paths or numeric ids */
    size_t n_documents;
    const char *const *identifiers; /* a person's identifiers (>= 2 characters each) */
    size_t n_identifiers;
    bool dry_run;
};
struct rb_answer_forget_report {
    size_t documents;         /* removed whole */
    size_t partial_documents; /* lost some chunks */
    size_t chunks;            /* chunks removed in partial documents */
    int64_t *document_ids;    /* owned: every affected document, n_affected */
    char **doc_hashes;        /* owned: their SHA-256 (may be NULL entries) */
    size_t n_affected;
};
RB_NODISCARD enum rb_status rb_answer_forget(struct rb_index *idx,
                                             const struct rb_answer_forget_request *req,
                                             struct rb_answer_forget_report *report,
                                             struct rb_errmsg *err);
void rb_answer_forget_report_free(struct rb_answer_forget_report *r);

/* ============================================================ environment */

/* What a deployment wires into an answerer: the vertical packs (policy,
 * prompt templates, per-language disclaimers and refusals) and the audit
 * trail with PII redaction (every ask is recorded: redacted question,
 * retrieved chunk ids + document hashes, model hash, template + version,
 * answer or its hash per [audit] answers, outcome, latency). Built only when
 * the audit and verticals modules are part of the build (RAGBOX_ANSWER_HAVE_ENV).
 * Thread-safe: packs are opened once and shared; audit appends are serialised
 * by the audit module. */
struct rb_answer_env;
struct rb_answer_env_options {
    const char *data_dir;          /* required */
    const struct rb_config *config; /* [audit], [verticals], [answer] sections; may be NULL */
    bool audit;                    /* open the audit trail (false: packs only, e.g. eval) */
};
RB_NODISCARD enum rb_status rb_answer_env_open(const struct rb_answer_env_options *o,
                                               struct rb_answer_env **out,
                                               struct rb_errmsg *err);
void rb_answer_env_close(struct rb_answer_env *env);
/* Sets o->vertical/vertical_user and (when audited) o->audit/audit_user. */
void rb_answer_env_apply(struct rb_answer_env *env, struct rb_answerer_options *o);
/* The vertical hook alone (eval uses it for templates and policies). */
enum rb_status rb_answer_env_vertical(void *env, const char *vertical, enum rb_answer_lang lang,
                                      const char *template_name,
                                      struct rb_answer_policy *policy,
                                      rb_answer_render_fn *render, void **render_user,
                                      const char **template_id, const char **template_version);
/* Records a forget tombstone (no identifiers, only counts and hashes). */
RB_NODISCARD enum rb_status rb_answer_env_tombstone(struct rb_answer_env *env, const char *user,
                                                    const char *collection,
                                                    const struct rb_answer_forget_request *req,
                                                    const struct rb_answer_forget_report *rep,
                                                    char *audit_id, size_t size,
                                                    struct rb_errmsg *err);

/* ================================================================ tables */

/* Question and result tables for batch jobs: JSON Lines (one object per line;
 * columns are the union of keys), CSV (RFC 4180, first row = header, UTF-8,
 * an Excel BOM is skipped) and XLSX (first worksheet, first row = header).
 * Limits: 256 MiB, 1 000 000 rows, 256 columns. */
enum rb_answer_format {
    RB_ANSWER_FORMAT_UNKNOWN = 0,
    RB_ANSWER_FORMAT_JSONL,
    RB_ANSWER_FORMAT_CSV,
    RB_ANSWER_FORMAT_XLSX,
};
enum rb_answer_format rb_answer_format_from_path(const char *path); /* by extension */

struct rb_answer_table {
    char **header; /* owned array of n_cols owned strings */
    char **cell;   /* owned row-major n_rows * n_cols owned strings (NULL = empty) */
    size_t n_rows, n_cols;
};
RB_NODISCARD enum rb_status rb_answer_table_read(const char *path, struct rb_answer_table *out,
                                                 struct rb_errmsg *err);
/* Writes atomically in the format of path's extension. In JSONL a cell whose
 * text is a JSON array/object/true/false is written as JSON; in CSV cells that
 * start with = + - @ are prefixed with ' (no formula injection). */
RB_NODISCARD enum rb_status rb_answer_table_write(const char *path,
                                                  const struct rb_answer_table *t,
                                                  struct rb_errmsg *err);
/* Borrowed cell of `column` (case-insensitive) in row, NULL when absent/empty. */
const char *rb_answer_table_get(const struct rb_answer_table *t, size_t row, const char *column);
void rb_answer_table_free(struct rb_answer_table *t);

#endif
