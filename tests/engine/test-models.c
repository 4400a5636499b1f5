/* Every shared model (fixtures/ and real/) against the reference outputs beside it
 * (computed with llama.cpp), as ../shared/models/README.md prescribes:
 *  - generation models: for every prompt position, each of the reference's top-20
 *    tokens has our logit within TOL_REL * (logit scale) of the reference logit, where
 *    the logit scale is the max |logit| of the reference top-20 at that position
 *    (quantized kernels legitimately differ in the last bits: activation quantization
 *    and accumulation order); then greedy decoding token for token until the first
 *    step whose reference margin is below the absolute tolerance there.
 *  - embedding models: cosine(our vector, reference) >= 0.999.
 * Runs at every SIMD level this CPU has (the scalar path is the reference). */
#include "check.h"

#include <dirent.h>

#include "gguf.h"
#include "kernels.h"
#include "model.h"
#include "ragbox/common.h"

#define TOL_REL 0.04

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

static double worst_rel_seen;

static void check_model(const char *gguf_path, const char *ref_path)
{
    size_t len;
    char *txt = slurp(ref_path, &len);
    CHECK_MSG(txt != NULL, "cannot read %s", ref_path);
    if (!txt)
        return;
    cJSON *ref = NULL;
    struct rb_errmsg err = {{0}};
    CHECK(rb_json_parse(txt, len, 64, &ref, &err) == RB_OK);
    free(txt);
    struct rb_gguf *g = NULL;
    CHECK_MSG(rb_gguf_open(gguf_path, &g, &err) == RB_OK, "%s", err.text);
    struct rb__model *m = NULL;
    if (g)
        CHECK_MSG(rb__model_load(g, 2, &m, &err) == RB_OK, "%s: %s", gguf_path, err.text);
    if (!m) {
        rb_gguf_close(g);
        cJSON_Delete(ref);
        return;
    }
    const cJSON *prompts = cJSON_GetObjectItem(ref, "prompts");
    const cJSON *p;
    double worst = 0;
    int greedy_ok = 0, greedy_cmp = 0;
    cJSON_ArrayForEach(p, prompts)
    {
        const cJSON *jt = cJSON_GetObjectItem(p, "tokens");
        const int n = cJSON_GetArraySize(jt);
        int32_t *toks = calloc((size_t)n + 80, sizeof *toks);
        int i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, jt) toks[i++] = (int32_t)e->valuedouble;
        if (m->arch == RB_ARCH_BERT) {
            float *v = malloc((size_t)m->n_embd * sizeof(float));
            CHECK(rb__encode(m, toks, n, v) == RB_OK);
            const cJSON *je = cJSON_GetObjectItem(p, "embedding");
            CHECK_EQ_INT(cJSON_GetArraySize(je), m->n_embd);
            double dot = 0, na = 0, nb = 0;
            i = 0;
            cJSON_ArrayForEach(e, je)
            {
                if (i >= m->n_embd)
                    break;
                dot += v[i] * e->valuedouble;
                na += (double)v[i] * v[i];
                nb += e->valuedouble * e->valuedouble;
                i++;
            }
            const double cosv = dot / sqrt(na * nb);
            CHECK_MSG(cosv >= 0.999, "%s: cosine %.6f", gguf_path, cosv);
            if (1 - cosv > worst)
                worst = 1 - cosv;
            free(v);
            free(toks);
            continue;
        }
        const cJSON *greedy = cJSON_GetObjectItem(p, "greedy");
        const cJSON *margins = cJSON_GetObjectItem(p, "greedy_margins");
        const int ng = cJSON_GetArraySize(greedy);
        struct rb__kv *kv = NULL;
        CHECK(rb__kv_create(m, n + ng + 1, &kv) == RB_OK);
        float *logits = malloc((size_t)n * m->n_vocab * sizeof(float));
        int *pos = malloc((size_t)(n + 1) * sizeof(int));
        struct rb__kv **kvs = malloc((size_t)(n + 1) * sizeof *kvs);
        bool *want = malloc((size_t)(n + 1));
        for (int t = 0; t < n; t++) {
            pos[t] = t;
            kvs[t] = kv;
            want[t] = true;
        }
        struct rb__batch b = {n, toks, pos, kvs, want, logits};
        CHECK(rb__forward(m, &b) == RB_OK);
        const cJSON *tl = cJSON_GetObjectItem(p, "top_logits");
        int t = 0;
        const cJSON *row;
        double scale_last = 1;
        cJSON_ArrayForEach(row, tl)
        {
            double scale = 0;
            const cJSON *pr;
            cJSON_ArrayForEach(pr, row)
            {
                const double l = fabs(cJSON_GetArrayItem(pr, 1)->valuedouble);
                scale = l > scale ? l : scale;
            }
            scale_last = scale;
            cJSON_ArrayForEach(pr, row)
            {
                const int tok = (int)cJSON_GetArrayItem(pr, 0)->valuedouble;
                const double l = cJSON_GetArrayItem(pr, 1)->valuedouble;
                const double ours = logits[(size_t)t * m->n_vocab + tok];
                const double rel = fabs(ours - l) / scale;
                if (rel > worst)
                    worst = rel;
                CHECK_MSG(rel <= TOL_REL, "%s pos %d tok %d: %.5f vs ref %.5f (rel %.4f)",
                          gguf_path, t, tok, ours, l, rel);
            }
            t++;
        }
        /* greedy, free running */
        const double tol_abs = TOL_REL * scale_last * 2;
        float *last = logits + (size_t)(n - 1) * m->n_vocab;
        int cur_n = n;
        for (int s = 0; s < ng; s++) {
            int best = 0;
            for (int v = 1; v < m->n_vocab; v++)
                if (last[v] > last[best])
                    best = v;
            const int reft = (int)cJSON_GetArrayItem(greedy, s)->valuedouble;
            const double mg = cJSON_GetArrayItem(margins, s)->valuedouble;
            if (mg < tol_abs)
                break; /* near tie in the reference: either choice is correct from here */
            greedy_cmp++;
            CHECK_MSG(best == reft, "%s greedy step %d: %d vs ref %d (margin %.4f)", gguf_path,
                      s, best, reft, mg);
            if (best != reft)
                break;
            greedy_ok++;
            toks[cur_n] = best;
            pos[0] = cur_n;
            struct rb__batch b1 = {1, toks + cur_n, pos, kvs, NULL, logits};
            CHECK(rb__forward(m, &b1) == RB_OK);
            last = logits;
            cur_n++;
        }
        rb__kv_free(kv);
        free(logits);
        free(pos);
        free(kvs);
        free(want);
        free(toks);
    }
    fprintf(stderr, "  %-40s %-7s worst %s %.5f, greedy %d/%d\n", strrchr(gguf_path, '/') + 1,
            rb__simd_name(rb__simd_level()), m->arch == RB_ARCH_BERT ? "1-cos" : "rel",
            worst, greedy_ok, greedy_cmp);
    if (worst > worst_rel_seen && m->arch != RB_ARCH_BERT)
        worst_rel_seen = worst;
    rb__model_free(m);
    rb_gguf_close(g);
    cJSON_Delete(ref);
}

static void run_dir(const char *dir)
{
    DIR *d = opendir(dir);
    CHECK_MSG(d != NULL, "cannot open %s", dir);
    if (!d)
        return;
    struct dirent *de;
    int count = 0;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 6 || strcmp(de->d_name + l - 5, ".gguf") != 0)
            continue;
        char gp[4096], rp[4096];
        snprintf(gp, sizeof gp, "%s/%s", dir, de->d_name);
        snprintf(rp, sizeof rp, "%s/%.*s.ref.json", dir, (int)(l - 5), de->d_name);
        check_model(gp, rp);
        count++;
    }
    closedir(d);
    CHECK(count > 0);
}

int main(int argc, char **argv)
{
    const char *only = argc > 1 ? argv[1] : NULL;
    if (only) {
        char rp[4096];
        snprintf(rp, sizeof rp, "%.*s.ref.json", (int)(strlen(only) - 5), only);
        check_model(only, rp);
        return check_finish();
    }
    struct stat sb;
    if (stat(check_shared("models/real/stories260K.gguf"), &sb) != 0)
        CHECK_SKIP("shared models not found under $RAGBOX_SHARED");
    run_dir(check_shared("models/real"));
    run_dir(check_shared("models/fixtures"));
    fprintf(stderr, "worst relative logit error %.5f (tolerance %.3f)\n", worst_rel_seen, TOL_REL);
    return check_finish();
}
