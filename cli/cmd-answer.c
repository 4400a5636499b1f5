/* `ragbox ask`, `ragbox batch`, `ragbox eval` and `ragbox forget`: the
 * question path from the command line (answer module). */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "ragbox/answer.h"
#include "ragbox/index.h"
#if __has_include("ragbox/engine.h")
#include "ragbox/engine.h"
#define CMD_ANSWER_HAVE_ENGINE 1
#endif
#if __has_include("ragbox/ingest.h")
#include "ragbox/ingest.h"
#define CMD_ANSWER_HAVE_INGEST 1
#endif

/* ================================================================ session */

/* What every answering command sets up: the index, the generation backend
 * (local GGUF, remote server or none = extractive), the embedder. */
struct session {
    struct rb_cli *cli;
    struct rb_index *index;
    const char *model;        /* --model GGUF (or [answer] model) */
    const char *remote_url;   /* --remote URL (or [answer] remote_url) */
    const char *remote_model;
    const char *embed_model;
    bool extractive;
    int k;
    int max_tokens;
    enum rb_index_mode retrieval;
    const char *vertical;
    const char *user;
    struct rb_answer_env *env; /* packs + audit trail, when built in */
#if CMD_ANSWER_HAVE_ENGINE
    struct rb_engine_model *embedder; /* --embed-model, shared by threads */
#endif
};

#if CMD_ANSWER_HAVE_ENGINE
static enum rb_status open_embedder(struct session *s, struct rb_errmsg *err)
{
    if (!s->embed_model || !*s->embed_model)
        return RB_OK;
    enum rb_status st = rb_engine_model_open(s->embed_model, NULL, &s->embedder, err);
    if (st == RB_OK && rb_engine_model_kind(s->embedder) != RB_ENGINE_MODEL_EMBED) {
        rb_engine_model_close(s->embedder);
        s->embedder = NULL;
        st = rb_errmsg_set(err, RB_ERR_MODEL, "%s is not an embedding model", s->embed_model);
    }
    return st;
}
#endif

static enum rb_status open_backend(struct session *s, struct rb_answer_backend **out,
                                   struct rb_errmsg *err)
{
    *out = NULL;
    if (s->extractive)
        return RB_OK;
    if (s->remote_url && *s->remote_url) {
        struct rb_answer_remote_options ro = {
            .base_url = s->remote_url,
            .model = s->remote_model ? s->remote_model : "default",
            .ca_file = rb_config_str(s->cli->config, "answer", "remote_ca_file", NULL),
            .retries = 3,
        };
        char *key = NULL;
        const char *key_file = rb_config_str(s->cli->config, "answer", "remote_api_key_file", NULL);
        size_t kl = 0;
        if (key_file) {
            enum rb_status st = rb_fs_read_file(key_file, 4096, &key, &kl);
            if (st != RB_OK)
                return rb_errmsg_set(err, st, "%s: cannot read the API key", key_file);
            while (kl && (key[kl - 1] == '\n' || key[kl - 1] == '\r' || key[kl - 1] == ' '))
                key[--kl] = '\0';
            ro.api_key = key;
        }
        int64_t ctx = 8192;
        struct rb_errmsg cerr;
        if (rb_config_int(s->cli->config, "answer", "remote_context_tokens", 8192, 512, 1 << 22,
                          &ctx, &cerr) != RB_OK)
            return rb_errmsg_set(err, RB_ERR_CONFIG, "%s", cerr.text);
        ro.context_tokens = (size_t)ctx;
        enum rb_status st = rb_answer_backend_open_remote(&ro, out, err);
        free(key);
        return st;
    }
    if (s->model && *s->model) {
#if RAGBOX_ANSWER_HAVE_LOCAL
        int64_t n_ctx = 0, threads = 0;
        struct rb_errmsg cerr;
        if (rb_config_int(s->cli->config, "answer", "context_tokens", 0, 0, 1 << 20, &n_ctx,
                          &cerr) != RB_OK ||
            rb_config_int(s->cli->config, "answer", "threads", 0, 0, 1024, &threads, &cerr) !=
                RB_OK)
            return rb_errmsg_set(err, RB_ERR_CONFIG, "%s", cerr.text);
        struct rb_answer_local_options lo = {
            .model_path = s->model,
            .n_ctx = (int)n_ctx,
            .n_threads = (int)threads,
            .chat_template = rb_config_str(s->cli->config, "answer", "chat_template", NULL)};
        return rb_answer_backend_open_local(&lo, out, err);
#else
        return rb_errmsg_set(err, RB_ERR_UNSUPPORTED,
                             "--model %s: this ragbox is built without the engine", s->model);
#endif
    }
    return RB_OK; /* no model configured: extractive */
}

static void session_close(struct session *s)
{
    rb_index_close(s->index);
    s->index = NULL;
#if CMD_ANSWER_HAVE_ENGINE
    rb_engine_model_close(s->embedder);
    s->embedder = NULL;
#endif
#if RAGBOX_ANSWER_HAVE_ENV
    rb_answer_env_close(s->env);
    s->env = NULL;
#endif
}

/* Opens the index and, when built in, the packs and the audit trail. */
static int session_open_env(struct session *s, bool audit)
{
    struct rb_index_options io = {.data_dir = s->cli->data_dir, .config = s->cli->config};
    struct rb_errmsg err;
    if (rb_index_open(&io, &s->index, &err) != RB_OK)
        return rb_cli_fail("%s", err.text);
#if CMD_ANSWER_HAVE_ENGINE
    if (open_embedder(s, &err) != RB_OK) {
        session_close(s);
        return rb_cli_fail("%s", err.text);
    }
#endif
#if RAGBOX_ANSWER_HAVE_ENV
    struct rb_answer_env_options eo = {.data_dir = s->cli->data_dir, .config = s->cli->config,
                                       .audit = audit};
    if (rb_answer_env_open(&eo, &s->env, &err) != RB_OK) {
        session_close(s);
        return rb_cli_fail("%s", err.text);
    }
#else
    (void)audit;
#endif
    return RB_EXIT_OK;
}

static int session_open(struct session *s)
{
    return session_open_env(s, true);
}

static enum rb_status open_answerer(struct session *s, struct rb_answer_backend **backend,
                                    struct rb_answerer **out, struct rb_errmsg *err)
{
    *out = NULL;
    enum rb_status st = open_backend(s, backend, err);
    if (st != RB_OK)
        return st;
    struct rb_answerer_options ao = {.index = s->index,
                                     .backend = *backend,
                                     .k = s->k,
                                     .max_tokens = s->max_tokens};
#if RAGBOX_ANSWER_HAVE_ENV
    if (s->env)
        rb_answer_env_apply(s->env, &ao);
#endif
#if CMD_ANSWER_HAVE_ENGINE
    if (s->embedder) {
        ao.embed = rb_answer_engine_embed;
        ao.embed_user = s->embedder;
    }
#endif
    st = rb_answerer_open(&ao, out, err);
    if (st != RB_OK) {
        rb_answer_backend_close(*backend);
        *backend = NULL;
    }
    return st;
}

/* Common options of ask and batch. Returns 0 when handled, -1 when not ours,
 * or an exit status > 0 for a usage error. */
static int common_option(struct session *s, int c, const char *arg, const char *cmd)
{
    switch (c) {
    case 'm':
        s->model = arg;
        return 0;
    case 'x':
        s->extractive = true;
        return 0;
    case 'k': {
        int64_t v;
        if (rb_parse_i64(arg, &v) != RB_OK || v < 1 || v > 100)
            return rb_cli_usage(cmd, "-k: expected 1..100");
        s->k = (int)v;
        return 0;
    }
    case 'M':
        if (rb_index_mode_parse(arg, &s->retrieval) != RB_OK)
            return rb_cli_usage(cmd, "--mode: expected hybrid, keyword, vector or auto");
        return 0;
    case 'v':
        s->vertical = arg;
        return 0;
    case 'R':
        s->remote_url = arg;
        return 0;
    case 'N':
        s->remote_model = arg;
        return 0;
    case 'E':
        s->embed_model = arg;
        return 0;
    case 'T': {
        int64_t v;
        if (rb_parse_i64(arg, &v) != RB_OK || v < 16 || v > 8192)
            return rb_cli_usage(cmd, "--max-tokens: expected 16..8192");
        s->max_tokens = (int)v;
        return 0;
    }
    case 'u':
        s->user = arg;
        return 0;
    default:
        return -1;
    }
}

static void session_defaults(struct session *s, struct rb_cli *cli)
{
    memset(s, 0, sizeof *s);
    s->cli = cli;
    s->model = rb_config_str(cli->config, "answer", "model", NULL);
    s->remote_url = rb_config_str(cli->config, "answer", "remote_url", NULL);
    s->remote_model = rb_config_str(cli->config, "answer", "remote_model", NULL);
    s->embed_model = rb_config_str(cli->config, "answer", "embed_model", NULL);
    s->vertical = rb_config_str(cli->config, "answer", "vertical", "general");
    s->user = getenv("USER") ? getenv("USER") : "cli";
    s->retrieval = RB_INDEX_MODE_AUTO;
}

#define COMMON_LONG_OPTS                                                                           \
    {"collection", required_argument, NULL, 'c'}, {"vertical", required_argument, NULL, 'v'},     \
        {"model", required_argument, NULL, 'm'}, {"extractive", no_argument, NULL, 'x'},           \
        {"mode", required_argument, NULL, 'M'}, {"remote", required_argument, NULL, 'R'},          \
        {"remote-model", required_argument, NULL, 'N'},                                            \
        {"embed-model", required_argument, NULL, 'E'},                                             \
        {"max-tokens", required_argument, NULL, 'T'}, {"user", required_argument, NULL, 'u'},      \
        {"help", no_argument, NULL, 'h'}

#define COMMON_HELP                                                                                \
    "  -c, --collection C   collection to search (repeat, or C1,C2; required)\n"                  \
    "  -v, --vertical V     finance, healthcare, government or general (default: [answer]\n"    \
    "                       vertical, else general): template, policy, refusal threshold\n"      \
    "  -k N                 passages to retrieve (1..100, default 8)\n"                           \
    "      --mode M         retrieval: hybrid, keyword, vector or auto (default auto: hybrid\n"   \
    "                       when an embedding model is configured, else keyword)\n"              \
    "      --extractive     no LLM: answer with the best-supported sentences, cited\n"           \
    "                       (the default when no model is configured)\n"                        \
    "      --model GGUF     local generation model (default [answer] model)\n"                   \
    "      --remote URL     OpenAI-compatible server, e.g. https://gpu1:8000/v1\n"               \
    "                       (default [answer] remote_url; key from remote_api_key_file)\n"       \
    "      --remote-model N model name to request from the server\n"                             \
    "      --embed-model GGUF  embedding model for the vector leg ([answer] embed_model)\n"     \
    "      --max-tokens N   longest answer in tokens (default 512)\n"                            \
    "      --user NAME      who is asking, for the audit trail (default $USER)\n"

/* Splits "a,b" arguments into a list (pointers into argv strings, which are modified). */
static int add_collections(char *arg, const char **list, size_t *n, size_t max)
{
    for (char *save = NULL, *t = strtok_r(arg, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (*n >= max)
            return -1;
        list[(*n)++] = t;
    }
    return 0;
}

/* The audit trail (wired when the audit module is in this build). */
static enum rb_status forget_tombstone(struct session *s, const struct rb_answer_forget_request *req,
                                       const struct rb_answer_forget_report *rep, char *audit_id,
                                       size_t size, struct rb_errmsg *err)
{
    audit_id[0] = '\0';
#if RAGBOX_ANSWER_HAVE_ENV
    if (s->env)
        return rb_answer_env_tombstone(s->env, s->user, req->collection, req, rep, audit_id, size,
                                       err);
#else
    (void)s;
    (void)req;
    (void)rep;
    (void)size;
    (void)err;
#endif
    return RB_OK;
}

/* ==================================================================== ask */

static bool print_piece(void *user, const char *piece, size_t len)
{
    (void)user;
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
    return true;
}

static void print_sources(const struct rb_answer_result *r)
{
    if (r->n_citations == 0)
        return;
    printf("\nSources:\n");
    for (size_t i = 0; i < r->n_citations; i++) {
        const struct rb_answer_citation *c = &r->citation[i];
        printf("  [%d] %s", c->label, c->document ? c->document : "");
        if (c->page > 0)
            printf(", p. %d", c->page);
        if (c->section && *c->section)
            printf(", \xC2\xA7%s", c->section);
        printf(" (chunk %lld)\n", (long long)c->chunk_id);
    }
}

int rb_cmd_ask(struct rb_cli *cli, int argc, char **argv)
{
    static const char help[] =
        "Usage: ragbox ask --collection C [OPTIONS] QUESTION\n"
        "\n"
        "Answers QUESTION from the documents of the collection(s), citing its sources\n"
        "as [n] (document, page, section), or refuses in the question's language when\n"
        "the documents hold no sufficient evidence. Every question is recorded in the\n"
        "audit trail.\n"
        "\n"
        "Options:\n" COMMON_HELP
        "      --json           print one JSON object: answer, refused, refusal, lang, mode,\n"
        "                       citations [{label, document, page, section, chunk_id, text,\n"
        "                       ...}], evidence, threshold, audit_id, latency_ms\n"
        "      --draft KIND     drafting mode: write a notice or reply letter (KIND notice\n"
        "                       or reply) in the official format from the retrieved sources,\n"
        "                       with citations; QUESTION is the drafting request. Needs a\n"
        "                       generation model and a pack with draft templates\n"
        "                       (--vertical government)\n"
        "  -h, --help           this help\n"
        "\n"
        "Answers (and citations) are redacted of personal data when the collection's\n"
        "policy or the pack says so (see `ragbox collection policy`).\n"
        "\n"
        "Exit status: 0 answered or refused, 1 error, 2 usage.\n";
    if (rb_cli_wants_help(argc, argv)) {
        fputs(help, stdout);
        return RB_EXIT_OK;
    }
    static const struct option opts[] = {COMMON_LONG_OPTS, {"json", no_argument, NULL, 'j'},
                                         {"draft", required_argument, NULL, 'D'},
                                         {NULL, 0, NULL, 0}};
    struct session s;
    session_defaults(&s, cli);
    const char *collections[64];
    size_t n_coll = 0;
    bool json = false;
    const char *draft = NULL;
    int c;
    optind = 0; /* glibc: 0 fully re-initialises getopt (main used "+" mode) */
    while ((c = getopt_long(argc, argv, "c:v:k:m:xh", opts, NULL)) != -1) {
        int r = common_option(&s, c, optarg, "ask");
        if (r > 0)
            return r;
        if (r == 0)
            continue;
        switch (c) {
        case 'c':
            if (add_collections(optarg, collections, &n_coll, 64) != 0)
                return rb_cli_usage("ask", "too many collections");
            break;
        case 'j':
            json = true;
            break;
        case 'D': {
            size_t k = 0;
            while (rb_answer_draft_kinds[k] && strcmp(rb_answer_draft_kinds[k], optarg) != 0)
                k++;
            if (!rb_answer_draft_kinds[k])
                return rb_cli_usage("ask", "--draft must be notice or reply");
            draft = optarg;
            break;
        }
        default:
            return rb_cli_usage("ask", "unknown option");
        }
    }
    if (n_coll == 0)
        return rb_cli_usage("ask", "--collection is required");
    if (optind >= argc)
        return rb_cli_usage("ask", "the QUESTION is missing");
    /* the question may come as several words */
    struct rb_buf q;
    rb_buf_init(&q, 1 << 16);
    for (int i = optind; i < argc; i++)
        if (rb_buf_printf(&q, "%s%s", i > optind ? " " : "", argv[i]) != RB_OK)
            return rb_cli_usage("ask", "the question is too long (64 KiB at most)");
    if (!rb_utf8_valid(q.data, q.len)) {
        rb_buf_free(&q);
        return rb_cli_usage("ask", "the question is not valid UTF-8");
    }
    int rc = session_open(&s);
    if (rc != RB_EXIT_OK) {
        rb_buf_free(&q);
        return rc;
    }
    struct rb_answer_backend *backend = NULL;
    struct rb_answerer *a = NULL;
    struct rb_errmsg err;
    if (open_answerer(&s, &backend, &a, &err) != RB_OK) {
        rb_buf_free(&q);
        session_close(&s);
        return rb_cli_fail("%s", err.text);
    }
    struct rb_answer_request req = {
        .question = q.data,
        .collections = collections,
        .n_collections = n_coll,
        .vertical = s.vertical,
        .mode = s.extractive ? RB_ANSWER_MODE_EXTRACTIVE : RB_ANSWER_MODE_AUTO,
        .retrieval = s.retrieval,
        .user = s.user,
        .client = "cli",
        .on_piece = json || !backend ? NULL : print_piece,
        .draft = draft,
    };
    struct rb_answer_result r;
    enum rb_status st = rb_answerer_ask(a, &req, &r, &err);
    if (st != RB_OK) {
        rc = rb_cli_fail("%s", err.text);
    } else if (json) {
        cJSON *o = rb_answer_result_json(&r, false);
        char *text = o ? cJSON_Print(o) : NULL;
        if (text)
            printf("%s\n", text);
        else
            rc = rb_cli_fail("out of memory");
        free(text);
        cJSON_Delete(o);
    } else {
        if (!req.on_piece || r.refused)
            printf("%s%s\n", req.on_piece ? "\n\n" : "", r.answer);
        else
            printf("\n");
        print_sources(&r);
        if (r.audit_id[0])
            printf("(audit %s)\n", r.audit_id);
    }
    rb_answer_result_free(&r);
    rb_answerer_close(a);
    rb_answer_backend_close(backend);
    session_close(&s);
    rb_buf_free(&q);
    return rc;
}

/* ================================================================== batch */

static volatile int batch_stop;
static void on_signal(int sig)
{
    (void)sig;
    batch_stop = 1;
}

struct batch_ctx {
    struct session *s;
    const char **collections;
    size_t n_coll;
};

struct batch_worker {
    struct batch_ctx *ctx;
    struct rb_answer_backend *backend;
    struct rb_answerer *a;
};

static enum rb_status batch_open(void *user, void **out, struct rb_errmsg *err)
{
    struct batch_ctx *ctx = user;
    struct batch_worker *w = calloc(1, sizeof *w);
    if (!w)
        return RB_ERR_NOMEM;
    w->ctx = ctx;
    enum rb_status st = open_answerer(ctx->s, &w->backend, &w->a, err);
    if (st != RB_OK) {
        free(w);
        return st;
    }
    *out = w;
    return RB_OK;
}

static enum rb_status batch_ask(void *worker, const char *id, const char *question,
                                struct rb_answer_result *out, struct rb_errmsg *err)
{
    struct batch_worker *w = worker;
    (void)id;
    struct rb_answer_request req = {
        .question = question,
        .collections = w->ctx->collections,
        .n_collections = w->ctx->n_coll,
        .vertical = w->ctx->s->vertical,
        .mode = w->ctx->s->extractive ? RB_ANSWER_MODE_EXTRACTIVE : RB_ANSWER_MODE_AUTO,
        .retrieval = w->ctx->s->retrieval,
        .user = w->ctx->s->user,
        .client = "batch",
    };
    return rb_answerer_ask(w->a, &req, out, err);
}

static void batch_close(void *worker)
{
    struct batch_worker *w = worker;
    rb_answerer_close(w->a);
    rb_answer_backend_close(w->backend);
    free(w);
}

int rb_cmd_batch(struct rb_cli *cli, int argc, char **argv)
{
    static const char help[] =
        "Usage: ragbox batch QUESTIONS --collection C --out FILE [OPTIONS]\n"
        "\n"
        "Answers every question of QUESTIONS (.jsonl objects with \"question\" and\n"
        "optional \"id\"; .csv or .xlsx with a header row naming a \"question\" column\n"
        "and optionally \"id\") in parallel, each with its citations and refusal flag,\n"
        "and writes FILE (.jsonl, .csv or .xlsx) in question order. Progress goes to a\n"
        "journal FILE.journal as questions finish: after an interruption (Ctrl-C, a\n"
        "crash, a reboot) the same command resumes without redoing finished questions.\n"
        "\n"
        "Options:\n" COMMON_HELP
        "  -o, --out FILE       output file (.jsonl, .csv or .xlsx; required)\n"
        "  -j, --workers N      parallel questions (default [answer] workers, else 2)\n"
        "      --restart        discard an existing journal and start over\n"
        "      --no-progress    no progress bar (default: shown on a terminal)\n"
        "  -h, --help           this help\n"
        "\n"
        "Exit status: 0 all questions done, 1 error or interrupted (resumable), 2 usage.\n";
    if (rb_cli_wants_help(argc, argv)) {
        fputs(help, stdout);
        return RB_EXIT_OK;
    }
    static const struct option opts[] = {COMMON_LONG_OPTS,
                                         {"out", required_argument, NULL, 'o'},
                                         {"workers", required_argument, NULL, 'j'},
                                         {"restart", no_argument, NULL, 'r'},
                                         {"no-progress", no_argument, NULL, 'P'},
                                         {NULL, 0, NULL, 0}};
    struct session s;
    session_defaults(&s, cli);
    const char *collections[64];
    size_t n_coll = 0;
    const char *out = NULL;
    int64_t workers = 2;
    struct rb_errmsg err;
    if (rb_config_int(cli->config, "answer", "workers", 2, 1, 64, &workers, &err) != RB_OK)
        return rb_cli_fail("%s", err.text);
    bool restart = false, progress = isatty(STDERR_FILENO);
    int c;
    optind = 0; /* glibc: 0 fully re-initialises getopt (main used "+" mode) */
    while ((c = getopt_long(argc, argv, "c:v:k:m:xo:j:h", opts, NULL)) != -1) {
        int r = common_option(&s, c, optarg, "batch");
        if (r > 0)
            return r;
        if (r == 0)
            continue;
        switch (c) {
        case 'c':
            if (add_collections(optarg, collections, &n_coll, 64) != 0)
                return rb_cli_usage("batch", "too many collections");
            break;
        case 'o':
            out = optarg;
            break;
        case 'j':
            if (rb_parse_i64(optarg, &workers) != RB_OK || workers < 1 || workers > 64)
                return rb_cli_usage("batch", "--workers: expected 1..64");
            break;
        case 'r':
            restart = true;
            break;
        case 'P':
            progress = false;
            break;
        default:
            return rb_cli_usage("batch", "unknown option");
        }
    }
    if (optind >= argc)
        return rb_cli_usage("batch", "the QUESTIONS file is missing");
    if (n_coll == 0)
        return rb_cli_usage("batch", "--collection is required");
    if (!out)
        return rb_cli_usage("batch", "--out is required");
    int rc = session_open(&s);
    if (rc != RB_EXIT_OK)
        return rc;
    struct batch_ctx ctx = {&s, collections, n_coll};
    struct rb_answer_batch_ops ops = {batch_open, batch_ask, batch_close, &ctx};
    struct rb_answer_batch_options bo = {.questions_path = argv[optind],
                                         .out_path = out,
                                         .workers = (int)workers,
                                         .progress = progress,
                                         .restart = restart,
                                         .stop = &batch_stop};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct rb_answer_batch_summary sum;
    enum rb_status st = rb_answer_batch_run(&bo, &ops, &sum, &err);
    fprintf(stderr,
            "%zu questions: %zu answered, %zu refused, %zu failed; %zu done now (%zu resumed "
            "from the journal) in %.1f s, %.0f ms per question\n",
            sum.total, sum.answered, sum.refused, sum.failed, sum.asked_now, sum.resumed,
            sum.seconds, sum.mean_latency_ms);
    if (st != RB_OK)
        rc = rb_cli_fail("%s", err.text);
    else
        fprintf(stderr, "wrote %s\n", out);
    session_close(&s);
    return rc;
}

/* =================================================================== eval */

#if CMD_ANSWER_HAVE_INGEST
/* Eval documents through ingest's parsers (sandboxed) and structure-aware
 * chunker, as `ragbox ingest` does (PDF pages, tables, headings). */
struct eval_ingest_ctx {
    const struct rb_config *cfg;
#if CMD_ANSWER_HAVE_ENGINE
    struct rb_engine_model *embedder; /* NULL = keyword only */
#endif
};

static enum rb_status eval_ingest(void *user, struct rb_index *idx, int64_t collection_id,
                                  const char *path, struct rb_errmsg *err)
{
    const struct eval_ingest_ctx *ctx = user;
    const struct rb_config *cfg = ctx->cfg;
    struct rb_ingest_limits lim;
    rb_ingest_limits_default(&lim);
    lim.ocr = false; /* the eval documents have a text layer */
    struct rb_ingest_doc *doc = NULL;
    enum rb_status st = rb_ingest_parse_file(path, &lim, &doc, err);
    if (st != RB_OK)
        return st;
    struct rb_ingest_chunk_options co;
    rb_ingest_chunk_options_default(&co);
    if ((st = rb_ingest_chunk_options_from_config(cfg, NULL, &co, err)) != RB_OK) {
        rb_ingest_doc_free(doc);
        return st;
    }
    struct rb_ingest_chunks ch = {0};
    if ((st = rb_ingest_chunk(doc, &co, &ch, err)) != RB_OK) {
        rb_ingest_doc_free(doc);
        return st;
    }
    struct rb_index_chunk *ic = rb_calloc_array(ch.n ? ch.n : 1, sizeof *ic);
    char hash[RB_SHA256_HEX_LEN + 1];
    st = ic ? rb_sha256_file(path, hash) : RB_ERR_NOMEM;
    for (size_t i = 0; st == RB_OK && i < ch.n; i++) {
        ic[i].ordinal = (int32_t)i;
        ic[i].text = ch.items[i].text;
        ic[i].page_start = ch.items[i].page_start;
        ic[i].page_end = ch.items[i].page_end;
        ic[i].section = ch.items[i].section;
        ic[i].byte_start = (int64_t)ch.items[i].byte_start;
        ic[i].byte_end = (int64_t)ch.items[i].byte_end;
        ic[i].char_start = (int64_t)ch.items[i].char_start;
        ic[i].char_end = (int64_t)ch.items[i].char_end;
        ic[i].token_count = ch.items[i].token_count;
    }
    float *vecs = NULL;
#if CMD_ANSWER_HAVE_ENGINE
    if (st == RB_OK && ctx->embedder && ch.n) {
        int dim = rb_engine_model_dim(ctx->embedder);
        const char **texts = rb_calloc_array(ch.n, sizeof *texts);
        vecs = rb_calloc_array(ch.n * (size_t)dim, sizeof *vecs);
        if (!texts || !vecs)
            st = RB_ERR_NOMEM;
        for (size_t i = 0; st == RB_OK && i < ch.n; i++)
            texts[i] = ch.items[i].text;
        for (size_t i = 0; st == RB_OK && i < ch.n; i += 16) {
            size_t nb = ch.n - i < 16 ? ch.n - i : 16;
            st = rb_engine_embed(ctx->embedder, texts + i, nb, vecs + i * (size_t)dim);
        }
        for (size_t i = 0; st == RB_OK && i < ch.n; i++) {
            ic[i].embedding = vecs + i * (size_t)dim;
            ic[i].embedding_dim = dim;
        }
        free(texts);
        if (st != RB_OK)
            rb_errmsg_set(err, st, "embedding %s failed", path);
    }
#endif
    if (st == RB_OK) {
        const char *name = rb_path_basename(path);
        struct rb_index_document d = {.collection_id = collection_id,
                                      .source = name,
                                      .sha256 = hash,
                                      .title = name,
                                      .language = doc->language,
                                      .metadata_json = doc->metadata_json,
                                      .state = RB_INDEX_DOC_INDEXED};
        st = rb_index_document_put(idx, &d, ic, ch.n, NULL, NULL);
        if (st != RB_OK)
            rb_errmsg_set(err, st, "%s: %s", name, rb_index_errmsg(idx));
    }
    free(ic);
    free(vecs);
    rb_ingest_chunks_free(&ch);
    rb_ingest_doc_free(doc);
    return st;
}
#endif

int rb_cmd_eval(struct rb_cli *cli, int argc, char **argv)
{
    static const char help[] =
        "Usage: ragbox eval [OPTIONS]\n"
        "\n"
        "Measures retrieval and answers on the development question sets (each a\n"
        "folder with questions.jsonl and docs/): indexes each set's documents into a\n"
        "collection eval-<set> (kept for the next run), then per question the gold\n"
        "document's recall@1/5/10, MRR and nDCG@10 for the keyword, vector and hybrid\n"
        "legs side by side, answer accuracy on short gold answers (yes/no/maybe,\n"
        "figures, short spans), citation precision, refusals on answerable and\n"
        "UNANSWERABLE questions and on questions asked of another set's collection,\n"
        "and the refusal-threshold sweep per vertical. Writes eval-report.md and\n"
        "eval-report.json and prints the markdown.\n"
        "\n"
        "Options:\n"
        "      --sets DIR       the sets (default $RAGBOX_SHARED/eval, else ../shared/eval)\n"
        "  -s, --set NAME       one set (repeatable; default all: financebench, pubmedqa,\n"
        "                       tatqa, crud-zh, cail2019-zh, cmdd-zh)\n"
        "  -n, --limit N        questions per set (default all)\n"
        "  -k N                 retrieval depth for the metrics (default 10)\n"
        "      --embed-model GGUF  embedding model: adds the vector and hybrid legs\n"
        "      --remote URL     answer with an OpenAI-compatible server instead of extractively\n"
        "      --remote-model N model name for --remote\n"
        "      --reingest       rebuild the eval collections\n"
        "      --txt-chunker    index .txt sets with the built-in paragraph chunker instead\n"
        "                       of ingest's parsers and chunker (PDF sets are then skipped)\n"
        "  -o, --out-dir DIR    where the reports go (default DATA/eval)\n"
        "  -h, --help           this help\n";
    if (rb_cli_wants_help(argc, argv)) {
        fputs(help, stdout);
        return RB_EXIT_OK;
    }
    static const struct option opts[] = {{"sets", required_argument, NULL, 'S'},
                                         {"set", required_argument, NULL, 's'},
                                         {"limit", required_argument, NULL, 'n'},
                                         {"embed-model", required_argument, NULL, 'E'},
                                         {"remote", required_argument, NULL, 'R'},
                                         {"remote-model", required_argument, NULL, 'N'},
                                         {"reingest", no_argument, NULL, 'r'},
                                         {"txt-chunker", no_argument, NULL, 't'},
                                         {"out-dir", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct session s;
    session_defaults(&s, cli);
    s.remote_url = NULL; /* eval answers extractively unless asked */
    s.model = NULL;
    const char *sets[16];
    size_t n_sets = 0;
    int64_t limit = 0, k = 10;
    bool reingest = false, use_ingest = true;
    char *sets_dir = NULL, *out_dir = NULL;
    int c;
    optind = 0; /* glibc: 0 fully re-initialises getopt (main used "+" mode) */
    while ((c = getopt_long(argc, argv, "s:n:k:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'S':
            free(sets_dir);
            sets_dir = rb_strdup(optarg);
            break;
        case 's':
            if (n_sets == 16)
                return rb_cli_usage("eval", "too many --set");
            sets[n_sets++] = optarg;
            break;
        case 'n':
            if (rb_parse_i64(optarg, &limit) != RB_OK || limit < 1)
                return rb_cli_usage("eval", "--limit: expected a positive number");
            break;
        case 'k':
            if (rb_parse_i64(optarg, &k) != RB_OK || k < 1 || k > 50)
                return rb_cli_usage("eval", "-k: expected 1..50");
            break;
        case 'E':
            s.embed_model = optarg;
            break;
        case 'R':
            s.remote_url = optarg;
            break;
        case 'N':
            s.remote_model = optarg;
            break;
        case 'r':
            reingest = true;
            break;
        case 't':
            use_ingest = false;
            break;
        case 'o':
            free(out_dir);
            out_dir = rb_strdup(optarg);
            break;
        default:
            return rb_cli_usage("eval", "unknown option");
        }
    }
    if (!sets_dir) {
        const char *sh = getenv("RAGBOX_SHARED");
        sets_dir = sh ? rb_path_join(sh, "eval") : rb_strdup("../shared/eval");
    }
    if (!out_dir)
        out_dir = rb_path_join(cli->data_dir, "eval");
    int rc = session_open_env(&s, false);
    if (rc != RB_EXIT_OK) {
        free(sets_dir);
        free(out_dir);
        return rc;
    }
    struct rb_answer_backend *backend = NULL;
    struct rb_errmsg err;
    if (s.remote_url && open_backend(&s, &backend, &err) != RB_OK) {
        session_close(&s);
        free(sets_dir);
        free(out_dir);
        return rb_cli_fail("%s", err.text);
    }
#if CMD_ANSWER_HAVE_INGEST
    struct eval_ingest_ctx ictx = {.cfg = cli->config};
#if CMD_ANSWER_HAVE_ENGINE
    ictx.embedder = s.embedder;
#endif
#endif
    struct rb_answer_eval_options eo = {.index = s.index,
                                        .sets_dir = sets_dir,
                                        .sets = n_sets ? sets : NULL,
                                        .n_sets = n_sets,
                                        .limit = (size_t)limit,
                                        .k = (int)k,
                                        .reingest = reingest,
#if CMD_ANSWER_HAVE_ENGINE
                                        .have_vectors = s.embedder != NULL,
                                        .embed = s.embedder ? rb_answer_engine_embed : NULL,
                                        .embed_user = s.embedder,
#endif
                                        .backend = backend,
                                        .min_evidence = -1,
#if CMD_ANSWER_HAVE_INGEST
                                        .ingest = use_ingest ? eval_ingest : NULL,
                                        .ingest_user = &ictx,
#endif
                                        .out_dir = out_dir,
                                        .progress = isatty(STDERR_FILENO),
                                        .print = true};
    enum rb_status st = rb_answer_eval_run(&eo, &err);
    if (st != RB_OK)
        rc = rb_cli_fail("%s", err.text);
    else
        fprintf(stderr, "reports: %s/eval-report.md, %s/eval-report.json\n", out_dir, out_dir);
    rb_answer_backend_close(backend);
    session_close(&s);
    free(sets_dir);
    free(out_dir);
    return rc;
}

/* ================================================================= forget */

int rb_cmd_forget(struct rb_cli *cli, int argc, char **argv)
{
    static const char help[] =
        "Usage: ragbox forget --collection C --document DOC [--document DOC ...]\n"
        "       ragbox forget --collection C --person IDENT [--person IDENT ...]\n"
        "\n"
        "Right to be forgotten. --document removes documents (by source path or id)\n"
        "with all their chunks, keyword entries and vectors. --person removes every\n"
        "chunk whose text mentions any of the identifiers (name, ID number, e-mail,\n"
        "phone; matched case-insensitively with spaces folded), and whole documents\n"
        "whose title, source or metadata mention them. Afterwards the keyword index is\n"
        "rebuilt, the vector files rewritten and the database vacuumed, so the text is\n"
        "gone from every file of the data directory. The audit trail receives a\n"
        "tombstone with the document ids and hashes and chunk counts, never the\n"
        "identifiers themselves.\n"
        "\n"
        "Options:\n"
        "  -c, --collection C   the collection (required)\n"
        "  -d, --document DOC   a document's source path or numeric id (repeatable)\n"
        "  -p, --person IDENT   an identifier of the person (repeatable)\n"
        "      --dry-run        show what would be removed, remove nothing\n"
        "      --user NAME      operator, for the audit trail (default $USER)\n"
        "  -h, --help           this help\n";
    if (rb_cli_wants_help(argc, argv)) {
        fputs(help, stdout);
        return RB_EXIT_OK;
    }
    static const struct option opts[] = {{"collection", required_argument, NULL, 'c'},
                                         {"document", required_argument, NULL, 'd'},
                                         {"person", required_argument, NULL, 'p'},
                                         {"dry-run", no_argument, NULL, 'n'},
                                         {"user", required_argument, NULL, 'u'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct session s;
    session_defaults(&s, cli);
    struct rb_answer_forget_request req = {0};
    const char *docs[256], *idents[64];
    int c;
    optind = 0; /* glibc: 0 fully re-initialises getopt (main used "+" mode) */
    while ((c = getopt_long(argc, argv, "c:d:p:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            req.collection = optarg;
            break;
        case 'd':
            if (req.n_documents == RB_ARRAY_LEN(docs))
                return rb_cli_usage("forget", "too many --document");
            docs[req.n_documents++] = optarg;
            break;
        case 'p':
            if (req.n_identifiers == RB_ARRAY_LEN(idents))
                return rb_cli_usage("forget", "too many --person");
            idents[req.n_identifiers++] = optarg;
            break;
        case 'n':
            req.dry_run = true;
            break;
        case 'u':
            s.user = optarg;
            break;
        default:
            return rb_cli_usage("forget", "unknown option");
        }
    }
    if (!req.collection || (req.n_documents == 0) == (req.n_identifiers == 0))
        return rb_cli_usage("forget", "--collection and either --document or --person are required");
    req.documents = docs;
    req.identifiers = idents;
    int rc = session_open(&s);
    if (rc != RB_EXIT_OK)
        return rc;
    struct rb_answer_forget_report rep;
    struct rb_errmsg err;
    enum rb_status st = rb_answer_forget(s.index, &req, &rep, &err);
    if (st != RB_OK) {
        rc = rb_cli_fail("%s", err.text);
    } else {
        printf("%s%zu document(s) removed whole, %zu chunk(s) removed from %zu other document(s) "
               "in %s\n",
               req.dry_run ? "dry run, would be: " : "", rep.documents, rep.chunks,
               rep.partial_documents, req.collection);
        if (!req.dry_run && rep.n_affected) {
            char audit_id[96] = "";
            st = forget_tombstone(&s, &req, &rep, audit_id, sizeof audit_id, &err);
            if (st != RB_OK)
                rc = rb_cli_fail("the deletion is done but its audit tombstone failed: %s",
                                 err.text);
            else if (audit_id[0])
                printf("audit tombstone %s\n", audit_id);
        }
    }
    rb_answer_forget_report_free(&rep);
    session_close(&s);
    return rc;
}

/* ===================================================== collection policy */

/* Sets policy.redaction.<key> to on/off, or removes it for "default". */
static int policy_set_redaction(cJSON *pol, const char *key, const char *value)
{
    cJSON *red = cJSON_GetObjectItemCaseSensitive(pol, "redaction");
    if (red && !cJSON_IsObject(red)) {
        cJSON_DeleteItemFromObjectCaseSensitive(pol, "redaction");
        red = NULL;
    }
    if (!red && !(red = cJSON_AddObjectToObject(pol, "redaction")))
        return rb_cli_fail("out of memory");
    cJSON_DeleteItemFromObjectCaseSensitive(red, key);
    if (strcmp(value, "default") == 0)
        return RB_EXIT_OK;
    bool on;
    if (strcmp(value, "on") == 0 || strcmp(value, "true") == 0)
        on = true;
    else if (strcmp(value, "off") == 0 || strcmp(value, "false") == 0)
        on = false;
    else
        return rb_cli_usage("collection policy", "--redact-%s takes on, off or default", key);
    if (!cJSON_AddBoolToObject(red, key, on))
        return rb_cli_fail("out of memory");
    return RB_EXIT_OK;
}

int rb_cmd_collection_policy(struct rb_cli *cli, int argc, char **argv);
int rb_cmd_collection_policy(struct rb_cli *cli, int argc, char **argv)
{
    static const char help[] =
        "Usage: ragbox collection policy NAME [--set JSON] [--redact-ingest on|off|default]\n"
        "                                     [--redact-answers on|off|default]\n"
        "\n"
        "Shows (without options) or changes the collection's policy, a JSON object.\n"
        "Keys ragbox reads:\n"
        "  \"redaction\": {\"ingest\": bool}   redact personal data (cards, IBAN, SSN,\n"
        "       Chinese ID, phones, e-mail, dates of birth, MRN, accounts) from the text\n"
        "       before it is stored, keyword-indexed or embedded; default off. Applies\n"
        "       to documents ingested from now on: re-ingest (ragbox ingest --force) to\n"
        "       redact what is already stored.\n"
        "  \"redaction\": {\"answers\": bool}  redact answers, citations and streamed\n"
        "       text; default the vertical pack's [redaction] apply_to_answers (on in\n"
        "       every shipped pack).\n"
        "`ragbox redact FILE` shows what the rules find in a file.\n"
        "\n"
        "Options:\n"
        "  --set JSON                  replace the whole policy with JSON (an object)\n"
        "  --redact-ingest on|off|default\n"
        "  --redact-answers on|off|default\n"
        "  -h, --help                  this help\n";
    if (rb_cli_wants_help(argc, argv)) {
        fputs(help, stdout);
        return RB_EXIT_OK;
    }
    static const struct option opts[] = {{"set", required_argument, NULL, 's'},
                                         {"redact-ingest", required_argument, NULL, 'i'},
                                         {"redact-answers", required_argument, NULL, 'a'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *set = NULL, *ingest = NULL, *answers = NULL;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            set = optarg;
            break;
        case 'i':
            ingest = optarg;
            break;
        case 'a':
            answers = optarg;
            break;
        default:
            return rb_cli_usage("collection policy", "unknown option");
        }
    }
    if (optind + 1 != argc)
        return rb_cli_usage("collection policy", "expected one collection NAME");
    const char *name = argv[optind];
    bool change = set || ingest || answers;
    struct rb_index_options io = {.data_dir = cli->data_dir, .config = cli->config,
                                  .read_only = !change};
    struct rb_index *idx = NULL;
    struct rb_errmsg err;
    if (rb_index_open(&io, &idx, &err) != RB_OK)
        return rb_cli_fail("%s", err.text);
    struct rb_index_collection *col = NULL;
    if (rb_index_collection_get(idx, name, &col) != RB_OK) {
        int rc = rb_cli_fail("%s", rb_index_errmsg(idx));
        rb_index_close(idx);
        return rc;
    }
    cJSON *pol = NULL;
    int rc = RB_EXIT_OK;
    if (set) {
        if (rb_json_parse(set, strlen(set), 32, &pol, &err) != RB_OK)
            rc = rb_cli_usage("collection policy", "--set: %s", err.text);
        else if (!cJSON_IsObject(pol))
            rc = rb_cli_usage("collection policy", "--set: the policy must be a JSON object");
    } else {
        pol = cJSON_Parse(col->policy_json ? col->policy_json : "{}");
        if (!pol || !cJSON_IsObject(pol)) {
            cJSON_Delete(pol);
            pol = cJSON_CreateObject(); /* an unreadable stored policy is replaced */
        }
    }
    if (rc == RB_EXIT_OK && ingest)
        rc = policy_set_redaction(pol, "ingest", ingest);
    if (rc == RB_EXIT_OK && answers)
        rc = policy_set_redaction(pol, "answers", answers);
    char *text = rc == RB_EXIT_OK && pol ? cJSON_PrintUnformatted(pol) : NULL;
    if (rc == RB_EXIT_OK && !text)
        rc = rb_cli_fail("out of memory");
    if (rc == RB_EXIT_OK && change) {
        /* the keys ragbox reads must be readable */
        bool on = false, set_a = false, on_a = false;
#if CMD_ANSWER_HAVE_INGEST
        if (rb_ingest_policy_redacts(text, &on, &err) != RB_OK)
            rc = rb_cli_usage("collection policy", "%s", err.text);
#endif
        if (rc == RB_EXIT_OK && rb_answer_policy_redacts_answers(text, &set_a, &on_a) != RB_OK)
            rc = rb_cli_usage("collection policy",
                              "\"redaction\" must be an object of booleans \"ingest\" and "
                              "\"answers\"");
        (void)on;
        if (rc == RB_EXIT_OK && rb_index_collection_set_policy(idx, col->id, text) != RB_OK)
            rc = rb_cli_fail("%s", rb_index_errmsg(idx));
        if (rc == RB_EXIT_OK && ingest && strcmp(ingest, "on") == 0 && col->documents > 0)
            fprintf(stderr,
                    "note: %lld document(s) already in %s keep their text; re-ingest them "
                    "(ragbox ingest --force) to redact it\n",
                    (long long)col->documents, name);
    }
    if (rc == RB_EXIT_OK) {
        char *pretty = cJSON_Print(pol);
        printf("%s\n", pretty ? pretty : text);
        free(pretty);
    }
    free(text);
    cJSON_Delete(pol);
    rb_index_collection_free(col);
    rb_index_close(idx);
    return rc;
}
