/* bench-ingest: parse + chunk throughput.
 *
 *   bench-ingest [--shared DIR] [--jobs N] [--max-pdfs N]
 *
 * 1. PDF pages per second (parse + chunk, text layer only: OCR is measured
 *    separately) over the shared PDF set (docs/pdf, docs/pdf-zh and the SEC
 *    filings in eval/financebench/docs), in process, in the fork sandbox, and
 *    with N worker processes; compared in the same run with `pdftotext`
 *    (poppler-utils) over the same files.
 * 2. Documents per second per format (sandboxed parse + chunk) over the
 *    shared documents of every other format.
 * 3. OCR: seconds per scanned page (one page, eng and chi_sim).
 * 4. Embedding: chunks per second embedded through the engine
 *    (rb_ingest_embedder_from_engine -> rb_engine_embed, batches of the
 *    embedder's max_batch) at 1 and 2 threads, over real chunks cut by the
 *    default chunker from the SEC filings with the model's own tokenizer
 *    (as the pipeline cuts them): the BERT fixture in F16 and Q8_0, and
 *    bge-small-shaped models (384 wide, 12 layers, WordPiece 30522) with
 *    random weights written to a scratch directory in F16 and Q8_0 (speed
 *    does not depend on the weights' values). --embed-chunks N (default 96;
 *    the bge-small shapes take the first --bge-chunks N, default 16),
 *    --no-embed to skip, --embed-only for this section alone. Wall-clock
 *    rates and chunks per CPU-second (the load-independent figure). */
#include <dirent.h>
#include <math.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ragbox/engine.h"
#include "ragbox/ingest.h"

#include "ggml-types.h"
#include "gguf.h"
#include "quant-block.h" /* rb_half, rb_fp32_to_fp16 */

struct list {
    char **p;
    size_t n;
};

/* CPU seconds (user + system) used by waited-for children so far. */
static double child_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static void list_add(struct list *l, const char *path)
{
    l->p = realloc(l->p, (l->n + 1) * sizeof *l->p);
    l->p[l->n++] = strdup(path);
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Files under dir (recursive) whose name ends with one of exts ("" = any). */
static void collect(struct list *l, const char *dir, const char *const *exts, const char *skip)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(path, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode)) {
            if (!skip || !strstr(skip, e->d_name))
                collect(l, path, exts, skip);
            continue;
        }
        for (const char *const *x = exts; *x; x++) {
            size_t n = strlen(e->d_name), m = strlen(*x);
            if (n >= m && strcasecmp(e->d_name + n - m, *x) == 0) {
                list_add(l, path);
                break;
            }
        }
    }
    closedir(d);
}

struct totals {
    long files, ok, pages, chunks;
    double bytes;
};

static void parse_chunk(const char *path, bool sandbox, const struct rb_ingest_limits *lim,
                        struct totals *t)
{
    struct rb_ingest_doc *d = NULL;
    struct rb_errmsg e = {{0}};
    enum rb_status st;
    if (sandbox) {
        st = rb_ingest_parse_file(path, lim, &d, &e);
    } else {
        char *buf = NULL;
        size_t len = 0;
        st = rb_fs_read_file(path, lim->max_file_bytes, &buf, &len);
        if (st == RB_OK)
            st = rb_ingest_parse_buffer(buf, len, path, RB_INGEST_FORMAT_UNKNOWN, lim, &d, &e);
        free(buf);
    }
    t->files++;
    if (st != RB_OK)
        return;
    struct rb_ingest_chunks c;
    if (rb_ingest_chunk(d, NULL, &c, &e) == RB_OK) {
        t->chunks += (long)c.n;
        rb_ingest_chunks_free(&c);
    }
    t->ok++;
    t->pages += d->n_pages;
    t->bytes += (double)d->text_len;
    rb_ingest_doc_free(d);
}

/* Runs files [i % jobs == w] in `jobs` processes; returns wall seconds. */
static double run_parallel(struct list *l, int jobs, bool sandbox,
                           const struct rb_ingest_limits *lim, struct totals *t)
{
    int64_t t0 = rb_time_mono_ns();
    int fds[64][2];
    pid_t pids[64];
    fflush(stdout);
    for (int w = 0; w < jobs; w++) {
        if (pipe(fds[w]) != 0)
            exit(1);
        pids[w] = fork();
        if (pids[w] == 0) {
            close(fds[w][0]);
            struct totals mine = {0};
            for (size_t i = (size_t)w; i < l->n; i += (size_t)jobs)
                parse_chunk(l->p[i], sandbox, lim, &mine);
            if (write(fds[w][1], &mine, sizeof mine) != sizeof mine)
                _exit(1);
            _exit(0);
        }
        close(fds[w][1]);
    }
    memset(t, 0, sizeof *t);
    for (int w = 0; w < jobs; w++) {
        struct totals part = {0};
        if (read(fds[w][0], &part, sizeof part) == sizeof part) {
            t->files += part.files, t->ok += part.ok, t->pages += part.pages;
            t->chunks += part.chunks, t->bytes += part.bytes;
        }
        close(fds[w][0]);
        waitpid(pids[w], NULL, 0);
    }
    return (double)(rb_time_mono_ns() - t0) / 1e9;
}

static double run_pdftotext(struct list *l, int jobs)
{
    int64_t t0 = rb_time_mono_ns();
    size_t next = 0;
    int running = 0;
    fflush(stdout);
    while (next < l->n || running) {
        while (running < jobs && next < l->n) {
            pid_t p = fork();
            if (p == 0) {
                int devnull = open("/dev/null", O_WRONLY);
                dup2(devnull, 2);
                execlp("pdftotext", "pdftotext", "-q", l->p[next], "/dev/null", (char *)NULL);
                _exit(127);
            }
            next++;
            running++;
        }
        if (wait(NULL) > 0)
            running--;
    }
    return (double)(rb_time_mono_ns() - t0) / 1e9;
}

/* ============================================================ embedding */

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Random weights with sane scales so the encoder computes finite numbers. */
static enum rb_status fill_random(void *user, const char *name, void *buf, uint64_t size)
{
    const uint32_t type = (uint32_t)(uintptr_t)user;
    if (type == RB_GGML_TYPE_F32) {
        float *f = buf;
        bool norm = strstr(name, "norm") != NULL;
        for (uint64_t i = 0; i < size / 4; i++)
            f[i] = norm ? 1.0f : ((int)(rnd() % 2001) - 1000) * 0.00002f;
    } else if (type == RB_GGML_TYPE_F16) {
        rb_half *h = buf;
        for (uint64_t i = 0; i < size / 2; i++)
            h[i] = rb_fp32_to_fp16(((int)(rnd() % 2001) - 1000) * 0.00005f);
    } else if (type == RB_GGML_TYPE_Q8_0) { /* blocks of fp16 scale + 32 int8 */
        uint8_t *b = buf;
        const rb_half scale = rb_fp32_to_fp16(0.002f);
        for (uint64_t i = 0; i + 34 <= size; i += 34) {
            memcpy(b + i, &scale, 2);
            for (int k = 0; k < 32; k++)
                b[i + 2 + k] = (uint8_t)(rnd() & 0xFF);
        }
    } else {
        return RB_ERR_UNSUPPORTED;
    }
    return RB_OK;
}

/* Writes a bge-small-shaped BERT (384 wide, 12 layers of 12 heads, FFN 1536,
 * 512 positions, CLS pooling) with random weights of `type` (F16 or Q8_0) and
 * the WordPiece vocabulary of the fixture `vocab_from` (the same 30522-token
 * vocabulary bge-small uses), so texts go through the real tokenizer. */
static enum rb_status write_bge_small(const char *vocab_from, uint32_t type, const char *path)
{
    struct rb_errmsg err = {{0}};
    struct rb_gguf *src = NULL;
    enum rb_status st = rb_gguf_open(vocab_from, &src, &err);
    if (st != RB_OK) {
        fprintf(stderr, "%s: %s\n", vocab_from, err.text);
        return st;
    }
    struct rb_gguf_writer *w = NULL;
    if ((st = rb_gguf_writer_create(&w)) != RB_OK) {
        rb_gguf_close(src);
        return st;
    }
    const int E = 384, L = 12, H = 12, FF = 1536, V = 30522, P = 512;
    for (size_t i = 0; i < rb_gguf_kv_count(src) && st == RB_OK; i++) {
        const struct rb_gguf_kv *kv = rb_gguf_kv_at(src, i);
        if (strncmp(kv->key, "tokenizer.", 10) == 0 || strcmp(kv->key, "bert.pooling_type") == 0)
            st = rb_gguf_writer_copy_kv(w, kv);
    }
    if (st == RB_OK)
        st = rb_gguf_writer_set_str(w, "general.architecture", "bert", 4);
    if (st == RB_OK)
        st = rb_gguf_writer_set_str(w, "general.name", "bge-small-shape-random", 22);
    static const char *const keys[] = {"bert.embedding_length", "bert.block_count",
                                       "bert.feed_forward_length", "bert.attention.head_count",
                                       "bert.context_length"};
    const uint32_t vals[] = {(uint32_t)E, (uint32_t)L, (uint32_t)FF, (uint32_t)H, (uint32_t)P};
    for (size_t i = 0; i < RB_ARRAY_LEN(keys) && st == RB_OK; i++)
        st = rb_gguf_writer_set_u32(w, keys[i], vals[i]);
    if (st == RB_OK)
        st = rb_gguf_writer_set_f32(w, "bert.attention.layer_norm_epsilon", 1e-12f);
#define ADD(name, t, a, b)                                                                         \
    do {                                                                                           \
        uint64_t ne_[2] = {(uint64_t)(a), (uint64_t)(b)};                                          \
        if (st == RB_OK)                                                                           \
            st = rb_gguf_writer_add_tensor_cb(w, name, t, (b) > 0 ? 2 : 1, ne_, fill_random,      \
                                              (void *)(uintptr_t)(t));                             \
    } while (0)
    ADD("token_embd.weight", type, E, V);
    ADD("position_embd.weight", RB_GGML_TYPE_F32, E, P);
    ADD("token_types.weight", RB_GGML_TYPE_F32, E, 2);
    ADD("token_embd_norm.weight", RB_GGML_TYPE_F32, E, 0);
    ADD("token_embd_norm.bias", RB_GGML_TYPE_F32, E, 0);
    for (int il = 0; il < L && st == RB_OK; il++) {
        char n[96];
#define T(suffix, t, a, b)                                                                         \
    do {                                                                                           \
        snprintf(n, sizeof n, "blk.%d." suffix, il);                                               \
        ADD(n, t, a, b);                                                                           \
    } while (0)
        T("attn_q.weight", type, E, E);
        T("attn_k.weight", type, E, E);
        T("attn_v.weight", type, E, E);
        T("attn_output.weight", type, E, E);
        T("ffn_up.weight", type, E, FF);
        T("ffn_down.weight", type, FF, E);
        T("attn_q.bias", RB_GGML_TYPE_F32, E, 0);
        T("attn_k.bias", RB_GGML_TYPE_F32, E, 0);
        T("attn_v.bias", RB_GGML_TYPE_F32, E, 0);
        T("attn_output.bias", RB_GGML_TYPE_F32, E, 0);
        T("ffn_up.bias", RB_GGML_TYPE_F32, FF, 0);
        T("ffn_down.bias", RB_GGML_TYPE_F32, E, 0);
        T("attn_output_norm.weight", RB_GGML_TYPE_F32, E, 0);
        T("attn_output_norm.bias", RB_GGML_TYPE_F32, E, 0);
        T("layer_output_norm.weight", RB_GGML_TYPE_F32, E, 0);
        T("layer_output_norm.bias", RB_GGML_TYPE_F32, E, 0);
#undef T
    }
#undef ADD
    if (st == RB_OK)
        st = rb_gguf_writer_write(w, path);
    if (st != RB_OK)
        fprintf(stderr, "write %s: %s\n", path, rb_gguf_writer_errmsg(w));
    rb_gguf_writer_free(w);
    rb_gguf_close(src);
    return st;
}

struct chunk_set {
    char **text;
    int32_t *tok; /* tokens of each, by the model's tokenizer */
    size_t n;
    double tokens; /* total */
};

/* Cuts the PDFs into chunks as the pipeline does (default options, budget
 * in the embedding model's tokens) until `want` chunks. */
static void collect_chunks(struct list *pdfs, const struct rb_ingest_limits *lim,
                           const struct rb_ingest_embedder *em, size_t want, struct chunk_set *cs)
{
    cs->text = calloc(want, sizeof *cs->text);
    cs->tok = calloc(want, sizeof *cs->tok);
    struct rb_ingest_chunk_options o;
    rb_ingest_chunk_options_default(&o);
    o.count = em->count_tokens;
    o.count_ctx = em->ctx;
    for (size_t i = 0; i < pdfs->n && cs->n < want; i++) {
        if (!strstr(pdfs->p[i], "financebench"))
            continue;
        char *buf = NULL;
        size_t len = 0;
        struct rb_ingest_doc *d = NULL;
        struct rb_errmsg e = {{0}};
        if (rb_fs_read_file(pdfs->p[i], lim->max_file_bytes, &buf, &len) != RB_OK)
            continue;
        enum rb_status st = rb_ingest_parse_buffer(buf, len, pdfs->p[i], RB_INGEST_FORMAT_PDF, lim,
                                                   &d, &e);
        free(buf);
        if (st != RB_OK)
            continue;
        struct rb_ingest_chunks c;
        if (rb_ingest_chunk(d, &o, &c, &e) == RB_OK) {
            /* every third chunk: a spread over the filing, not just its cover */
            for (size_t k = 0; k < c.n && cs->n < want; k += 3) {
                cs->tok[cs->n] = c.items[k].token_count;
                cs->text[cs->n++] = strdup(c.items[k].text);
                cs->tokens += c.items[k].token_count;
            }
            rb_ingest_chunks_free(&c);
        }
        rb_ingest_doc_free(d);
    }
}

static double self_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* Embeds the first n chunks through the ingest embedder; returns chunks/s
 * of wall time (0 on error), *cpu_s the CPU seconds it took. */
static double embed_rate(const char *path, int threads, const struct chunk_set *cs, size_t count,
                         int *dim, double *cpu_s)
{
    struct rb_engine_model_params mp;
    rb_engine_model_params_default(&mp);
    mp.n_threads = threads;
    struct rb_engine_model *m = NULL;
    struct rb_errmsg e = {{0}};
    if (rb_engine_model_open(path, &mp, &m, &e) != RB_OK) {
        fprintf(stderr, "  %s: %s\n", path, e.text);
        return 0;
    }
    struct rb_ingest_embedder em;
    if (rb_ingest_embedder_from_engine(m, &em, &e) != RB_OK) {
        rb_engine_model_close(m);
        return 0;
    }
    *dim = em.dim;
    float *out = malloc(em.max_batch * (size_t)em.dim * sizeof *out);
    /* warm-up batch, then the timed pass over every chunk */
    size_t warm = count < em.max_batch ? count : em.max_batch;
    bool ok = out && em.embed(em.ctx, (const char *const *)cs->text, warm, out, &e) == RB_OK;
    int64_t t0 = rb_time_mono_ns();
    double c0 = self_cpu();
    for (size_t i = 0; ok && i < count; i += em.max_batch) {
        size_t n = count - i < em.max_batch ? count - i : em.max_batch;
        ok = em.embed(em.ctx, (const char *const *)cs->text + i, n, out, &e) == RB_OK;
        for (size_t k = 0; ok && k < n * (size_t)em.dim; k++)
            ok = isfinite(out[k]);
    }
    double s = (double)(rb_time_mono_ns() - t0) / 1e9;
    *cpu_s = self_cpu() - c0;
    if (!ok)
        fprintf(stderr, "  %s: embedding failed: %s\n", path, e.text);
    free(out);
    rb_engine_model_close(m);
    return ok && s > 0 ? (double)count / s : 0;
}

static void bench_embedding(const char *shared, struct list *pdfs,
                            const struct rb_ingest_limits *lim, size_t want, size_t bge_chunks)
{
    char f16[4096], q8[4096];
    snprintf(f16, sizeof f16, "%s/models/fixtures/bert-bge-128.f16.gguf", shared);
    snprintf(q8, sizeof q8, "%s/models/fixtures/bert-bge-128.q8_0.gguf", shared);
    printf("\nEmbedding (chunks embedded through the engine, the default chunker's chunks)\n");
    struct rb_engine_model *tok = NULL;
    struct rb_errmsg e = {{0}};
    struct rb_ingest_embedder em;
    if (rb_engine_model_open(f16, NULL, &tok, &e) != RB_OK ||
        rb_ingest_embedder_from_engine(tok, &em, &e) != RB_OK) {
        printf("  skipped: %s\n", e.text);
        rb_engine_model_close(tok);
        return;
    }
    struct chunk_set cs = {0};
    collect_chunks(pdfs, lim, &em, want, &cs);
    rb_engine_model_close(tok);
    if (!cs.n) {
        printf("  skipped: no chunks (no SEC filings under %s/eval/financebench/docs)\n", shared);
        return;
    }
    printf("  %zu chunks from the SEC filings, %.0f WordPiece tokens per chunk on average "
           "(budget 384, truncated at the model's 512)\n", cs.n, cs.tokens / (double)cs.n);
    char dir[] = "/tmp/bench-ingest-XXXXXX";
    char bge16[4096] = "", bge8[4096] = "";
    if (mkdtemp(dir)) {
        snprintf(bge16, sizeof bge16, "%s/bge-small-random.f16.gguf", dir);
        snprintf(bge8, sizeof bge8, "%s/bge-small-random.q8_0.gguf", dir);
        if (write_bge_small(f16, RB_GGML_TYPE_F16, bge16) != RB_OK)
            bge16[0] = '\0';
        if (write_bge_small(f16, RB_GGML_TYPE_Q8_0, bge8) != RB_OK)
            bge8[0] = '\0';
    }
    static const char *const names[] = {"fixture bert-bge-128 F16", "fixture bert-bge-128 Q8_0",
                                        "bge-small shape (random) F16",
                                        "bge-small shape (random) Q8_0"};
    const char *paths[] = {f16, q8, bge16, bge8};
    double load[3] = {0};
    getloadavg(load, 3);
    printf("  load average %.1f: chunks per CPU-second is the load-independent figure (for 1\n"
           "  thread, the rate of an idle core)\n", load[0]);
    printf("  %-30s %4s %7s %7s %10s %10s %12s\n", "model", "dim", "threads", "chunks", "chunks/s",
           "tokens/s", "chunks/CPU-s");
    for (size_t i = 0; i < RB_ARRAY_LEN(names); i++) {
        if (!paths[i][0])
            continue;
        /* the real-shape models are ~100x the fixture's work per chunk */
        size_t count = i >= 2 && cs.n > bge_chunks ? bge_chunks : cs.n;
        double tokens = 0;
        for (size_t k = 0; k < count; k++)
            tokens += cs.tok[k];
        for (int th = 1; th <= 2; th++) {
            int dim = 0;
            double cpu = 0;
            double r = embed_rate(paths[i], th, &cs, count, &dim, &cpu);
            printf("  %-30s %4d %7d %7zu %10.2f %10.0f %12.2f\n", names[i], dim, th, count, r,
                   r * tokens / (double)count, cpu > 0 ? (double)count / cpu : 0);
            fflush(stdout);
        }
    }
    if (bge16[0])
        unlink(bge16);
    if (bge8[0])
        unlink(bge8);
    rmdir(dir);
    for (size_t i = 0; i < cs.n; i++)
        free(cs.text[i]);
    free(cs.text);
    free(cs.tok);
}

int main(int argc, char **argv)
{
    const char *shared = getenv("RAGBOX_SHARED") ? getenv("RAGBOX_SHARED") : RAGBOX_SHARED_DEFAULT;
    int jobs = 2;
    long max_pdfs = 0, embed_chunks = 96, bge_chunks = 16;
    bool embed = true, embed_only = false;
    static const struct option opts[] = {{"shared", required_argument, NULL, 's'},
                                         {"embed-chunks", required_argument, NULL, 'e'},
                                         {"no-embed", no_argument, NULL, 'n'},
                                         {"embed-only", no_argument, NULL, 'o'},
                                         {"bge-chunks", required_argument, NULL, 'b'},
                                         {"jobs", required_argument, NULL, 'j'},
                                         {"max-pdfs", required_argument, NULL, 'm'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "s:j:m:h", opts, NULL)) != -1) {
        if (c == 's')
            shared = optarg;
        else if (c == 'j')
            jobs = atoi(optarg);
        else if (c == 'm')
            max_pdfs = atol(optarg);
        else if (c == 'e')
            embed_chunks = atol(optarg) > 0 && atol(optarg) <= 100000 ? atol(optarg) : 96;
        else if (c == 'n')
            embed = false;
        else if (c == 'o')
            embed_only = true;
        else if (c == 'b')
            bge_chunks = atol(optarg) > 0 && atol(optarg) <= 100000 ? atol(optarg) : 16;
        else {
            fprintf(stderr, "usage: bench-ingest [--shared DIR] [--jobs N] [--max-pdfs N] "
                            "[--embed-chunks N] [--bge-chunks N] [--no-embed] [--embed-only]\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (jobs < 1 || jobs > 64)
        jobs = 2;
    rb_log_init("bench-ingest", RB_LOG_ERROR, false);
    struct rb_ingest_limits lim;
    rb_ingest_limits_default(&lim);
    lim.ocr = false; /* text layers only; OCR is timed below */

    /* ---------------------------------------------------------------- PDFs */
    static const char *const pdf[] = {".pdf", NULL};
    struct list pdfs = {0};
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/docs/pdf", shared);
    collect(&pdfs, dir, pdf, "encrypted broken scanned");
    snprintf(dir, sizeof dir, "%s/docs/pdf-zh", shared);
    collect(&pdfs, dir, pdf, NULL);
    snprintf(dir, sizeof dir, "%s/eval/financebench/docs", shared);
    collect(&pdfs, dir, pdf, NULL);
    /* the scanned twin has no text layer */
    for (size_t i = 0; i < pdfs.n; i++)
        if (strstr(pdfs.p[i], "-scanned")) {
            free(pdfs.p[i]);
            pdfs.p[i--] = pdfs.p[--pdfs.n];
        }
    qsort(pdfs.p, pdfs.n, sizeof *pdfs.p, cmp);
    if (max_pdfs > 0 && (size_t)max_pdfs < pdfs.n)
        pdfs.n = (size_t)max_pdfs;
    if (embed_only) {
        bench_embedding(shared, &pdfs, &lim, (size_t)embed_chunks, (size_t)bge_chunks);
        for (size_t i = 0; i < pdfs.n; i++)
            free(pdfs.p[i]);
        free(pdfs.p);
        return 0;
    }
    printf("bench-ingest: %zu PDFs from %s, %d worker processes, OCR off for the PDF set\n\n",
           pdfs.n, shared, jobs);
    struct totals t1, ts, tj;
    double c0 = child_cpu();
    double s1 = run_parallel(&pdfs, 1, false, &lim, &t1);
    double c1 = child_cpu();
    double ss = run_parallel(&pdfs, 1, true, &lim, &ts);
    double cs = child_cpu();
    double sj = run_parallel(&pdfs, jobs, true, &lim, &tj);
    double cj = child_cpu(), cjj = cj;
    /* the cost of finding tables: the in-process run again without */
    struct rb_ingest_limits nt = lim;
    nt.pdf_tables = false;
    struct totals tn;
    double sn = run_parallel(&pdfs, 1, false, &nt, &tn);
    double cn = child_cpu();
    cj = cn; /* the pdftotext rows measure from here */
    double b1 = run_pdftotext(&pdfs, 1);
    double cb1 = child_cpu();
    double bj = run_pdftotext(&pdfs, jobs);
    double cbj = child_cpu();
    double load[3] = {0};
    getloadavg(load, 3);
    printf("(machine load average %.1f: wall-clock rates are shared with other work; pages per\n"
           " CPU-second is the load-independent figure, x cores for an idle machine)\n\n", load[0]);
    printf("PDF parse+chunk (%ld pages, %ld/%ld files parsed, %ld chunks)\n", t1.pages, t1.ok,
           t1.files, t1.chunks);
    printf("  %-38s %8s %10s %12s\n", "", "pages/s", "wall s", "pages/CPU-s");
    printf("  %-38s %8.1f %10.2f %12.1f\n", "ragbox in-process, 1 process", t1.pages / s1, s1, t1.pages / (c1 - c0));
    printf("  %-38s %8.1f %10.2f %12.1f\n", "ragbox in-process, tables off", tn.pages / sn, sn,
           tn.pages / (cn - cjj));
    printf("  %-38s %8.1f %10.2f %12.1f\n", "ragbox sandboxed, 1 process", ts.pages / ss, ss, ts.pages / (cs - c1));
    char label[64];
    snprintf(label, sizeof label, "ragbox sandboxed, %d processes", jobs);
    printf("  %-38s %8.1f %10.2f %12.1f\n", label, tj.pages / sj, sj, tj.pages / (cjj - cs));
    printf("  %-38s %8.1f %10.2f %12.1f\n", "baseline pdftotext, 1 process", t1.pages / b1, b1, t1.pages / (cb1 - cj));
    snprintf(label, sizeof label, "baseline pdftotext, %d processes", jobs);
    printf("  %-38s %8.1f %10.2f %12.1f\n", label, t1.pages / bj, bj, t1.pages / (cbj - cb1));
    printf("  goal >= 50 pages/s on 2 cores: %s (wall, this run); %.0f pages/s from CPU time\n\n",
           tj.pages / sj >= 50 ? "met" : "NOT met", 2 * tj.pages / (cjj - cs));

    /* ------------------------------------------------------------ formats */
    static const struct {
        const char *name, *dir;
        const char *exts[4];
    } fmts[] = {
        {"docx", "docs/docx", {".docx", NULL}},
        {"xlsx", "docs/xlsx", {".xlsx", NULL}},
        {"pptx", "docs/pptx", {".pptx", NULL}},
        {"odt", "docs/odt", {".odt", NULL}},
        {"html", "docs/html", {".html", ".htm", NULL}},
        {"markdown", "docs/md", {".md", NULL}},
        {"text", "docs/txt", {".txt", NULL}},
        {"text-zh", "docs/txt-zh", {".txt", NULL}},
        {"csv", "docs/csv", {".csv", ".tsv", NULL}},
        {"email", "docs/eml", {".eml", NULL}},
    };
    printf("Documents per second per format (sandboxed parse + chunk, %d processes)\n", jobs);
    for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++) {
        struct list l = {0};
        snprintf(dir, sizeof dir, "%s/%s", shared, fmts[f].dir);
        collect(&l, dir, fmts[f].exts, NULL);
        if (!l.n)
            continue;
        struct totals t;
        /* e-mail attachments that are images would be OCR'd: OCR stays off here */
        double s = run_parallel(&l, jobs, true, &lim, &t);
        printf("  %-9s %4zu files %4ld ok %7.1f docs/s  %8.0f KB text/s  %6ld chunks\n",
               fmts[f].name, l.n, t.ok, t.files / s, t.bytes / 1024 / s, t.chunks);
        for (size_t i = 0; i < l.n; i++)
            free(l.p[i]);
        free(l.p);
    }

    /* ----------------------------------------------------------------- OCR */
    printf("\nOCR (one scanned page, 1 process)\n");
    static const struct {
        const char *file, *langs;
        int dpi;
    } ocr[] = {{"docs/pdf/scanned/c02-22.pdf", "eng", 200},
               {"docs/pdf-zh/zh-briefing-1-scanned.pdf", "chi_sim", 150}};
    for (size_t i = 0; i < 2; i++) {
        struct rb_ingest_limits ol;
        rb_ingest_limits_default(&ol);
        ol.ocr_languages = ocr[i].langs;
        ol.ocr_dpi = ocr[i].dpi;
        ol.ocr_max_pages = 1;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", shared, ocr[i].file);
        struct rb_ingest_doc *d = NULL;
        struct rb_errmsg e = {{0}};
        int64_t t0 = rb_time_mono_ns();
        enum rb_status st = rb_ingest_parse_file(path, &ol, &d, &e);
        double s = (double)(rb_time_mono_ns() - t0) / 1e9;
        printf("  %-40s %-8s %5.1f s/page  %s\n", ocr[i].file, ocr[i].langs, s,
               st == RB_OK ? "" : e.text);
        rb_ingest_doc_free(d);
    }
    if (embed)
        bench_embedding(shared, &pdfs, &lim, (size_t)embed_chunks, (size_t)bge_chunks);
    for (size_t i = 0; i < pdfs.n; i++)
        free(pdfs.p[i]);
    free(pdfs.p);
    return 0;
}
