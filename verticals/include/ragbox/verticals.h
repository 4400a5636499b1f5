/* ragbox verticals: the packs (general, finance, healthcare, government) and
 * the redaction rules.
 *
 * A pack is a directory an administrator can edit:
 *   <pack>/pack.ini                 policy (INI, read with rb_config): [pack] name,
 *                                   version, description; [answer] thresholds,
 *                                   disclaimer_en/_zh, refusal_en/_zh, flags;
 *                                   [chunking] chunk_tokens, overlap_tokens;
 *                                   [redaction] rules, apply_to_*, account_context
 *   <pack>/headings.txt             optional: one PCRE2 heading pattern per line
 *   <pack>/templates/<name>.<lang>.tmpl   prompt templates (format below)
 * Packs are looked up, first hit wins, in: the configured [verticals] dir,
 * <data>/verticals, $RAGBOX_VERTICALS_DIR, /usr/share/ragbox/verticals, and the
 * source tree's verticals/packs (developer builds).
 *
 * Template file format (UTF-8, '#' comment lines only in the header):
 *   name: answer
 *   version: 2026.11-1
 *   lang: en
 *   --- system
 *   ...system prompt text, may use placeholders...
 *   --- user
 *   ...context block and question, must use {{context}} and {{question}}...
 * Placeholders: {{context}} {{question}} {{disclaimer}} {{rules}} {{date}}
 * {{collection}} {{vertical}} {{language}} {{title}} {{authority}} (the issuing authority of
 * drafted documents: pack.ini [drafting] authority_<lang>, else a bracketed placeholder).
 * Unknown placeholders, a missing required
 * one, bad UTF-8, a missing header key or section are load errors that name
 * the file and line.
 *
 * Thread-safety: a loaded struct rb_vertical and a struct rb_redactor are
 * read-only and may be shared by threads (matching allocates per call).
 * Ownership: accessors return pointers borrowed from the pack, valid until
 * rb_vertical_free; results documented "caller frees" use free().
 */
#ifndef RAGBOX_VERTICALS_H
#define RAGBOX_VERTICALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ragbox/common.h"

/* =============================================================== redaction */

#define RB_PII_TABLE(X)                                                                            \
    X(CARD, "CARD", "payment card number (Luhn-valid, 13-19 digits)")                              \
    X(IBAN, "IBAN", "international bank account number (mod-97, country length)")                  \
    X(SSN, "SSN", "US social security number (area/group/serial rules)")                           \
    X(CN_ID, "CN_ID", "Chinese resident identity number (GB 11643 check digit, birth date)")       \
    X(PHONE, "PHONE", "telephone number (Chinese mobile/landline, E.164, NANP)")                   \
    X(EMAIL, "EMAIL", "e-mail address")                                                            \
    X(DOB, "DOB", "date of birth (next to DOB / born / 出生日期)")                                  \
    X(MRN, "MRN", "medical record number (next to MRN / 病历号)")                                   \
    X(ACCOUNT, "ACCOUNT", "bank account number (next to account / 账号, finance)")

enum rb_pii_type {
#define RB__PII_ENUM(name, tag, desc) RB_PII_##name,
    RB_PII_TABLE(RB__PII_ENUM)
#undef RB__PII_ENUM
        RB_PII_COUNT
};
/* "CARD", "CN_ID", ...; "UNKNOWN" out of range. */
const char *rb_pii_type_name(enum rb_pii_type t);
const char *rb_pii_type_description(enum rb_pii_type t);
/* Case-insensitive ("card", "cn_id"); RB_ERR_INVALID when unknown. */
RB_NODISCARD enum rb_status rb_pii_type_parse(const char *name, enum rb_pii_type *out);
#define RB_PII_MASK(t) (1u << (t))
#define RB_PII_ALL ((1u << RB_PII_COUNT) - 1u)

/* Validators (pure, thread-safe). digits/text are not NUL-terminated. */
bool rb_pii_luhn_valid(const char *digits, size_t len);  /* separators ' ' '-' skipped */
bool rb_pii_iban_valid(const char *text, size_t len);    /* spaces skipped; country length */
bool rb_pii_ssn_valid(const char *text, size_t len);     /* "AAA-GG-SSSS" or 9 digits */
bool rb_pii_cn_id_valid(const char *text, size_t len);   /* 18 chars, date, check digit */

struct rb_redact_span {
    enum rb_pii_type type;
    size_t start, end; /* byte offsets [start, end) into the input */
};

struct rb_redactor_options {
    unsigned types;              /* RB_PII_MASK bits; 0 = RB_PII_ALL */
    const char *account_context; /* PCRE2 alternation of words that announce an account
                                    number, NULL = built-in (account|acct|a/c|账号|账户|卡号) */
};

struct rb_redactor;
/* Compiles the patterns (UTF, JIT when available) once. */
RB_NODISCARD enum rb_status rb_redactor_create(const struct rb_redactor_options *o,
                                               struct rb_redactor **out, struct rb_errmsg *err);
void rb_redactor_free(struct rb_redactor *r);
unsigned rb_redactor_types(const struct rb_redactor *r);

/* Finds the spans to redact in text (UTF-8; invalid UTF-8 is RB_ERR_ENCODING),
 * sorted by start, non-overlapping. *spans is caller-freed (free()). */
RB_NODISCARD enum rb_status rb_redact_find(const struct rb_redactor *r, const char *text,
                                           size_t len, struct rb_redact_span **spans,
                                           size_t *n_spans, struct rb_errmsg *err);
/* The text with each span replaced by "[REDACTED:<TYPE>]". *out is
 * caller-freed and NUL-terminated; *n_redacted (may be NULL) counts spans. */
RB_NODISCARD enum rb_status rb_redact_text(const struct rb_redactor *r, const char *text,
                                           size_t len, char **out, size_t *out_len,
                                           size_t *n_redacted, struct rb_errmsg *err);
/* Matches rb_audit_redact_fn: user is a const struct rb_redactor *. Invalid
 * UTF-8 is sanitised first. Returns NULL only when out of memory. */
char *rb_redact_audit_hook(void *user, const char *text, size_t len);

/* ================================================================== packs */

enum rb_vertical_lang { RB_VERTICAL_EN = 0, RB_VERTICAL_ZH, RB_VERTICAL_LANG_COUNT };
const char *rb_vertical_lang_name(enum rb_vertical_lang lang); /* "en", "zh" */

struct rb_template; /* one parsed template file, owned by its pack */

/* The answer policy of a pack. Strings borrowed from the pack. */
struct rb_vertical_policy {
    double min_evidence;          /* refuse below this retrieval evidence (answer.min_evidence) */
    double min_citation_coverage; /* refuse a generated answer citing less (answer.min_citation_coverage) */
    size_t max_sentences;         /* extractive sentences (answer.max_sentences) */
    bool figures_from_sources;    /* every figure in an answer must appear in a cited source */
    bool never_invent_dosages;    /* healthcare: dosages only quoted from sources */
    bool disclaimer_required;     /* every answer carries the disclaimer */
    const char *disclaimer[RB_VERTICAL_LANG_COUNT]; /* may be NULL */
    const char *refusal[RB_VERTICAL_LANG_COUNT];    /* refusal message, may be NULL */
    const char *rules[RB_VERTICAL_LANG_COUNT];      /* the pack's answering rules ({{rules}}) */
};

struct rb_vertical_chunking {
    size_t chunk_tokens;   /* target chunk size in tokens */
    size_t overlap_tokens; /* overlap between consecutive chunks */
    const char *const *heading_patterns; /* PCRE2 patterns (borrowed), n_heading_patterns */
    size_t n_heading_patterns;
};

struct rb_vertical_redaction {
    unsigned types;          /* RB_PII_MASK of the rules that apply */
    bool apply_to_audit;     /* redact queries/answers stored in the audit trail */
    bool apply_to_answers;   /* redact answers shown to users */
    bool apply_to_ingest;    /* redact text at ingest (collection policy may override) */
};

struct rb_vertical;

/* Loads the pack `name` ([a-z0-9_-]+) from the search path above.
 * data_dir and cfg may be NULL. */
RB_NODISCARD enum rb_status rb_vertical_open(const char *name, const char *data_dir,
                                             const struct rb_config *cfg,
                                             struct rb_vertical **out, struct rb_errmsg *err);
/* Loads a pack from an explicit directory. */
RB_NODISCARD enum rb_status rb_vertical_load_dir(const char *dir, struct rb_vertical **out,
                                                 struct rb_errmsg *err);
void rb_vertical_free(struct rb_vertical *v);

/* The pack directories on the search path, in order (caller frees each and
 * the array). */
RB_NODISCARD enum rb_status rb_vertical_search_path(const char *data_dir,
                                                    const struct rb_config *cfg, char ***dirs,
                                                    size_t *n);
/* Names of all packs found on the search path, sorted, deduplicated
 * (caller frees each and the array). */
RB_NODISCARD enum rb_status rb_vertical_list(const char *data_dir, const struct rb_config *cfg,
                                             char ***names, size_t *n);

const char *rb_vertical_name(const struct rb_vertical *v);
const char *rb_vertical_version(const struct rb_vertical *v);
const char *rb_vertical_description(const struct rb_vertical *v);
const char *rb_vertical_dir(const struct rb_vertical *v);
const struct rb_vertical_policy *rb_vertical_policy(const struct rb_vertical *v);
const struct rb_vertical_chunking *rb_vertical_chunking(const struct rb_vertical *v);
const struct rb_vertical_redaction *rb_vertical_redaction(const struct rb_vertical *v);
/* The pack's redactor (its rules and account context), borrowed. */
const struct rb_redactor *rb_vertical_redactor(const struct rb_vertical *v);
/* The whole pack.ini for keys this header has no field for (borrowed). */
const struct rb_config *rb_vertical_config(const struct rb_vertical *v);

/* Template lookup: "answer", "draft-notice", "draft-reply", ... in lang;
 * falls back to English when the language is missing. NULL when absent. */
const struct rb_template *rb_vertical_template(const struct rb_vertical *v, const char *name,
                                               enum rb_vertical_lang lang);
/* Names of the templates of the pack (borrowed array of n). */
size_t rb_vertical_template_count(const struct rb_vertical *v);
const struct rb_template *rb_vertical_template_at(const struct rb_vertical *v, size_t i);

const char *rb_template_name(const struct rb_template *t);    /* "answer" */
const char *rb_template_id(const struct rb_template *t);      /* "finance/answer.en" */
const char *rb_template_version(const struct rb_template *t); /* goes into the audit record */
enum rb_vertical_lang rb_template_lang(const struct rb_template *t);
const char *rb_template_path(const struct rb_template *t);
const char *rb_template_system(const struct rb_template *t); /* raw section text */
const char *rb_template_user(const struct rb_template *t);

/* Parses one template file from memory (name = path for messages). Errors
 * name the line. Caller frees with rb_template_free. */
RB_NODISCARD enum rb_status rb_template_parse(const char *path, const char *text, size_t len,
                                              struct rb_template **out, struct rb_errmsg *err);
void rb_template_free(struct rb_template *t);

/* Values for the placeholders (borrowed; NULL = empty, except disclaimer,
 * which defaults to the pack policy's disclaimer in the template's language,
 * and date, which defaults to today's UTC date). */
struct rb_template_vars {
    const char *context;
    const char *question;
    const char *disclaimer;
    const char *date;
    const char *collection;
    const char *title;
};
/* Renders both sections (caller frees *system and *user). v may be NULL
 * (no pack defaults). */
RB_NODISCARD enum rb_status rb_template_render(const struct rb_template *t,
                                               const struct rb_vertical *v,
                                               const struct rb_template_vars *vars, char **system,
                                               char **user, struct rb_errmsg *err);

#endif
