/* Generation through the public API on the real stories260K model: greedy output equals
 * the reference story (API and `ragbox generate` CLI), seeded sampling is reproducible,
 * stop strings (also across token boundaries), length / context limits, the streaming
 * emitter's UTF-8 boundaries, the scheduler (batched == single-stream, token for token;
 * requests joining between steps; cancel), embeddings through the API, and clean errors
 * for bad inputs. */
#include "check.h"

#include "ragbox/engine.h"
#include "sampler.h"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    if (b)
        b[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return b;
}

struct collect {
    struct rb_buf text;
    int pieces;
    bool bad_utf8;
    int stop_after; /* return false after this many pieces (0: never) */
    enum rb_status done_status;
    struct rb_engine_gen_result done;
    bool done_called;
};

static bool on_piece(void *user, const char *p, size_t n)
{
    struct collect *c = user;
    if (!rb_utf8_valid(p, n))
        c->bad_utf8 = true;
    if (rb_buf_append(&c->text, p, n) != RB_OK)
        return false;
    c->pieces++;
    return !(c->stop_after && c->pieces >= c->stop_after);
}

static void on_done(void *user, enum rb_status st, const struct rb_engine_gen_result *r)
{
    struct collect *c = user;
    c->done_status = st;
    c->done = *r;
    c->done_called = true;
}

static char *gen(struct rb_engine_model *m, const char *prompt, const struct rb_engine_gen_params *p,
                 struct rb_engine_gen_result *res)
{
    struct collect c = {0};
    rb_buf_init(&c.text, 0);
    struct rb_engine_gen_result r;
    enum rb_status st = rb_engine_generate(m, prompt, p, on_piece, &c, true, &r);
    CHECK_MSG(st == RB_OK, "generate: %s", rb_engine_model_errmsg(m));
    CHECK(!c.bad_utf8);
    /* the streamed pieces and the returned text agree */
    CHECK(r.text && strcmp(r.text, c.text.data ? c.text.data : "") == 0);
    if (res)
        *res = r;
    rb_buf_free(&c.text);
    return r.text;
}

static struct collect *emit_c;
static bool emit_cb(void *u, const char *p, size_t n)
{
    (void)u;
    return on_piece(emit_c, p, n);
}

static void test_emitter(void)
{
    struct collect c = {0};
    rb_buf_init(&c.text, 0);
    emit_c = &c;
    struct rb__emitter e;
    const char *stops[] = {"END", "xyz"};
    CHECK(rb__emitter_init(&e, stops, 2, emit_cb, NULL, true) == RB_OK);
    CHECK(rb__emitter_push(&e, "ab\xe4\xbd", 4) == RB_OK); /* half a CJK character */
    CHECK_EQ_INT(c.text.len, 2);
    CHECK(rb__emitter_push(&e, "\xa0 E", 3) == RB_OK); /* completes it; 'E' may start END */
    CHECK_STR(c.text.data, "ab\xe4\xbd\xa0 ");
    CHECK(rb__emitter_push(&e, "N", 1) == RB_OK);
    CHECK_EQ_INT(c.text.len, 6);
    CHECK(rb__emitter_push(&e, "Dtail", 5) == RB_OK); /* stop string across three pushes */
    CHECK(e.stopped);
    CHECK_STR(c.text.data, "ab\xe4\xbd\xa0 ");
    CHECK(!c.bad_utf8);
    rb__emitter_free(&e);
    rb_buf_free(&c.text);
    /* flush replaces a dangling partial character */
    struct collect c2 = {0};
    rb_buf_init(&c2.text, 0);
    emit_c = &c2;
    CHECK(rb__emitter_init(&e, NULL, 0, emit_cb, NULL, false) == RB_OK);
    CHECK(rb__emitter_push(&e, "ok\xe4", 3) == RB_OK);
    CHECK(rb__emitter_flush(&e) == RB_OK);
    CHECK_STR(c2.text.data, "ok\xef\xbf\xbd");
    rb__emitter_free(&e);
    rb_buf_free(&c2.text);
}

static void test_sampler(void)
{
    /* greedy picks the max; penalties demote seen tokens; top-k 1 == greedy */
    float logits[8] = {0.1f, 2.0f, 1.9f, -1, 0, 0.5f, 1.0f, 0.2f};
    struct rb_engine_gen_params p;
    rb_engine_gen_params_default(&p);
    p.temperature = 0;
    struct rb__sampler s;
    CHECK(rb__sampler_init(&s, &p, 8, 64) == RB_OK);
    CHECK_EQ_INT(rb__sampler_sample(&s, logits), 1);
    rb__sampler_free(&s);
    p.repeat_penalty = 1.5f;
    CHECK(rb__sampler_init(&s, &p, 8, 64) == RB_OK);
    rb__sampler_accept(&s, 1);
    CHECK_EQ_INT(rb__sampler_sample(&s, logits), 2);
    rb__sampler_free(&s);
    p.repeat_penalty = 1.0f;
    p.temperature = 1.0f;
    p.top_k = 1;
    CHECK(rb__sampler_init(&s, &p, 8, 64) == RB_OK);
    for (int i = 0; i < 20; i++)
        CHECK_EQ_INT(rb__sampler_sample(&s, logits), 1);
    rb__sampler_free(&s);
    /* distribution: with top_k 2, top_p/min_p off, temperature 1, the frequencies of
     * tokens 1 and 2 follow softmax(2.0, 1.9) */
    p.top_k = 2;
    p.top_p = 1.0f;
    p.min_p = 0;
    p.seed = 7;
    CHECK(rb__sampler_init(&s, &p, 8, 64) == RB_OK);
    int cnt[8] = {0};
    for (int i = 0; i < 20000; i++)
        cnt[rb__sampler_sample(&s, logits)]++;
    const double p1 = 1.0 / (1.0 + exp(-0.1));
    CHECK_EQ_INT(cnt[1] + cnt[2], 20000);
    CHECK_MSG(fabs(cnt[1] / 20000.0 - p1) < 0.015, "p1 %.4f vs %.4f", cnt[1] / 20000.0, p1);
    rb__sampler_free(&s);
}

int main(void)
{
    test_emitter();
    test_sampler();

    const char *path = check_shared("models/real/stories260K.gguf");
    struct stat sb;
    if (stat(path, &sb) != 0)
        CHECK_SKIP("%s not found", path);
    size_t len;
    char *reftxt = slurp(check_shared("models/real/stories260K.ref.json"), &len);
    cJSON *ref = NULL;
    struct rb_errmsg err = {{0}};
    CHECK(reftxt && rb_json_parse(reftxt, len, 64, &ref, &err) == RB_OK);
    free(reftxt);
    const cJSON *p0 = cJSON_GetArrayItem(cJSON_GetObjectItem(ref, "prompts"), 0);
    const char *ref_text = rb_json_str(p0, "greedy_text");
    CHECK(ref_text != NULL);

    struct rb_engine_model_params mp = {2, 256};
    struct rb_engine_model *m = NULL;
    CHECK(rb_engine_model_open(path, &mp, &m, &err) == RB_OK);
    if (!m)
        return check_finish();
    CHECK_EQ_INT(rb_engine_model_kind(m), RB_ENGINE_MODEL_GENERATE);
    CHECK_STR(rb_engine_model_arch(m), "llama");

    /* greedy == reference story */
    struct rb_engine_gen_params gp;
    rb_engine_gen_params_default(&gp);
    gp.temperature = 0;
    gp.max_tokens = 64;
    struct rb_engine_gen_result r;
    char *t = gen(m, "Once upon a time", &gp, &r);
    CHECK_STR(t, ref_text);
    CHECK_EQ_INT(r.n_gen_tokens, 64);
    CHECK_EQ_INT(r.finish, RB_ENGINE_FINISH_LENGTH);
    CHECK_EQ_INT(r.n_prompt_tokens, 5);

    /* stop strings: one inside a token sequence, one spanning token boundaries */
    const char *stop1[] = {"named"};
    gp.stop = stop1;
    gp.n_stop = 1;
    char *ts = gen(m, "Once upon a time", &gp, &r);
    CHECK_EQ_INT(r.finish, RB_ENGINE_FINISH_STOP);
    CHECK(strncmp(ref_text, ts, strlen(ts)) == 0);
    CHECK_STR(ts, ", there was a little girl ");
    free(ts);
    const char *stop2[] = {"nothing-like-this", "rl na"}; /* "gi|rl| na|med" */
    gp.stop = stop2;
    gp.n_stop = 2;
    ts = gen(m, "Once upon a time", &gp, &r);
    CHECK_EQ_INT(r.finish, RB_ENGINE_FINISH_STOP);
    CHECK_STR(ts, ", there was a little gi");
    free(ts);
    gp.stop = NULL;
    gp.n_stop = 0;

    /* seeded sampling is reproducible; a different seed gives a different story */
    struct rb_engine_gen_params sp;
    rb_engine_gen_params_default(&sp);
    sp.temperature = 1.0f;
    sp.max_tokens = 48;
    sp.seed = 1234;
    char *s1 = gen(m, "Once upon a time", &sp, NULL);
    char *s2 = gen(m, "Once upon a time", &sp, NULL);
    CHECK_STR(s1, s2);
    sp.seed = 999;
    char *s3 = gen(m, "Once upon a time", &sp, NULL);
    CHECK(s1 && s3 && strcmp(s1, s3) != 0);

    /* context full: 16 positions */
    struct rb_engine_model *small = NULL;
    struct rb_engine_model_params mps = {1, 16};
    CHECK(rb_engine_model_open(path, &mps, &small, &err) == RB_OK);
    if (small) {
        gp.max_tokens = 0;
        char *tc = gen(small, "Once upon a time", &gp, &r);
        CHECK_EQ_INT(r.finish, RB_ENGINE_FINISH_CONTEXT);
        CHECK_EQ_INT(r.n_prompt_tokens + r.n_gen_tokens, 16);
        free(tc);
        char longp[400] = "";
        for (int i = 0; i < 20; i++)
            strcat(longp, "Once upon ");
        CHECK(rb_engine_generate(small, longp, &gp, NULL, NULL, false, &r) ==
              RB_ERR_CONTEXT_FULL);
        rb_engine_model_close(small);
    }
    gp.max_tokens = 64;

    /* callback cancel */
    struct collect cc = {0};
    rb_buf_init(&cc.text, 0);
    cc.stop_after = 3;
    CHECK(rb_engine_generate(m, "Once upon a time", &gp, on_piece, &cc, false, &r) == RB_OK);
    CHECK_EQ_INT(r.finish, RB_ENGINE_FINISH_CANCELLED);
    CHECK_EQ_INT(cc.pieces, 3);
    rb_buf_free(&cc.text);

    /* scheduler: 5 requests, max 3 active, two joining later; each equals its single-stream
     * output exactly */
    const char *prompts[5] = {"Once upon a time", "Lily and Ben", "The cat", "Once upon a time",
                              "One day"};
    struct rb_engine_gen_params ps[5];
    char *single[5];
    for (int i = 0; i < 5; i++) {
        rb_engine_gen_params_default(&ps[i]);
        ps[i].max_tokens = 20 + 5 * i;
        ps[i].temperature = i % 2 ? 0.9f : 0.0f;
        ps[i].seed = 100 + i;
        single[i] = gen(m, prompts[i], &ps[i], NULL);
    }
    struct rb_engine_sched *sch = NULL;
    struct rb_engine_sched_params schp = {3, 128};
    CHECK(rb_engine_sched_create(m, &schp, &sch) == RB_OK);
    struct collect col[6];
    memset(col, 0, sizeof col);
    for (int i = 0; i < 6; i++)
        rb_buf_init(&col[i].text, 0);
    uint64_t ids[6];
    for (int i = 0; i < 3; i++)
        CHECK(rb_engine_sched_submit(sch, prompts[i], &ps[i], on_piece, on_done, &col[i],
                                     &ids[i]) == RB_OK);
    int pending = 0;
    for (int k = 0; k < 4; k++)
        CHECK(rb_engine_sched_step(sch, &pending) == RB_OK);
    CHECK_EQ_INT(pending, 3);
    for (int i = 3; i < 5; i++)
        CHECK(rb_engine_sched_submit(sch, prompts[i], &ps[i], on_piece, on_done, &col[i],
                                     &ids[i]) == RB_OK);
    /* a sixth request, cancelled while queued or active */
    CHECK(rb_engine_sched_submit(sch, prompts[0], &ps[0], on_piece, on_done, &col[5], &ids[5]) ==
          RB_OK);
    CHECK(rb_engine_sched_cancel(sch, ids[5]) == RB_OK);
    CHECK(rb_engine_sched_run(sch) == RB_OK);
    CHECK_EQ_INT(rb_engine_sched_wait(sch, 0), 0);
    for (int i = 0; i < 5; i++) {
        CHECK(col[i].done_called);
        CHECK_EQ_INT(col[i].done_status, RB_OK);
        CHECK_MSG(single[i] && col[i].text.data && strcmp(single[i], col[i].text.data) == 0,
                  "request %d batched '%s' vs single '%s'", i, col[i].text.data, single[i]);
    }
    CHECK(col[5].done_called);
    CHECK_EQ_INT(col[5].done.finish, RB_ENGINE_FINISH_CANCELLED);
    CHECK_EQ_INT(rb_engine_sched_cancel(sch, ids[0]), RB_ERR_NOT_FOUND); /* finished */
    rb_engine_sched_free(sch);
    for (int i = 0; i < 6; i++)
        rb_buf_free(&col[i].text);
    for (int i = 0; i < 5; i++)
        free(single[i]);

    /* the CLI writes the reference story */
    const char *bin = getenv("RAGBOX_BIN");
    if (bin && access(bin, X_OK) == 0) {
        char cmd[8192];
        snprintf(cmd, sizeof cmd,
                 "'%s' generate -m '%s' -p 'Once upon a time' --temp 0 --raw -n 64 -t 1", bin,
                 path);
        FILE *f = popen(cmd, "r");
        char out[4096] = "";
        size_t got = f ? fread(out, 1, sizeof out - 1, f) : 0;
        out[got] = 0;
        CHECK(f && pclose(f) == 0);
        CHECK_MSG(strncmp(out, ref_text, strlen(ref_text)) == 0, "CLI wrote '%s'", out);
    }

    /* embeddings through the API: an embedding model vs its reference; generation models
     * refuse embed and vice versa */
    float v[128];
    const char *texts[1] = {"x"};
    CHECK(rb_engine_embed(m, texts, 1, v) == RB_ERR_UNSUPPORTED);
    rb_engine_model_close(m);
    const char *bert = check_shared("models/fixtures/bert-bge-128.f16.gguf");
    struct rb_engine_model *bm = NULL;
    CHECK(rb_engine_model_open(bert, NULL, &bm, &err) == RB_OK);
    if (bm) {
        char *bj = slurp(check_shared("models/fixtures/bert-bge-128.f16.ref.json"), &len);
        cJSON *bref = NULL;
        CHECK(bj && rb_json_parse(bj, len, 64, &bref, &err) == RB_OK);
        free(bj);
        const cJSON *bp;
        int n = 0;
        cJSON_ArrayForEach(bp, cJSON_GetObjectItem(bref, "prompts"))
        {
            const char *txt = rb_json_str(bp, "text");
            CHECK_EQ_INT(rb_engine_model_dim(bm), 128);
            CHECK(rb_engine_embed(bm, &txt, 1, v) == RB_OK);
            double dot = 0;
            int i = 0;
            const cJSON *e;
            cJSON_ArrayForEach(e, cJSON_GetObjectItem(bp, "embedding")) dot += v[i++] * e->valuedouble;
            CHECK_MSG(dot >= 0.999, "embedding %d cosine %.5f", n, dot);
            n++;
        }
        CHECK(n > 0);
        cJSON_Delete(bref);
        struct rb_engine_gen_params g2;
        rb_engine_gen_params_default(&g2);
        CHECK(rb_engine_generate(bm, "x", &g2, NULL, NULL, false, NULL) == RB_ERR_UNSUPPORTED);
        rb_engine_model_close(bm);
    }

    /* hostile files: truncated model, not a model, unsupported architecture */
    const char *dir = check_tmpdir("generate");
    char trunc[4096];
    snprintf(trunc, sizeof trunc, "%s/trunc.gguf", dir);
    char *whole = slurp(path, &len);
    FILE *f = fopen(trunc, "wb");
    CHECK(f && whole && fwrite(whole, 1, len / 2, f) == len / 2);
    if (f)
        fclose(f);
    free(whole);
    struct rb_engine_model *bad = NULL;
    CHECK(rb_engine_model_open(trunc, NULL, &bad, &err) != RB_OK);
    CHECK(bad == NULL);
    CHECK(err.text[0] != 0);
    CHECK(rb_engine_model_open("/nonexistent.gguf", NULL, &bad, &err) != RB_OK);

    free(t);
    free(s1);
    free(s2);
    free(s3);
    cJSON_Delete(ref);
    return check_finish();
}
