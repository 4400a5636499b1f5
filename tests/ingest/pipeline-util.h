/* Helpers for the pipeline tests: files, the daemon process, index queries. */
#ifndef RAGBOX_TESTS_PIPELINE_UTIL_H
#define RAGBOX_TESTS_PIPELINE_UTIL_H

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "ingest-check.h"
#include "ragbox/index.h"

static inline void write_text(const char *dir, const char *name, const char *text)
{
    char *p = rb_path_join(dir, name);
    FILE *f = fopen(p, "w");
    REQUIRE(f != NULL);
    fputs(text, f);
    fclose(f);
    free(p);
}

static inline void copy_shared(const char *rel, const char *dir, const char *name)
{
    char *data = NULL;
    size_t len = 0;
    REQUIRE(rb_fs_read_file(check_shared(rel), 1 << 26, &data, &len) == RB_OK);
    char *p = rb_path_join(dir, name);
    FILE *f = fopen(p, "w");
    REQUIRE(f && fwrite(data, 1, len, f) == len);
    fclose(f);
    free(p);
    free(data);
}

/* Starts `ragbox --data DATA --config CONF ingestd`. */
static inline pid_t start_daemon(const char *data, const char *conf)
{
    const char *bin = getenv("RAGBOX_BIN");
    REQUIRE(bin != NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        execl(bin, bin, "--data", data, "--config", conf, "--log-level", "error", "ingestd",
              (char *)NULL);
        _exit(127);
    }
    return pid;
}

static inline int stop_daemon(pid_t pid, int sig)
{
    kill(pid, sig);
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

/* Number of top-level documents of a collection whose source is `source`
 * and, when text is given, whose chunks contain it. */
static inline int64_t doc_with(struct rb_index *idx, const char *coll, const char *source,
                               const char *text, int64_t *id)
{
    struct rb_index_collection *c = NULL;
    if (rb_index_collection_get(idx, coll, &c) != RB_OK)
        return 0;
    struct rb_index_document *d = NULL;
    int64_t found = 0;
    if (rb_index_document_find(idx, c->id, source, &d) == RB_OK) {
        if (id)
            *id = d->id;
        if (!text)
            found = 1;
        struct rb_index_chunk **ch = NULL;
        size_t n = 0;
        if (text && rb_index_document_chunks(idx, d->id, &ch, &n) == RB_OK) {
            for (size_t i = 0; i < n; i++)
                if (strstr(ch[i]->text, text))
                    found = 1;
            rb_index_chunk_list_free(ch, n);
        }
        rb_index_document_free(d);
    }
    rb_index_collection_free(c);
    return found;
}

#endif
