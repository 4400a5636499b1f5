/* ragbox engine: our own GGUF model runtime.
 *
 * What is here, top to bottom:
 *   - model files: open a GGUF file and describe it (architecture, sizes,
 *     tensor types, vocabulary, chat template) without loading weights;
 *   - tokenizers built from a model's GGUF metadata: SentencePiece-style
 *     ("llama"), byte-level BPE ("gpt2", with the pre-tokenizer regexes of each
 *     family) and WordPiece ("bert"); special tokens; detokenisation;
 *   - chat templates: recognise the template stored in a model and render a
 *     conversation into the prompt text the model was trained on;
 *   - inference (written by engine-compute): model graphs, sampling, scheduler.
 *
 * Thread-safety: a struct rb_engine_model_info and a struct
 * rb_engine_tokenizer are immutable after creation; any number of threads may
 * call the tokenize/detokenize/lookup functions on one tokenizer at once.
 *
 * Ownership: "caller frees" means free(); pointers marked borrowed stay valid
 * until the owning handle is freed. Every create/load function leaves *out NULL
 * on failure and fills err (may be NULL) with a message naming the file and
 * what is wrong.
 */
#ifndef RAGBOX_ENGINE_H
#define RAGBOX_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ragbox/common.h"

/* ==================================================================== model files */

/* Summary of a GGUF model file (no weights are loaded). */
struct rb_engine_tensor_type_count {
    char type[16];          /* ggml type name: "f32", "q4_K", ... */
    uint32_t n_tensors;
    uint64_t n_elements;    /* parameters stored in this type */
    uint64_t n_bytes;
};

struct rb_engine_model_info {
    char *path;             /* owned */
    uint32_t gguf_version;
    uint64_t file_size;
    char *architecture;     /* general.architecture ("llama", "qwen2", "bert" ...), owned, or NULL */
    char *name;             /* general.name, owned, or NULL */
    uint64_t n_params;      /* sum of tensor elements */
    uint64_t n_tensors;
    uint64_t n_kv;          /* metadata entries */
    uint32_t context_length;   /* <arch>.context_length, 0 if absent */
    uint32_t embedding_length; /* <arch>.embedding_length, 0 if absent */
    uint32_t block_count;      /* <arch>.block_count, 0 if absent */
    uint32_t head_count;       /* <arch>.attention.head_count, 0 if absent */
    uint32_t head_count_kv;    /* <arch>.attention.head_count_kv (= head_count if absent) */
    uint32_t file_type;        /* general.file_type, UINT32_MAX if absent */
    char *tokenizer_model;     /* tokenizer.ggml.model ("llama", "gpt2", "bert"), owned, or NULL */
    char *tokenizer_pre;       /* tokenizer.ggml.pre, owned, or NULL */
    uint32_t n_vocab;          /* entries in tokenizer.ggml.tokens */
    uint32_t n_merges;         /* entries in tokenizer.ggml.merges */
    char *chat_template;       /* tokenizer.chat_template, owned, or NULL */
    struct rb_engine_tensor_type_count *types; /* owned array of n_types, by type id */
    size_t n_types;
};

/* Opens and validates path (the full GGUF validation of the loader) and fills a
 * summary. Caller frees with rb_engine_model_info_free. */
RB_NODISCARD enum rb_status rb_engine_model_info_read(const char *path,
                                                      struct rb_engine_model_info **out,
                                                      struct rb_errmsg *err);
void rb_engine_model_info_free(struct rb_engine_model_info *info);

/* ===================================================================== tokenizers */

/* Token ids are int32_t; RB_ENGINE_TOKEN_NONE marks "no such token". */
#define RB_ENGINE_TOKEN_NONE (-1)

enum rb_engine_vocab_type {
    RB_ENGINE_VOCAB_SPM = 1, /* "llama": SentencePiece BPE with scores and byte fallback */
    RB_ENGINE_VOCAB_BPE = 2, /* "gpt2": byte-level BPE with merges and a pre-tokenizer */
    RB_ENGINE_VOCAB_WPM = 3, /* "bert": WordPiece */
};

/* Token attributes (bit set), from tokenizer.ggml.token_type and known names. */
#define RB_ENGINE_TOKEN_ATTR_NORMAL 0x01u
#define RB_ENGINE_TOKEN_ATTR_UNKNOWN 0x02u
#define RB_ENGINE_TOKEN_ATTR_CONTROL 0x04u
#define RB_ENGINE_TOKEN_ATTR_USER_DEFINED 0x08u
#define RB_ENGINE_TOKEN_ATTR_UNUSED 0x10u
#define RB_ENGINE_TOKEN_ATTR_BYTE 0x20u
#define RB_ENGINE_TOKEN_ATTR_RSTRIP 0x40u /* eat whitespace after it when matched in text */
#define RB_ENGINE_TOKEN_ATTR_LSTRIP 0x80u /* eat whitespace before it */

struct rb_engine_tokenizer;

/* Builds the tokenizer of a GGUF model file (reads only its metadata; the
 * tokenizer keeps its own copy, the file is closed before returning). Refuses
 * unknown tokenizer models / pre-tokenizers with RB_ERR_UNSUPPORTED naming them,
 * inconsistent vocabularies with RB_ERR_CORRUPT. Caller frees. */
RB_NODISCARD enum rb_status rb_engine_tokenizer_load(const char *model_path,
                                                     struct rb_engine_tokenizer **out,
                                                     struct rb_errmsg *err);
void rb_engine_tokenizer_free(struct rb_engine_tokenizer *tok);

/* Tokenize flags. ADD_SPECIAL: add BOS/EOS/SEP as the model's metadata says
 * (tokenizer.ggml.add_bos_token ...; BERT adds [CLS] ... [SEP]). PARSE_SPECIAL:
 * control tokens written in the text ("<|im_start|>") become their ids;
 * without it they are tokenized as plain text (user-defined tokens always match). */
#define RB_ENGINE_TOKENIZE_ADD_SPECIAL 0x1u
#define RB_ENGINE_TOKENIZE_PARSE_SPECIAL 0x2u

/* Tokenizes text[0..len) (UTF-8; malformed bytes are handled like the reference
 * implementation; at most 256 MiB, else RB_ERR_TOO_LARGE). *ids: caller frees
 * (NULL when *n_ids == 0). */
RB_NODISCARD enum rb_status rb_engine_tokenize(const struct rb_engine_tokenizer *tok,
                                               const char *text, size_t len, unsigned flags,
                                               int32_t **ids, size_t *n_ids);
/* Number of tokens text would take (same flags). */
RB_NODISCARD enum rb_status rb_engine_token_count(const struct rb_engine_tokenizer *tok,
                                                  const char *text, size_t len, unsigned flags,
                                                  size_t *n_tokens);

/* Detokenize flags. REMOVE_SPECIAL: drop a leading BOS / trailing EOS the
 * tokenizer would add. UNPARSE_SPECIAL: render control tokens as their text
 * (otherwise they produce nothing). */
#define RB_ENGINE_DETOKENIZE_REMOVE_SPECIAL 0x1u
#define RB_ENGINE_DETOKENIZE_UNPARSE_SPECIAL 0x2u
/* ids -> text (bytes; may be invalid UTF-8 if the ids cut a character). Caller
 * frees *text (NUL-terminated; *len excludes the NUL). RB_ERR_INVALID for an id
 * outside the vocabulary. */
RB_NODISCARD enum rb_status rb_engine_detokenize(const struct rb_engine_tokenizer *tok,
                                                 const int32_t *ids, size_t n_ids,
                                                 unsigned flags, char **text, size_t *len);
/* The bytes one token produces when generated (byte tokens -> that byte, "▁" ->
 * space, byte-level BPE decoded; control tokens -> "" unless `special`). Borrowed,
 * *len set; NULL for an id outside the vocabulary. Streaming uses this. */
const char *rb_engine_token_piece(const struct rb_engine_tokenizer *tok, int32_t id, bool special,
                                  size_t *len);
/* The token's vocabulary text as stored in the model (borrowed, NUL-terminated), or NULL. */
const char *rb_engine_token_text(const struct rb_engine_tokenizer *tok, int32_t id);
/* Id of an exact vocabulary text, or RB_ENGINE_TOKEN_NONE. */
int32_t rb_engine_token_lookup(const struct rb_engine_tokenizer *tok, const char *text, size_t len);
unsigned rb_engine_token_attr(const struct rb_engine_tokenizer *tok, int32_t id);
float rb_engine_token_score(const struct rb_engine_tokenizer *tok, int32_t id);

uint32_t rb_engine_tokenizer_n_vocab(const struct rb_engine_tokenizer *tok);
enum rb_engine_vocab_type rb_engine_tokenizer_type(const struct rb_engine_tokenizer *tok);
/* "llama", "gpt2", "bert" and the pre-tokenizer name ("default" when absent). Borrowed. */
const char *rb_engine_tokenizer_model_name(const struct rb_engine_tokenizer *tok);
const char *rb_engine_tokenizer_pre_name(const struct rb_engine_tokenizer *tok);
bool rb_engine_tokenizer_add_bos(const struct rb_engine_tokenizer *tok);
bool rb_engine_tokenizer_add_eos(const struct rb_engine_tokenizer *tok);
/* Special token ids (RB_ENGINE_TOKEN_NONE when the model has none). */
int32_t rb_engine_token_bos(const struct rb_engine_tokenizer *tok);
int32_t rb_engine_token_eos(const struct rb_engine_tokenizer *tok);
int32_t rb_engine_token_eot(const struct rb_engine_tokenizer *tok);
int32_t rb_engine_token_unk(const struct rb_engine_tokenizer *tok);
int32_t rb_engine_token_sep(const struct rb_engine_tokenizer *tok);
int32_t rb_engine_token_pad(const struct rb_engine_tokenizer *tok);
int32_t rb_engine_token_nl(const struct rb_engine_tokenizer *tok);
/* End of generation: EOS, EOT and the turn-end tokens the model declares. */
bool rb_engine_token_is_eog(const struct rb_engine_tokenizer *tok, int32_t id);
/* tokenizer.chat_template of the model (borrowed), or NULL. */
const char *rb_engine_tokenizer_chat_template(const struct rb_engine_tokenizer *tok);

/* ================================================================= chat templates */

enum rb_engine_chat_kind {
    RB_ENGINE_CHAT_UNKNOWN = 0,
    RB_ENGINE_CHAT_CHATML,  /* <|im_start|>role\n...<|im_end|>\n (Qwen, SmolLM, ...) */
    RB_ENGINE_CHAT_LLAMA3,  /* <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|> */
    RB_ENGINE_CHAT_LLAMA2,  /* <s>[INST] <<SYS>>\n...\n<</SYS>>\n\n... [/INST] ...</s> */
    RB_ENGINE_CHAT_PHI3,    /* <|user|>\n...<|end|>\n<|assistant|>\n */
};

struct rb_engine_chat_message {
    const char *role;    /* "system", "user" or "assistant" (borrowed) */
    const char *content; /* UTF-8 (borrowed) */
};

/* Recognises a Jinja chat template by its markers. UNKNOWN for NULL or an
 * unrecognised template. */
enum rb_engine_chat_kind rb_engine_chat_detect(const char *chat_template);
/* "chatml", "llama3", "llama2", "phi3", "unknown". */
const char *rb_engine_chat_kind_name(enum rb_engine_chat_kind kind);
/* Kind from its name (as above); UNKNOWN if none. */
enum rb_engine_chat_kind rb_engine_chat_kind_from_name(const char *name);

/* Renders messages (n >= 1) in the given style, ending with the assistant
 * header when add_generation_prompt. The text contains the special-token
 * markers: tokenize it with RB_ENGINE_TOKENIZE_PARSE_SPECIAL (and without
 * ADD_SPECIAL for llama2/llama3, whose text carries its own BOS). Caller frees
 * *out. RB_ERR_INVALID for an unknown role or kind. */
RB_NODISCARD enum rb_status rb_engine_chat_render(enum rb_engine_chat_kind kind,
                                                  const struct rb_engine_chat_message *msgs,
                                                  size_t n, bool add_generation_prompt,
                                                  char **out, struct rb_errmsg *err);

/* The model's own template: detects tokenizer.chat_template and renders it.
 * A model without a template, or with one not recognised, is RB_ERR_UNSUPPORTED
 * with a message naming the template's start — unless fallback is not
 * RB_ENGINE_CHAT_UNKNOWN, in which case that style is used (callers that accept
 * a guess pass RB_ENGINE_CHAT_CHATML, the most common style). *used (may be
 * NULL) receives the style actually rendered. */
RB_NODISCARD enum rb_status rb_engine_chat_apply(const struct rb_engine_tokenizer *tok,
                                                 const struct rb_engine_chat_message *msgs,
                                                 size_t n, bool add_generation_prompt,
                                                 enum rb_engine_chat_kind fallback,
                                                 enum rb_engine_chat_kind *used, char **out,
                                                 struct rb_errmsg *err);

/* ==== inference (engine-compute) ==== */

#endif
