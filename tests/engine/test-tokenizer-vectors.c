/* Tokenizer test vectors: every *.gguf.inp / *.gguf.out pair in
 * testvectors/tokenizer (strings separated by "\n__ggml_vocab_test__\n", one
 * line of ids per string, no BOS) and domain.inp -> domain-<vocab>.out must be
 * reproduced exactly. Also times the domain set. */
#include <stdint.h>
#include <time.h>

#include "check.h"
#include "ragbox/engine.h"

#define SEP "\n__ggml_vocab_test__\n"

struct strs {
    char **s;
    size_t *len;
    size_t n;
};

static void split_inputs(char *data, size_t len, struct strs *out)
{
    out->s = NULL;
    out->len = NULL;
    out->n = 0;
    size_t sep = strlen(SEP), pos = 0;
    while (pos <= len) {
        char *m = memmem(data + pos, len - pos, SEP, sep);
        size_t end = m ? (size_t)(m - data) : len;
        if (!m && end == pos)
            break; /* trailing separator */
        out->s = realloc(out->s, (out->n + 1) * sizeof *out->s);
        out->len = realloc(out->len, (out->n + 1) * sizeof *out->len);
        out->s[out->n] = data + pos;
        out->len[out->n] = end - pos;
        out->n++;
        if (!m)
            break;
        pos = end + sep;
    }
}

/* Parses line `line` (0-based) of ids. Returns count, ids in *ids (static buffer). */
static size_t parse_line(const char *text, size_t idx, int32_t *ids, size_t max)
{
    const char *p = text;
    for (size_t i = 0; i < idx && p; i++) {
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    if (!p)
        return (size_t)-1;
    size_t n = 0;
    while (*p && *p != '\n' && n < max) {
        while (*p == ' ')
            p++;
        if (*p == '\n' || !*p)
            break;
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p)
            break;
        ids[n++] = (int32_t)v;
        p = end;
    }
    return n;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int run_pair(const char *vocab, const char *inp, const char *outp, double *ms)
{
    char path[512];
    snprintf(path, sizeof path, "testvectors/tokenizer/%s", vocab);
    struct rb_engine_tokenizer *tok = NULL;
    struct rb_errmsg err = {{0}};
    enum rb_status st = rb_engine_tokenizer_load(check_shared(path), &tok, &err);
    CHECK_MSG(st == RB_OK, "%s: %s", vocab, err.text);
    if (st != RB_OK)
        return 0;
    char *in = NULL, *out = NULL;
    size_t in_len = 0, out_len = 0;
    snprintf(path, sizeof path, "testvectors/tokenizer/%s", inp);
    REQUIRE(rb_fs_read_file(check_shared(path), 1 << 24, &in, &in_len) == RB_OK);
    snprintf(path, sizeof path, "testvectors/tokenizer/%s", outp);
    REQUIRE(rb_fs_read_file(check_shared(path), 1 << 24, &out, &out_len) == RB_OK);
    struct strs s;
    split_inputs(in, in_len, &s);
    CHECK(s.n >= 20);
    int bad = 0;
    int64_t t0 = mono_ns();
    static int32_t want[65536];
    for (size_t i = 0; i < s.n; i++) {
        int32_t *ids = NULL;
        size_t n = 0;
        st = rb_engine_tokenize(tok, s.s[i], s.len[i], 0, &ids, &n);
        CHECK(st == RB_OK);
        size_t nw = parse_line(out, i, want, 65536);
        bool same = nw == n && (n == 0 || memcmp(ids, want, n * sizeof *ids) == 0);
        check_count++;
        if (!same) {
            check_failures++;
            if (bad++ < 6) {
                fprintf(stderr, "%s #%zu '%.*s':\n  got ", vocab, i, (int)RB_MIN(s.len[i], 60),
                        s.s[i]);
                for (size_t k = 0; k < n && k < 40; k++)
                    fprintf(stderr, " %d", ids[k]);
                fprintf(stderr, "\n  want");
                for (size_t k = 0; k < nw && k < 40; k++)
                    fprintf(stderr, " %d", want[k]);
                fputc('\n', stderr);
            }
        }
        free(ids);
    }
    *ms = (double)(mono_ns() - t0) / 1e6;
    fprintf(stderr, "%-32s %-20s %zu strings, %d mismatches, %.2f ms\n", vocab, inp, s.n, bad,
            *ms);
    free(s.s);
    free(s.len);
    free(in);
    free(out);
    rb_engine_tokenizer_free(tok);
    return 1;
}

int main(void)
{
    if (!rb_fs_is_dir(check_shared("testvectors/tokenizer")))
        CHECK_SKIP("no testvectors");
    static const char *const vocabs[] = {"bert-bge", "deepseek-llm", "gpt-2", "llama-bpe",
                                         "llama-spm", "phi-3",        "qwen2"};
    double ms;
    for (size_t i = 0; i < RB_ARRAY_LEN(vocabs); i++) {
        char v[128], in[128], out[128];
        snprintf(v, sizeof v, "ggml-vocab-%s.gguf", vocabs[i]);
        snprintf(in, sizeof in, "ggml-vocab-%s.gguf.inp", vocabs[i]);
        snprintf(out, sizeof out, "ggml-vocab-%s.gguf.out", vocabs[i]);
        run_pair(v, in, out, &ms);
    }
    static const char *const domain[] = {"bert-bge", "llama-bpe", "llama-spm", "qwen2"};
    for (size_t i = 0; i < RB_ARRAY_LEN(domain); i++) {
        char v[128], out[128];
        snprintf(v, sizeof v, "ggml-vocab-%s.gguf", domain[i]);
        snprintf(out, sizeof out, "domain-%s.out", domain[i]);
        run_pair(v, "domain.inp", out, &ms);
        CHECK_MSG(ms < 200, "domain set took %.1f ms", ms);
    }
    return check_finish();
}
