/* Crash safety: the real `ragbox ingestd` is killed with SIGKILL at random
 * moments, many times, while the watched folder changes (files added,
 * rewritten, deleted, renamed). After a final restart the index must hold
 * exactly the folder's content: one document per file, with the file's
 * SHA-256, indexed, no leftovers, and SQLite/FTS5/FAISS consistent. */
#include <dirent.h>
#include <time.h>

#include "pipeline-util.h"

static const char *const pool[] = {
    "docs/txt-zh/news-01028-gb18030.txt", "docs/md/README.md",
    "docs/csv/semicolon-delimited.csv",   "docs/docx/fake_table.docx",
    "docs/html/fake-html.html",           "docs/pdf/text/pdflatex-outline.pdf",
    "docs/eml/family-day.eml",            "docs/md/zh/大模型推理优化策略.md",
    "docs/odt/fake.odt",                  "docs/pptx/fake-power-point-table.pptx",
};
static const char *const exts[] = {".txt", ".md", ".csv", ".docx", ".html",
                                   ".pdf", ".eml", ".md", ".odt", ".pptx"};

struct file {
    char name[64];
    bool used;
};
static struct file files[64];
static int next_name;

static void add_file(const char *dir)
{
    for (int i = 0; i < 64; i++)
        if (!files[i].used) {
            int k = rand() % (int)RB_ARRAY_LEN(pool);
            snprintf(files[i].name, sizeof files[i].name, "f%03d%s", next_name++, exts[k]);
            copy_shared(pool[k], dir, files[i].name);
            files[i].used = true;
            return;
        }
}

static int pick(void)
{
    int n = 0, idx[64];
    for (int i = 0; i < 64; i++)
        if (files[i].used)
            idx[n++] = i;
    return n ? idx[rand() % n] : -1;
}

static void mutate(const char *dir)
{
    int ops = 1 + rand() % 3;
    for (int o = 0; o < ops; o++) {
        int r = rand() % 4, i = pick();
        char *p = i >= 0 ? rb_path_join(dir, files[i].name) : NULL;
        if (r == 0 || i < 0) {
            add_file(dir);
        } else if (r == 1) { /* rewrite with other content of the same type */
            char text[128];
            snprintf(text, sizeof text, "Revision %d of %s with marker word zebra%d.\n", rand(),
                     files[i].name, rand() % 1000);
            if (strstr(files[i].name, ".txt") || strstr(files[i].name, ".md"))
                write_text(dir, files[i].name, text);
            else
                add_file(dir);
        } else if (r == 2) {
            REQUIRE(unlink(p) == 0);
            files[i].used = false;
        } else {
            char name[64];
            const char *dot = strrchr(files[i].name, '.');
            snprintf(name, sizeof name, "r%03d%s", next_name++, dot ? dot : "");
            char *q = rb_path_join(dir, name);
            REQUIRE(rename(p, q) == 0);
            free(q);
            rb_strlcpy(files[i].name, name, sizeof files[i].name);
        }
        free(p);
    }
}

/* True when the index holds exactly the folder's files, each with its hash. */
static bool converged(const char *data, const char *dir, bool report)
{
    struct rb_index_options o = {.data_dir = data};
    struct rb_index *idx = NULL;
    struct rb_errmsg e = {{0}};
    if (rb_index_open(&o, &idx, &e) != RB_OK)
        return false;
    bool ok = true;
    struct rb_index_collection *c = NULL;
    if (rb_index_collection_get(idx, "crash", &c) != RB_OK) {
        rb_index_close(idx);
        return false;
    }
    struct rb_index_document **docs = NULL;
    size_t n = 0, top = 0;
    if (rb_index_document_list(idx, c->id, 0, 0, &docs, &n) != RB_OK)
        ok = false;
    int want = 0;
    for (int i = 0; i < 64; i++)
        want += files[i].used;
    for (size_t i = 0; ok && i < n; i++) {
        if (docs[i]->parent_id)
            continue;
        top++;
        char hex[RB_SHA256_HEX_LEN + 1];
        struct stat sb;
        bool exists = lstat(docs[i]->source, &sb) == 0;
        bool same = exists && rb_sha256_file(docs[i]->source, hex) == RB_OK && docs[i]->sha256 &&
                    !strcmp(hex, docs[i]->sha256);
        if (!same || docs[i]->state != RB_INDEX_DOC_INDEXED || docs[i]->chunk_count == 0) {
            if (report)
                fprintf(stderr, "document %s: exists %d, hash %s, state %d, chunks %lld\n",
                        docs[i]->source, exists, same ? "same" : "differs", docs[i]->state,
                        (long long)docs[i]->chunk_count);
            ok = false;
        }
    }
    if (ok && (int)top != want) {
        if (report)
            fprintf(stderr, "%zu documents for %d files\n", top, want);
        ok = false;
    }
    if (ok && report) {
        char **problems = NULL;
        size_t np = 0;
        CHECK(rb_index_verify(idx, &problems, &np) == RB_OK);
        for (size_t i = 0; i < np; i++)
            fprintf(stderr, "verify: %s\n", problems[i]);
        CHECK_EQ_INT(np, 0);
        rb_index_problems_free(problems, np);
    }
    rb_index_document_list_free(docs, n);
    rb_index_collection_free(c);
    rb_index_close(idx);
    (void)dir;
    return ok;
}

int main(void)
{
    if (!getenv("RAGBOX_BIN"))
        CHECK_SKIP("RAGBOX_BIN not set");
    unsigned seed = getenv("RAGBOX_SEED") ? (unsigned)strtoul(getenv("RAGBOX_SEED"), NULL, 10)
                                          : (unsigned)time(NULL);
    fprintf(stderr, "seed %u (set RAGBOX_SEED to replay)\n", seed);
    srand(seed);
    const char *root = check_tmpdir("crash");
    char *data = rb_path_join(root, "data"), *dir = rb_path_join(root, "watched");
    char *conf = rb_path_join(root, "ragbox.conf");
    REQUIRE(rb_fs_mkdirs(dir, 0755) == RB_OK && rb_fs_mkdirs(data, 0755) == RB_OK);
    char *text = rb_asprintf("[ingest]\nwatch = %s:crash\nrescan_s = 2\n", dir);
    REQUIRE(rb_fs_write_atomic(conf, text, strlen(text)) == RB_OK);
    free(text);
    for (int i = 0; i < 6; i++)
        add_file(dir);
    int kills = 0;
    int64_t t0 = rb_time_mono_ns();
    /* ~25 s of kill -9 at random points (during start-up, parsing, index
     * writes, queue updates) */
    while ((rb_time_mono_ns() - t0) < 25000000000LL) {
        pid_t pid = start_daemon(data, conf);
        usleep((useconds_t)(rand() % 700) * 1000);
        if (rand() % 2)
            mutate(dir);
        usleep((useconds_t)(rand() % 300) * 1000);
        int status = stop_daemon(pid, SIGKILL);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        kills++;
        if (rand() % 2)
            mutate(dir);
    }
    fprintf(stderr, "%d kills\n", kills);
    CHECK(kills >= 15);
    /* final run: must converge */
    pid_t pid = start_daemon(data, conf);
    bool ok = false;
    for (int t = 0; t < 300 && !ok; t++) {
        usleep(100 * 1000);
        ok = converged(data, dir, false);
    }
    stop_daemon(pid, SIGTERM);
    CHECK(converged(data, dir, true));
    CHECK_MSG(ok, "the index did not converge to the folder's content");
    free(data), free(dir), free(conf);
    return check_finish();
}
