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
#include <unistd.h>

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
/* generate, embed, bench, model quantize */

#include <math.h>

/* Parses an int option value; false on garbage. */
static bool parse_int_arg(const char *s, long lo, long hi, int *out)
{
    int64_t v;
    if (!s || rb_parse_i64(s, &v) != RB_OK || v < lo || v > hi)
        return false;
    *out = (int)v;
    return true;
}

static bool parse_float_arg(const char *s, double lo, double hi, float *out)
{
    double v;
    if (!s || rb_parse_double(s, &v) != RB_OK || !(v >= lo && v <= hi))
        return false;
    *out = (float)v;
    return true;
}

/* ------------------------------------------------------------------ generate */

static void generate_usage(FILE *out)
{
    fputs("Usage: ragbox generate -m MODEL -p PROMPT [options]\n"
          "\n"
          "Streams the model's continuation of PROMPT to standard output. Without --raw the\n"
          "prompt is sent as a user message through the model's chat template; with --raw\n"
          "it is completed as plain text.\n"
          "\n"
          "Options:\n"
          "  -m, --model MODEL     GGUF generation model (llama, qwen2, qwen3 families)\n"
          "  -p, --prompt TEXT     the prompt (required)\n"
          "  -s, --system TEXT     system message (chat mode only)\n"
          "  -n, --n-predict N     tokens to generate at most (default 256; -1: until the\n"
          "                        end of the turn or the context)\n"
          "  --temp T              temperature (default 0.8; 0: greedy, deterministic)\n"
          "  --top-k K             keep the K most likely tokens (default 40; 0: off)\n"
          "  --top-p P             nucleus sampling threshold (default 0.95; 1: off)\n"
          "  --min-p P             drop tokens below P x the best probability (default 0.05)\n"
          "  --repeat-penalty R    penalty for repeated tokens (default 1.0: off)\n"
          "  --repeat-last-n N     tokens the penalty looks back over (default 64)\n"
          "  --presence-penalty X  (default 0)\n"
          "  --frequency-penalty X (default 0)\n"
          "  --seed S              sampling seed (default 0); same seed, same output\n"
          "  --stop TEXT           stop when TEXT is generated (repeatable; not printed)\n"
          "  -c, --ctx-size N      context positions (default: the model's, at most 4096)\n"
          "  -t, --threads N       compute threads (default: all CPUs)\n"
          "  --raw                 no chat template: plain completion of the prompt\n"
          "  --stats               print token counts and speeds to standard error\n"
          "  -h, --help            this help\n"
          "\n"
          "Exit status: 0 on success, 1 on error, 2 on usage.\n",
          out);
}

static bool write_piece(void *user, const char *piece, size_t len)
{
    (void)user;
    if (fwrite(piece, 1, len, stdout) != len)
        return false; /* stdout closed: stop generating */
    fflush(stdout);
    return true;
}

int rb_cmd_generate(struct rb_cli *cli, int argc, char **argv)
{
    (void)cli;
    if (rb_cli_wants_help(argc, argv)) {
        generate_usage(stdout);
        return RB_EXIT_OK;
    }
    const char *model = NULL, *prompt = NULL, *system = NULL;
    const char *stops[16];
    size_t n_stop = 0;
    bool raw = false, stats = false;
    struct rb_engine_gen_params gp;
    rb_engine_gen_params_default(&gp);
    struct rb_engine_model_params mp;
    rb_engine_model_params_default(&mp);
    int seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDV()                                                                                    \
    do {                                                                                           \
        if (!v)                                                                                    \
            return rb_cli_usage("generate", "%s needs a value", a);                               \
        i++;                                                                                       \
    } while (0)
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            NEEDV();
            model = v;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            NEEDV();
            prompt = v;
        } else if (!strcmp(a, "-s") || !strcmp(a, "--system")) {
            NEEDV();
            system = v;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            NEEDV();
            if (!parse_int_arg(v, -1, 1 << 24, &gp.max_tokens))
                return rb_cli_usage("generate", "bad -n value '%s'", v);
            if (gp.max_tokens < 0)
                gp.max_tokens = 0;
            else if (gp.max_tokens == 0)
                return RB_EXIT_OK; /* nothing to generate */
        } else if (!strcmp(a, "--temp")) {
            NEEDV();
            if (!parse_float_arg(v, 0, 100, &gp.temperature))
                return rb_cli_usage("generate", "bad --temp value '%s'", v);
        } else if (!strcmp(a, "--top-k")) {
            NEEDV();
            if (!parse_int_arg(v, 0, 1 << 24, &gp.top_k))
                return rb_cli_usage("generate", "bad --top-k value '%s'", v);
        } else if (!strcmp(a, "--top-p")) {
            NEEDV();
            if (!parse_float_arg(v, 0, 1, &gp.top_p))
                return rb_cli_usage("generate", "bad --top-p value '%s'", v);
        } else if (!strcmp(a, "--min-p")) {
            NEEDV();
            if (!parse_float_arg(v, 0, 1, &gp.min_p))
                return rb_cli_usage("generate", "bad --min-p value '%s'", v);
        } else if (!strcmp(a, "--repeat-penalty")) {
            NEEDV();
            if (!parse_float_arg(v, 0.01, 100, &gp.repeat_penalty))
                return rb_cli_usage("generate", "bad --repeat-penalty value '%s'", v);
        } else if (!strcmp(a, "--repeat-last-n")) {
            NEEDV();
            if (!parse_int_arg(v, -1, 1 << 24, &gp.repeat_last_n))
                return rb_cli_usage("generate", "bad --repeat-last-n value '%s'", v);
        } else if (!strcmp(a, "--presence-penalty")) {
            NEEDV();
            if (!parse_float_arg(v, -100, 100, &gp.presence_penalty))
                return rb_cli_usage("generate", "bad --presence-penalty value '%s'", v);
        } else if (!strcmp(a, "--frequency-penalty")) {
            NEEDV();
            if (!parse_float_arg(v, -100, 100, &gp.frequency_penalty))
                return rb_cli_usage("generate", "bad --frequency-penalty value '%s'", v);
        } else if (!strcmp(a, "--seed")) {
            NEEDV();
            if (!parse_int_arg(v, 0, 2147483647L, &seed))
                return rb_cli_usage("generate", "bad --seed value '%s'", v);
            gp.seed = (uint64_t)seed;
        } else if (!strcmp(a, "--stop")) {
            NEEDV();
            if (n_stop == sizeof stops / sizeof stops[0])
                return rb_cli_usage("generate", "at most 16 --stop strings");
            stops[n_stop++] = v;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
            NEEDV();
            if (!parse_int_arg(v, 8, 1 << 20, &mp.n_ctx))
                return rb_cli_usage("generate", "bad --ctx-size value '%s'", v);
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            NEEDV();
            if (!parse_int_arg(v, 1, 256, &mp.n_threads))
                return rb_cli_usage("generate", "bad --threads value '%s'", v);
        } else if (!strcmp(a, "--raw")) {
            raw = true;
        } else if (!strcmp(a, "--stats")) {
            stats = true;
        } else {
            return rb_cli_usage("generate", "unknown argument '%s'", a);
        }
#undef NEEDV
    }
    if (!model)
        return rb_cli_usage("generate", "-m MODEL is required");
    if (!prompt)
        return rb_cli_usage("generate", "-p PROMPT is required");
    gp.stop = stops;
    gp.n_stop = n_stop;
    struct rb_errmsg err = {{0}};
    struct rb_engine_model *m = NULL;
    if (rb_engine_model_open(model, &mp, &m, &err) != RB_OK)
        return rb_cli_fail("%s", err.text);
    if (rb_engine_model_kind(m) != RB_ENGINE_MODEL_GENERATE) {
        rb_engine_model_close(m);
        return rb_cli_fail("%s: %s is an embedding model; use 'ragbox embed'", model,
                           "this");
    }
    char *text = NULL;
    if (!raw) {
        struct rb_engine_chat_message msgs[2];
        size_t nm = 0;
        if (system)
            msgs[nm++] = (struct rb_engine_chat_message){"system", system};
        msgs[nm++] = (struct rb_engine_chat_message){"user", prompt};
        if (rb_engine_chat_apply(rb_engine_model_tokenizer(m), msgs, nm, true,
                                 RB_ENGINE_CHAT_UNKNOWN, NULL, &text, &err) != RB_OK) {
            rb_engine_model_close(m);
            return rb_cli_fail("%s (use --raw for plain completion)", err.text);
        }
    }
    struct rb_engine_gen_result res;
    enum rb_status st = rb_engine_generate(m, text ? text : prompt, &gp, write_piece, NULL,
                                           false, &res);
    free(text);
    if (st != RB_OK) {
        int rc = rb_cli_fail("%s", rb_engine_model_errmsg(m));
        rb_engine_model_close(m);
        return rc;
    }
    if (!raw || res.finish != RB_ENGINE_FINISH_CANCELLED)
        fputc('\n', stdout);
    fflush(stdout);
    if (stats)
        fprintf(stderr,
                "prompt: %d tokens in %.1f ms (%.1f tok/s); generated: %d tokens in %.1f ms "
                "(%.1f tok/s); finish: %s\n",
                res.n_prompt_tokens, res.prompt_ms,
                res.prompt_ms > 0 ? res.n_prompt_tokens * 1e3 / res.prompt_ms : 0.0,
                res.n_gen_tokens, res.gen_ms,
                res.gen_ms > 0 ? res.n_gen_tokens * 1e3 / res.gen_ms : 0.0,
                rb_engine_finish_name(res.finish));
    rb_engine_model_close(m);
    return RB_EXIT_OK;
}

/* --------------------------------------------------------------------- embed */

static void embed_usage(FILE *out)
{
    fputs("Usage: ragbox embed -m MODEL [options] [FILE|-]\n"
          "\n"
          "Prints the embedding of the whole input text (FILE, or standard input when FILE\n"
          "is '-' or absent) as a JSON array of numbers: pooled as the model file says and\n"
          "L2-normalised. Text longer than the model's context is truncated to it.\n"
          "\n"
          "Options:\n"
          "  -m, --model MODEL  GGUF embedding model (bert family)\n"
          "  -t, --threads N    compute threads (default: all CPUs)\n"
          "  -h, --help         this help\n"
          "\n"
          "Exit status: 0 on success, 1 on error, 2 on usage.\n",
          out);
}

int rb_cmd_embed(struct rb_cli *cli, int argc, char **argv)
{
    (void)cli;
    if (rb_cli_wants_help(argc, argv)) {
        embed_usage(stdout);
        return RB_EXIT_OK;
    }
    const char *model = NULL, *file = NULL;
    struct rb_engine_model_params mp;
    rb_engine_model_params_default(&mp);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && i + 1 < argc) {
            model = argv[++i];
        } else if ((!strcmp(a, "-t") || !strcmp(a, "--threads")) && i + 1 < argc) {
            if (!parse_int_arg(argv[++i], 1, 256, &mp.n_threads))
                return rb_cli_usage("embed", "bad --threads value '%s'", argv[i]);
        } else if (a[0] == '-' && strcmp(a, "-") != 0) {
            return rb_cli_usage("embed", "unknown or incomplete option '%s'", a);
        } else if (!file) {
            file = a;
        } else {
            return rb_cli_usage("embed", "only one input file");
        }
    }
    if (!model)
        return rb_cli_usage("embed", "-m MODEL is required");
    char *data = NULL;
    size_t len = 0;
    if (read_input(file, &data, &len) != RB_OK)
        return rb_cli_fail("cannot read %s", file && strcmp(file, "-") ? file : "standard input");
    if (strlen(data) != len) {
        free(data);
        return rb_cli_fail("input contains a NUL byte");
    }
    struct rb_errmsg err = {{0}};
    struct rb_engine_model *m = NULL;
    if (rb_engine_model_open(model, &mp, &m, &err) != RB_OK) {
        free(data);
        return rb_cli_fail("%s", err.text);
    }
    const int dim = rb_engine_model_dim(m);
    float *v = malloc((size_t)dim * sizeof(float));
    const char *texts[1] = {data};
    enum rb_status st = v ? rb_engine_embed(m, texts, 1, v) : RB_ERR_NOMEM;
    free(data);
    if (st != RB_OK) {
        int rc = rb_cli_fail("%s", v ? rb_engine_model_errmsg(m) : "out of memory");
        free(v);
        rb_engine_model_close(m);
        return rc;
    }
    fputc('[', stdout);
    for (int i = 0; i < dim; i++)
        printf("%s%.9g", i ? ", " : "", v[i]);
    fputs("]\n", stdout);
    free(v);
    rb_engine_model_close(m);
    return RB_EXIT_OK;
}

/* --------------------------------------------------------------------- bench */

static void bench_usage(FILE *out)
{
    fputs("Usage: ragbox bench -m MODEL [-t THREADS] [-p 128,512] [-n 64] [-r REPS] [--json]\n"
          "\n"
          "Measures this machine's speed on MODEL like llama-bench: prompt processing\n"
          "(prefill of N tokens, one test per -p value) and text generation (decoding\n"
          "-n tokens one at a time), in tokens per second, mean and standard deviation\n"
          "over REPS repetitions after one warm-up run. Token ids are random: speed does\n"
          "not depend on the text. For embedding models the -p tests time the encoder.\n"
          "\n"
          "Options:\n"
          "  -m, --model MODEL   GGUF model\n"
          "  -t, --threads LIST  thread counts, comma-separated (default: all CPUs)\n"
          "  -p, --n-prompt LIST prompt lengths, comma-separated (default 512; 0: none)\n"
          "  -n, --n-gen LIST    generation lengths (default 128; 0: none)\n"
          "  -r, --repetitions N (default 5)\n"
          "  --json              print a JSON list of {model, n_prompt, n_gen, n_threads,\n"
          "                      avg_ts, stddev_ts, samples_ts}\n"
          "  -h, --help          this help\n",
          out);
}

static int parse_list(const char *s, int lo, int hi, int *out, int max)
{
    int n = 0;
    char buf[256];
    if (!rb_strlcpy(buf, s, sizeof buf))
        return -1;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n == max || !parse_int_arg(tok, lo, hi, &out[n]))
            return -1;
        n++;
    }
    return n;
}

int rb_cmd_bench(struct rb_cli *cli, int argc, char **argv)
{
    (void)cli;
    if (rb_cli_wants_help(argc, argv)) {
        bench_usage(stdout);
        return RB_EXIT_OK;
    }
    const char *model = NULL;
    int threads[16], n_threads = 0, prompts[16] = {512}, n_prompts = 1, gens[16] = {128},
                     n_gens = 1, reps = 5;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && v) {
            model = v;
            i++;
        } else if ((!strcmp(a, "-t") || !strcmp(a, "--threads")) && v) {
            if ((n_threads = parse_list(v, 1, 256, threads, 16)) <= 0)
                return rb_cli_usage("bench", "bad -t list '%s'", v);
            i++;
        } else if ((!strcmp(a, "-p") || !strcmp(a, "--n-prompt")) && v) {
            if ((n_prompts = parse_list(v, 0, 1 << 20, prompts, 16)) <= 0)
                return rb_cli_usage("bench", "bad -p list '%s'", v);
            i++;
        } else if ((!strcmp(a, "-n") || !strcmp(a, "--n-gen")) && v) {
            if ((n_gens = parse_list(v, 0, 1 << 20, gens, 16)) <= 0)
                return rb_cli_usage("bench", "bad -n list '%s'", v);
            i++;
        } else if ((!strcmp(a, "-r") || !strcmp(a, "--repetitions")) && v) {
            if (!parse_int_arg(v, 1, 1000, &reps))
                return rb_cli_usage("bench", "bad -r value '%s'", v);
            i++;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else {
            return rb_cli_usage("bench", "unknown or incomplete argument '%s'", a);
        }
    }
    if (!model)
        return rb_cli_usage("bench", "-m MODEL is required");
    if (n_threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads[0] = n > 0 ? (int)n : 1;
        n_threads = 1;
    }
    cJSON *list = json ? cJSON_CreateArray() : NULL;
    if (!json)
        printf("| %-28s | %7s | %-10s | %18s |\n", "model", "threads", "test", "t/s");
    int rc = RB_EXIT_OK;
    const char *base = strrchr(model, '/') ? strrchr(model, '/') + 1 : model;
    for (int ti = 0; ti < n_threads && rc == RB_EXIT_OK; ti++) {
        struct rb_engine_model_params mp = {threads[ti], 0};
        int max_len = 0;
        for (int i = 0; i < n_prompts; i++)
            max_len = prompts[i] > max_len ? prompts[i] : max_len;
        for (int i = 0; i < n_gens; i++)
            max_len = gens[i] > max_len ? gens[i] : max_len;
        mp.n_ctx = max_len + 16;
        struct rb_errmsg err = {{0}};
        struct rb_engine_model *m = NULL;
        if (rb_engine_model_open(model, &mp, &m, &err) != RB_OK) {
            rc = rb_cli_fail("%s", err.text);
            break;
        }
        const bool embed = rb_engine_model_kind(m) == RB_ENGINE_MODEL_EMBED;
        for (int test = 0; test < n_prompts + (embed ? 0 : n_gens) && rc == RB_EXIT_OK; test++) {
            const bool is_pp = test < n_prompts;
            const int np = is_pp ? prompts[test] : 0, ng = is_pp ? 0 : gens[test - n_prompts];
            if (np + ng == 0)
                continue;
            double samples[1000], sum = 0, sq = 0, tps;
            if (rb_engine_bench_once(m, np, ng, 1, &tps) != RB_OK) { /* warm-up */
                rc = rb_cli_fail("%s", rb_engine_model_errmsg(m));
                break;
            }
            for (int r = 0; r < reps; r++) {
                if (rb_engine_bench_once(m, np, ng, (uint64_t)r + 2, &samples[r]) != RB_OK) {
                    rc = rb_cli_fail("%s", rb_engine_model_errmsg(m));
                    break;
                }
                sum += samples[r];
            }
            if (rc != RB_EXIT_OK)
                break;
            const double avg = sum / reps;
            for (int r = 0; r < reps; r++)
                sq += (samples[r] - avg) * (samples[r] - avg);
            const double sd = reps > 1 ? sqrt(sq / (reps - 1)) : 0.0;
            if (json) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "model", base);
                cJSON_AddNumberToObject(o, "n_prompt", np);
                cJSON_AddNumberToObject(o, "n_gen", ng);
                cJSON_AddNumberToObject(o, "n_threads", threads[ti]);
                cJSON_AddNumberToObject(o, "avg_ts", avg);
                cJSON_AddNumberToObject(o, "stddev_ts", sd);
                cJSON *sa = cJSON_AddArrayToObject(o, "samples_ts");
                for (int r = 0; r < reps; r++)
                    cJSON_AddItemToArray(sa, cJSON_CreateNumber(samples[r]));
                cJSON_AddItemToArray(list, o);
            } else {
                char tn[32];
                snprintf(tn, sizeof tn, is_pp ? "pp%d" : "tg%d", is_pp ? np : ng);
                printf("| %-28.28s | %7d | %-10s | %9.2f ± %6.2f |\n", base, threads[ti], tn,
                       avg, sd);
                fflush(stdout);
            }
        }
        rb_engine_model_close(m);
    }
    if (json) {
        if (rc == RB_EXIT_OK) {
            char *s = cJSON_Print(list);
            if (s)
                puts(s);
            free(s);
        }
        cJSON_Delete(list);
    }
    return rc;
}

/* ------------------------------------------------------------ model quantize */

int rb_cmd_model_quantize(struct rb_cli *cli, int argc, char **argv)
{
    (void)cli;
    if (rb_cli_wants_help(argc, argv)) {
        fputs("Usage: ragbox model quantize [-t THREADS] IN.gguf OUT.gguf TYPE\n"
              "\n"
              "Writes a quantized copy of a GGUF model (F32 / F16 / BF16 weights). TYPE is\n"
              "one of Q8_0, Q4_0, Q4_K_M, Q5_K_M, Q6_K. Per-tensor choices follow the usual\n"
              "rules: norms and biases stay F32, the output matrix gets Q6_K (k-quants and\n"
              "Q4_0), Q4_K_M/Q5_K_M give attn_v and ffn_down Q6_K in selected layers. The\n"
              "output appears atomically (written to OUT.gguf.tmp, then renamed).\n",
              stdout);
        return RB_EXIT_OK;
    }
    const char *pos[3];
    int np = 0, nt = 0;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-t") || !strcmp(argv[i], "--threads")) && i + 1 < argc) {
            if (!parse_int_arg(argv[++i], 1, 64, &nt))
                return rb_cli_usage("model quantize", "bad -t value '%s'", argv[i]);
        } else if (np < 3 && (argv[i][0] != '-' || !argv[i][1])) {
            pos[np++] = argv[i];
        } else {
            return rb_cli_usage("model quantize", "unexpected argument '%s'", argv[i]);
        }
    }
    if (np != 3)
        return rb_cli_usage("model quantize", "expected IN.gguf OUT.gguf TYPE");
    struct rb_errmsg err = {{0}};
    if (rb_engine_quantize(pos[0], pos[1], pos[2], nt, &err) != RB_OK)
        return rb_cli_fail("%s", err.text);
    return RB_EXIT_OK;
}
