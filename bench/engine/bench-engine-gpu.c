/* bench-engine-gpu: the GPU rows of bench/engine (issue 8). For each GGUF given (the
 * random-weight real-shape models bench-engine writes with --dir, or any model),
 * on the CUDA backend: prefill tok/s (512 tokens), single-stream decode tok/s,
 * aggregate decode tok/s with 1/8/32/64 concurrent streams through the scheduler
 * (continuous batching), and time to first token of a request that arrives while 32
 * streams are decoding. Prints llama-bench style rows; on a machine without a usable
 * GPU it says why and exits 0 (benchmarks are not tests).
 *
 *   bench-engine-gpu MODEL.gguf [MODEL.gguf ...]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend-cuda.h"
#include "ragbox/engine.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct stream {
    int pieces;
    double t_submit, t_first;
};

static bool on_piece(void *user, const char *piece, size_t len)
{
    (void)piece;
    (void)len;
    struct stream *s = user;
    if (s->pieces++ == 0)
        s->t_first = now();
    return true;
}

static void on_done(void *user, enum rb_status st, const struct rb_engine_gen_result *r)
{
    (void)user;
    (void)st;
    (void)r;
}

static char *prompt_of(int words)
{
    size_t cap = (size_t)words * 8 + 1;
    char *p = malloc(cap);
    p[0] = '\0';
    for (int i = 0; i < words; i++)
        strcat(p, i % 2 ? " report" : " annual");
    return p;
}

static void bench_model(const char *path)
{
    struct rb_errmsg err;
    struct rb_engine_model *m;
    struct rb_engine_model_params mp;
    rb_engine_model_params_default(&mp);
    mp.n_ctx = 1024;
    setenv("RAGBOX_GPU", "require", 1);
    if (rb_engine_model_open(path, &mp, &m, &err) != RB_OK) {
        printf("| %-40s | cannot run on the GPU: %s |\n", path, err.text);
        return;
    }
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    struct rb_engine_gen_params gp;
    rb_engine_gen_params_default(&gp);
    gp.temperature = 0;
    gp.ignore_eos = true;

    /* prefill 512 and single-stream decode 128 */
    char *p512 = prompt_of(512);
    struct rb_engine_gen_result r;
    gp.max_tokens = 128;
    if (rb_engine_generate(m, p512, &gp, NULL, NULL, false, &r) == RB_OK) {
        printf("| %-40s | pp%-4d | %10.1f t/s |\n", name, r.n_prompt_tokens,
               r.n_prompt_tokens / (r.prompt_ms / 1000.0));
        printf("| %-40s | tg%-4d | %10.1f t/s |\n", name, r.n_gen_tokens,
               r.n_gen_tokens / (r.gen_ms / 1000.0));
    }
    /* aggregate decode with N concurrent streams */
    const int conc[] = {1, 8, 32, 64};
    char *p32 = prompt_of(32);
    for (size_t ci = 0; ci < sizeof conc / sizeof conc[0]; ci++) {
        int n = conc[ci];
        struct rb_engine_sched *s;
        struct rb_engine_sched_params sp = {n, 256};
        if (rb_engine_sched_create(m, &sp, &s) != RB_OK)
            break;
        struct stream *st = calloc((size_t)n + 1, sizeof *st);
        gp.max_tokens = 64;
        double t0 = now();
        int ok = 1;
        for (int i = 0; i < n && ok; i++) {
            st[i].t_submit = now();
            ok = rb_engine_sched_submit(s, p32, &gp, on_piece, on_done, &st[i], NULL) == RB_OK;
        }
        if (!ok) {
            printf("| %-40s | x%-4d | KV budget refused the streams |\n", name, n);
            rb_engine_sched_free(s);
            free(st);
            continue;
        }
        /* time to first token under load: one more request once decoding is under way */
        double ttft = -1;
        int pending = 0, late_in = 0;
        while (rb_engine_sched_step(s, &pending) == RB_OK && pending > 0) {
            if (!late_in && n == 32 && st[0].pieces >= 8) {
                st[n].t_submit = now();
                late_in = rb_engine_sched_submit(s, p32, &gp, on_piece, on_done, &st[n], NULL) ==
                          RB_OK;
            }
        }
        double dt = now() - t0;
        long total = 0;
        for (int i = 0; i <= n; i++)
            total += st[i].pieces;
        if (late_in)
            ttft = st[n].t_first - st[n].t_submit;
        printf("| %-40s | x%-4d | %10.1f t/s aggregate |", name, n, total / dt);
        if (ttft >= 0)
            printf(" TTFT under load %.1f ms |", ttft * 1000);
        printf("\n");
        rb_engine_sched_free(s);
        free(st);
    }
    free(p512);
    free(p32);
    rb_engine_model_close(m);
}

int main(int argc, char **argv)
{
    struct rb_engine_gpu_status gs;
    rb_engine_gpu_probe(&gs);
    if (gs.n_devices == 0) {
        printf("bench-engine-gpu: no GPU (%s); nothing to measure\n", gs.reason);
        return 0;
    }
    printf("GPU: %s, compute capability %d.%d, %.1f GiB (%s)\n", gs.device, gs.cc_major,
           gs.cc_minor, (double)gs.total_bytes / (1 << 30), gs.library);
    if (argc < 2) {
        fprintf(stderr, "usage: bench-engine-gpu MODEL.gguf... (e.g. the models bench-engine "
                        "--dir DIR writes)\n");
        return 2;
    }
    for (int i = 1; i < argc; i++)
        bench_model(argv[i]);
    return 0;
}
