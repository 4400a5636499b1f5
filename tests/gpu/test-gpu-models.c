/* GPU suite, whole models: for every generation model in the shared set, the CUDA
 * backend's logits against the CPU backend's for the same batch (within 4% of the
 * logit scale, the engine's tolerance against llama.cpp: fp16 GEMM tiles and a
 * different summation order), greedy generation
 * token for token (the real stories260K model writes the same story on both), CUDA
 * graph replay equal to eager decoding, and the scheduler's batched decode equal to
 * single-stream output on the GPU. Exits 77 (skipped) without a usable GPU. */
#include <dirent.h>

#include "backend-cuda.h"
#include "backend.h"
#include "check.h"
#include "model.h"
#include "ragbox/engine.h"

static bool on_piece(void *user, const char *piece, size_t len)
{
    return rb_buf_append(user, piece, len) == RB_OK;
}

static void on_done(void *user, enum rb_status status, const struct rb_engine_gen_result *res)
{
    (void)user;
    (void)res;
    CHECK_EQ_INT(status, RB_OK);
}

static char *gen(struct rb_engine_model *m, const char *prompt, int n)
{
    struct rb_engine_gen_params p;
    rb_engine_gen_params_default(&p);
    p.max_tokens = n;
    p.temperature = 0;
    struct rb_engine_gen_result r;
    if (rb_engine_generate(m, prompt, &p, NULL, NULL, true, &r) != RB_OK)
        return NULL;
    return r.text;
}

/* Logits of one prompt through both backends on the same loaded weights. */
static void check_logits(const char *path)
{
    struct rb_gguf *g;
    struct rb_errmsg err;
    REQUIRE(rb_gguf_open(path, &g, &err) == RB_OK);
    struct rb__model *m;
    REQUIRE(rb__model_load(g, 2, &m, &err) == RB_OK);
    const struct rb_backend_i *cpu = rb__backend_cpu(), *gpu = rb__backend_cuda();
    enum rb_status st = gpu->init(m);
    CHECK_MSG(st == RB_OK, "%s: cuda init: %s", path, rb_status_str(st));
    if (st != RB_OK) {
        rb__model_free(m);
        rb_gguf_close(g);
        return;
    }
    if (m->arch == RB_ARCH_BERT) { /* embeddings: cosine >= 0.999 as the reference criterion */
        int32_t t[64];
        for (int i = 0; i < 64; i++)
            t[i] = (int32_t)((i * 997 + 101) % m->n_vocab);
        float *ec = malloc(sizeof(float) * m->n_embd), *eg = malloc(sizeof(float) * m->n_embd);
        CHECK(cpu->encode(m, t, 64, ec) == RB_OK);
        CHECK(gpu->encode(m, t, 64, eg) == RB_OK);
        double dot = 0;
        for (int i = 0; i < m->n_embd; i++)
            dot += (double)ec[i] * eg[i];
        CHECK_MSG(dot >= 0.999, "%s: encode cosine %.6f", rb_path_basename(path), dot);
        free(ec);
        free(eg);
        gpu->release(m);
        rb__model_free(m);
        rb_gguf_close(g);
        return;
    }
    enum { N = 24 };
    int32_t toks[N];
    int pos[N];
    bool want[N];
    for (int i = 0; i < N; i++) {
        toks[i] = (int32_t)((i * 37 + 11) % m->n_vocab);
        pos[i] = i;
        want[i] = true;
    }
    struct rb__kv *kc, *kg;
    REQUIRE(cpu->kv_create(m, 64, &kc) == RB_OK);
    REQUIRE(gpu->kv_create(m, 64, &kg) == RB_OK);
    float *lc = malloc(sizeof(float) * N * m->n_vocab), *lg = malloc(sizeof(float) * N * m->n_vocab);
    struct rb__kv *kvc[N], *kvg[N];
    for (int i = 0; i < N; i++) {
        kvc[i] = kc;
        kvg[i] = kg;
    }
    /* prefill of N tokens (GEMM path), then one decode token (matvec + graph capture) */
    struct rb__batch bc = {N, toks, pos, kvc, want, lc}, bg = {N, toks, pos, kvg, want, lg};
    CHECK(cpu->forward(m, &bc) == RB_OK);
    CHECK(gpu->forward(m, &bg) == RB_OK);
    double scale = 0, worst = 0;
    for (size_t i = 0; i < (size_t)N * m->n_vocab; i++) {
        scale = fmax(scale, fabs(lc[i]));
        worst = fmax(worst, fabs(lc[i] - lg[i]));
    }
    /* fp16 GEMM prefill vs the CPU's Q8 activations: the engine's tolerance against
     * llama.cpp (4% of the logit scale), as in tests/engine/test-cuda-emu.c */
    CHECK_MSG(worst <= 0.04 * scale, "%s prefill: max |cpu-gpu| %g (scale %g)",
              rb_path_basename(path), worst, scale);
    for (int step = 0; step < 3; step++) { /* eager, then captured, then replayed */
        int32_t t1 = toks[step];
        int p1 = N + step;
        bool w1 = true;
        struct rb__batch dc = {1, &t1, &p1, &kc, &w1, lc}, dg = {1, &t1, &p1, &kg, &w1, lg};
        CHECK(cpu->forward(m, &dc) == RB_OK);
        CHECK(gpu->forward(m, &dg) == RB_OK);
        worst = 0;
        for (int i = 0; i < m->n_vocab; i++)
            worst = fmax(worst, fabs(lc[i] - lg[i]));
        CHECK_MSG(worst <= 0.04 * scale, "%s decode step %d: %g", rb_path_basename(path),
                  step, worst);
    }
    cpu->kv_free(kc);
    gpu->kv_free(kg);
    gpu->release(m);
    free(lc);
    free(lg);
    rb__model_free(m);
    rb_gguf_close(g);
}

int main(void)
{
    int n = 0;
    const char *why = NULL;
    if (!rb__cuda_backend(&n, &why) || n == 0)
        CHECK_SKIP("no GPU: %s", why && *why ? why : "unknown reason");

    DIR *d = opendir(check_shared("models/fixtures"));
    REQUIRE(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".gguf") == 0) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", check_shared("models/fixtures"), e->d_name);
            check_logits(path);
        }
    }
    closedir(d);
    check_logits(check_shared("models/real/stories260K.gguf"));

    /* greedy, token for token: the real model's story on GPU == on CPU */
    const char *story = check_shared("models/real/stories260K.gguf");
    struct rb_errmsg err;
    struct rb_engine_model *mc, *mg;
    setenv("RAGBOX_GPU", "off", 1);
    REQUIRE(rb_engine_model_open(story, NULL, &mc, &err) == RB_OK);
    setenv("RAGBOX_GPU", "require", 1);
    REQUIRE(rb_engine_model_open(story, NULL, &mg, &err) == RB_OK);
    CHECK_STR(rb_engine_model_backend(mg), "cuda");
    CHECK_STR(rb_engine_model_backend(mc), "cpu");
    char *tc = gen(mc, "Once upon a time", 64), *tg = gen(mg, "Once upon a time", 64);
    CHECK_MSG(tc && tg && strcmp(tc, tg) == 0, "greedy: cpu '%s' vs gpu '%s'", tc, tg);
    /* graphs off gives the same text as graphs on */
    setenv("RAGBOX_CUDA_NO_GRAPHS", "1", 1);
    char *tn = gen(mg, "Once upon a time", 64);
    unsetenv("RAGBOX_CUDA_NO_GRAPHS");
    CHECK_MSG(tn && tg && strcmp(tn, tg) == 0, "graphs: '%s' vs '%s'", tn, tg);

    /* batched decode on the GPU == single stream on the GPU */
    const char *prompts[4] = {"Once upon a time", "Lily and Ben", "The cat", "One day"};
    char *single[4];
    for (int i = 0; i < 4; i++)
        single[i] = gen(mg, prompts[i], 24);
    struct rb_engine_sched *sch;
    struct rb_engine_sched_params sp = {4, 128};
    REQUIRE(rb_engine_sched_create(mg, &sp, &sch) == RB_OK);
    struct rb_buf out[4];
    for (int i = 0; i < 4; i++)
        rb_buf_init(&out[i], 0);
    for (int i = 0; i < 4; i++) {
        struct rb_engine_gen_params p;
        rb_engine_gen_params_default(&p);
        p.max_tokens = 24;
        p.temperature = 0;
        CHECK(rb_engine_sched_submit(sch, prompts[i], &p, on_piece, on_done, &out[i], NULL) ==
              RB_OK);
    }
    CHECK(rb_engine_sched_run(sch) == RB_OK);
    rb_engine_sched_free(sch);
    for (int i = 0; i < 4; i++) {
        CHECK_MSG(single[i] && out[i].data && strcmp(single[i], out[i].data) == 0,
                  "batched '%s' vs single '%s'", out[i].data, single[i]);
        free(single[i]);
        rb_buf_free(&out[i]);
    }
    free(tc);
    free(tg);
    free(tn);
    rb_engine_model_close(mc);
    rb_engine_model_close(mg);
    return check_finish();
}
