/* Engine commands of the `ragbox` CLI.
 *
 * Sections: engine-gguf (tokenize, model info) and, below it, engine-compute
 * (generate, embed, bench, model quantize). Each command parses its own
 * arguments and prints complete usage on --help. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ragbox/engine.h"

/* ======================================================= engine-gguf: tokenize */

#define RB_CLI_MAX_INPUT ((size_t)256 << 20)

/* Reads a whole file ("-" or NULL: stdin) into a heap buffer, streaming, so
 * pipes, FIFOs and /dev/stdin work as well as regular files. */
static enum rb_status read_input(const char *path, char **data, size_t *len)
{
    FILE *f = stdin;
    if (path && strcmp(path, "-") != 0) {
        f = fopen(path, "rb");
        if (!f)
            return errno == ENOENT ? RB_ERR_NOT_FOUND : RB_ERR_IO;
    }
    struct rb_buf b;
    rb_buf_init(&b, RB_CLI_MAX_INPUT);
    char chunk[65536];
    size_t n;
    enum rb_status st = RB_OK;
    while (st == RB_OK && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        st = rb_buf_append(&b, chunk, n);
    if (st == RB_OK && ferror(f))
        st = RB_ERR_IO;
    if (f != stdin)
        fclose(f);
    if (st == RB_OK)
        st = rb_buf_append(&b, "", 0);
    if (st != RB_OK) {
        rb_buf_free(&b);
        return st;
    }
    *len = b.len;
    *data = rb_buf_steal(&b);
    return RB_OK;
}

static void tokenize_usage(FILE *out)
{
    fputs("Usage: ragbox tokenize -m MODEL [--no-bos] [--no-special] [FILE|-]\n"
          "\n"
          "Prints the token ids of the whole input text (FILE, or standard input when FILE\n"
          "is '-' or absent) with the tokenizer of MODEL (a GGUF file), space-separated\n"
          "on one line. The text is used exactly as read: no trailing newline is removed.\n"
          "\n"
          "Options:\n"
          "  -m, --model MODEL  the GGUF model whose tokenizer to use (required)\n"
          "  --no-bos           do not add the model's special tokens around the text\n"
          "                     (BOS/EOS as its metadata says; [CLS] ... [SEP] for BERT)\n"
          "  --no-special       treat special-token markers written in the text (such as\n"
          "                     <|im_start|>) as plain text instead of their ids\n"
          "  -h, --help         this help\n"
          "\n"
          "Exit status: 0 on success, 1 on error (unreadable model or input), 2 on usage.\n",
          out);
}

int rb_cmd_tokenize(struct rb_cli *cli, int argc, char **argv)
{
    (void)cli;
    if (rb_cli_wants_help(argc, argv)) {
        tokenize_usage(stdout);
        return RB_EXIT_OK;
    }
    const char *model = NULL, *input = NULL;
    unsigned flags = RB_ENGINE_TOKENIZE_ADD_SPECIAL | RB_ENGINE_TOKENIZE_PARSE_SPECIAL;
    bool opts_done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!opts_done && (strcmp(a, "-m") == 0 || strcmp(a, "--model") == 0)) {
            if (i + 1 >= argc)
                return rb_cli_usage("tokenize", "%s needs a value", a);
            model = argv[++i];
        } else if (!opts_done && strncmp(a, "--model=", 8) == 0) {
            model = a + 8;
        } else if (!opts_done && strcmp(a, "--no-bos") == 0) {
            flags &= ~RB_ENGINE_TOKENIZE_ADD_SPECIAL;
        } else if (!opts_done && strcmp(a, "--no-special") == 0) {
            flags &= ~RB_ENGINE_TOKENIZE_PARSE_SPECIAL;
        } else if (!opts_done && strcmp(a, "--") == 0) {
            opts_done = true;
        } else if (!opts_done && a[0] == '-' && a[1] != '\0') {
            return rb_cli_usage("tokenize", "unknown option '%s'", a);
        } else if (!input) {
            input = a;
        } else {
            return rb_cli_usage("tokenize", "more than one input file");
        }
    }
    if (!model)
        return rb_cli_usage("tokenize", "-m MODEL is required");
    struct rb_errmsg err = {{0}};
    struct rb_engine_tokenizer *tok = NULL;
    if (rb_engine_tokenizer_load(model, &tok, &err) != RB_OK)
        return rb_cli_fail("%s", err.text);
    char *text = NULL;
    size_t len = 0;
    enum rb_status st = read_input(input, &text, &len);
    if (st != RB_OK) {
        rb_engine_tokenizer_free(tok);
        return rb_cli_fail("%s: %s", input && strcmp(input, "-") ? input : "standard input",
                           st == RB_ERR_TOO_LARGE ? "input larger than 256 MiB"
                                                  : rb_status_str(st));
    }
    int32_t *ids = NULL;
    size_t n = 0;
    st = rb_engine_tokenize(tok, text, len, flags, &ids, &n);
    free(text);
    rb_engine_tokenizer_free(tok);
    if (st != RB_OK)
        return rb_cli_fail("tokenize: %s", rb_status_str(st));
    for (size_t i = 0; i < n; i++)
        printf(i ? " %" PRId32 : "%" PRId32, ids[i]);
    putchar('\n');
    free(ids);
    return fflush(stdout) == 0 ? RB_EXIT_OK : rb_cli_fail("write error: %s", strerror(errno));
}

/* ===================================================== engine-gguf: model info */

static void model_info_usage(FILE *out)
{
    fputs("Usage: ragbox model info [--json] [--hash] MODEL\n"
          "\n"
          "Describes a GGUF model file without loading its weights: architecture, name,\n"
          "parameter count, tensor types with their counts and sizes, context length,\n"
          "layers, heads, vocabulary (tokenizer kind, size, merges), and the chat template\n"
          "style the engine recognises in it. The whole file is validated first: a\n"
          "truncated or corrupt file is reported with the offset of the problem.\n"
          "\n"
          "Options:\n"
          "  --json      print one JSON object instead of text\n"
          "  --hash      also compute the file's SHA-256 (reads the whole file)\n"
          "  -h, --help  this help\n"
          "\n"
          "Exit status: 0 on success, 1 on an unreadable or invalid model, 2 on usage.\n",
          out);
}

static const char *chat_kind_of(const struct rb_engine_model_info *m)
{
    if (!m->chat_template)
        return "none";
    return rb_engine_chat_kind_name(rb_engine_chat_detect(m->chat_template));
}

static int print_json(const struct rb_engine_model_info *m, const char *hash)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return rb_cli_fail("out of memory");
    cJSON_AddStringToObject(o, "path", m->path);
    cJSON_AddNumberToObject(o, "gguf_version", m->gguf_version);
    cJSON_AddNumberToObject(o, "file_size", (double)m->file_size);
    if (hash)
        cJSON_AddStringToObject(o, "sha256", hash);
    if (m->architecture)
        cJSON_AddStringToObject(o, "architecture", m->architecture);
    else
        cJSON_AddNullToObject(o, "architecture");
    if (m->name)
        cJSON_AddStringToObject(o, "name", m->name);
    cJSON_AddNumberToObject(o, "n_params", (double)m->n_params);
    cJSON_AddNumberToObject(o, "n_tensors", (double)m->n_tensors);
    cJSON_AddNumberToObject(o, "context_length", m->context_length);
    cJSON_AddNumberToObject(o, "embedding_length", m->embedding_length);
    cJSON_AddNumberToObject(o, "block_count", m->block_count);
    cJSON_AddNumberToObject(o, "head_count", m->head_count);
    cJSON_AddNumberToObject(o, "head_count_kv", m->head_count_kv);
    if (m->file_type != UINT32_MAX)
        cJSON_AddNumberToObject(o, "file_type", m->file_type);
    cJSON *types = cJSON_AddArrayToObject(o, "tensor_types");
    for (size_t i = 0; types && i < m->n_types; i++) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "type", m->types[i].type);
        cJSON_AddNumberToObject(t, "n_tensors", m->types[i].n_tensors);
        cJSON_AddNumberToObject(t, "n_elements", (double)m->types[i].n_elements);
        cJSON_AddNumberToObject(t, "n_bytes", (double)m->types[i].n_bytes);
        cJSON_AddItemToArray(types, t);
    }
    cJSON *v = cJSON_AddObjectToObject(o, "vocab");
    if (v) {
        if (m->tokenizer_model)
            cJSON_AddStringToObject(v, "model", m->tokenizer_model);
        if (m->tokenizer_pre)
            cJSON_AddStringToObject(v, "pre", m->tokenizer_pre);
        cJSON_AddNumberToObject(v, "n_tokens", m->n_vocab);
        cJSON_AddNumberToObject(v, "n_merges", m->n_merges);
    }
    cJSON_AddStringToObject(o, "chat_template", chat_kind_of(m));
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    if (!s)
        return rb_cli_fail("out of memory");
    puts(s);
    free(s);
    return RB_EXIT_OK;
}

int rb_cmd_model_info(struct rb_cli *cli, int argc, char **argv)
{
    (void)cli;
    if (rb_cli_wants_help(argc, argv)) {
        model_info_usage(stdout);
        return RB_EXIT_OK;
    }
    bool json = false, hash = false;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--hash") == 0)
            hash = true;
        else if (argv[i][0] == '-' && argv[i][1] != '\0')
            return rb_cli_usage("model info", "unknown option '%s'", argv[i]);
        else if (!path)
            path = argv[i];
        else
            return rb_cli_usage("model info", "one MODEL expected");
    }
    if (!path)
        return rb_cli_usage("model info", "MODEL is required");
    struct rb_errmsg err = {{0}};
    struct rb_engine_model_info *m = NULL;
    if (rb_engine_model_info_read(path, &m, &err) != RB_OK)
        return rb_cli_fail("%s", err.text);
    char hex[RB_SHA256_HEX_LEN + 1] = "";
    if (hash && rb_sha256_file(path, hex) != RB_OK) {
        rb_engine_model_info_free(m);
        return rb_cli_fail("%s: cannot hash the file", path);
    }
    int rc = RB_EXIT_OK;
    if (json) {
        rc = print_json(m, hash ? hex : NULL);
    } else {
        printf("file:            %s\n", m->path);
        printf("format:          GGUF v%u, %" PRIu64 " bytes\n", m->gguf_version, m->file_size);
        if (hash)
            printf("sha256:          %s\n", hex);
        printf("architecture:    %s\n", m->architecture ? m->architecture : "(none)");
        if (m->name)
            printf("name:            %s\n", m->name);
        printf("parameters:      %" PRIu64 " (%.2f M)\n", m->n_params, (double)m->n_params / 1e6);
        printf("tensors:         %" PRIu64 "\n", m->n_tensors);
        for (size_t i = 0; i < m->n_types; i++)
            printf("  %-8s       %5u tensors, %12" PRIu64 " elements, %12" PRIu64 " bytes\n",
                   m->types[i].type, m->types[i].n_tensors, m->types[i].n_elements,
                   m->types[i].n_bytes);
        printf("context length:  %u\n", m->context_length);
        printf("embedding:       %u\n", m->embedding_length);
        printf("layers:          %u\n", m->block_count);
        printf("heads:           %u (kv %u)\n", m->head_count, m->head_count_kv);
        printf("vocab:           %s%s%s, %u tokens", m->tokenizer_model ? m->tokenizer_model
                                                                        : "(none)",
               m->tokenizer_pre ? ", pre " : "", m->tokenizer_pre ? m->tokenizer_pre : "",
               m->n_vocab);
        if (m->n_merges)
            printf(", %u merges", m->n_merges);
        putchar('\n');
        printf("chat template:   %s\n", chat_kind_of(m));
    }
    rb_engine_model_info_free(m);
    return rc;
}

/* ===================================================================== engine-compute */
