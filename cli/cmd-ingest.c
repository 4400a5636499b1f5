/* ragbox ingest / ingest status / ingestd: adding files and folders to a
 * collection, the ingest queue's state, and the watching daemon. */
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "ragbox/engine.h"
#include "ragbox/index.h"
#include "ragbox/ingest.h"

static void reset_getopt(void)
{
    optind = 0;
    opterr = 1;
}

/* The embedding model of [ingest] embedding_model (a GGUF path), opened once
 * per command; NULL = keyword-only indexing. */
static struct rb_engine_model *model;
static struct rb_ingest_embedder embedder;

static int open_all(struct rb_cli *cli, struct rb_index **idx, struct rb_ingest **ing)
{
    struct rb_errmsg err = {{0}};
    const char *mpath = rb_config_str(cli->config, "ingest", "embedding_model", NULL);
    if (mpath && *mpath && !model) {
        if (rb_engine_model_open(mpath, NULL, &model, &err) != RB_OK)
            return rb_cli_fail("cannot load the embedding model %s: %s", mpath, err.text);
        if (rb_ingest_embedder_from_engine(model, &embedder, &err) != RB_OK) {
            rb_engine_model_close(model);
            model = NULL;
            return rb_cli_fail("%s: %s", mpath, err.text);
        }
    }
    struct rb_index_options o = {.data_dir = cli->data_dir, .config = cli->config};
    *idx = NULL;
    *ing = NULL;
    if (rb_index_open(&o, idx, &err) != RB_OK) {
        rb_engine_model_close(model);
        model = NULL;
        return rb_cli_fail("cannot open the index in %s: %s", cli->data_dir, err.text);
    }
    /* Vectors come from the engine's embedding model when one is configured;
     * without it documents are indexed for keyword search only. */
    struct rb_ingest_options io = {.index = *idx, .config = cli->config,
                                   .embedder = model ? &embedder : NULL};
    if (rb_ingest_open(&io, ing, &err) != RB_OK) {
        rb_index_close(*idx);
        *idx = NULL;
        rb_engine_model_close(model);
        model = NULL;
        return rb_cli_fail("%s", err.text);
    }
    return RB_EXIT_OK;
}

static void progress(size_t done, size_t total, const char *path)
{
    if (!total)
        return;
    int width = 30, fill = (int)(done * (size_t)width / total);
    const char *name = path ? rb_path_basename(path) : "";
    fprintf(stderr, "\r[%.*s%*s] %zu/%zu %-40.40s", fill, "##############################",
            width - fill, "", done, total, name);
    fflush(stderr);
}

static bool under(const char *path, char **roots, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(roots[i]);
        if (!strncmp(path, roots[i], l) && (path[l] == '\0' || path[l] == '/' || path[l] == '#'))
            return true;
    }
    return false;
}

int rb_cmd_ingest(struct rb_cli *cli, int argc, char **argv)
{
    if (rb_cli_wants_help(argc, argv)) {
        printf("Usage: ragbox ingest --collection NAME [--json] [--quiet] PATH...\n"
               "\n"
               "Parses, chunks and indexes files and folders (recursively) into collection\n"
               "NAME (created if absent), and waits until they are indexed. Files already\n"
               "indexed with the same content are left alone; a file whose content moved\n"
               "to a new path is renamed without re-processing; documents under a given\n"
               "folder whose file is gone are removed.\n"
               "\n"
               "Formats: PDF (OCR for pages without text), images (OCR), DOCX, XLSX, PPTX,\n"
               "ODT, HTML, Markdown, text (UTF-8/16, GB18030...), CSV/TSV, e-mail (.eml;\n"
               "attachments become documents of their own).\n"
               "\n"
               "Options:\n"
               "  -c, --collection NAME  the collection (required)\n"
               "      --json             print a JSON summary on stdout\n"
               "  -q, --quiet            no progress bar\n"
               "\n"
               "Exit status: 0 when every file is indexed (or unchanged), 1 if any failed.\n"
               "Failed files are retried by 'ragbox ingestd' with back-off; see\n"
               "'ragbox ingest status'.\n");
        return RB_EXIT_OK;
    }
    static const struct option opts[] = {{"collection", required_argument, NULL, 'c'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {NULL, 0, NULL, 0}};
    const char *collection = NULL;
    bool json = false, quiet = false;
    int c;
    reset_getopt();
    while ((c = getopt_long(argc, argv, "c:q", opts, NULL)) != -1) {
        switch (c) {
        case 'c': collection = optarg; break;
        case 'j': json = true; break;
        case 'q': quiet = true; break;
        default: return rb_cli_usage("ingest", "unknown option");
        }
    }
    if (!collection)
        return rb_cli_usage("ingest", "--collection is required");
    if (optind >= argc)
        return rb_cli_usage("ingest", "no PATH given");
    struct rb_index *idx;
    struct rb_ingest *ing;
    int rc = open_all(cli, &idx, &ing);
    if (rc != RB_EXIT_OK)
        return rc;
    size_t n_roots = (size_t)(argc - optind), total = 0;
    char **roots = calloc(n_roots, sizeof *roots);
    int failures = 0;
    cJSON *fails = cJSON_CreateArray();
    for (size_t i = 0; roots && i < n_roots; i++) {
        const char *p = argv[optind + (int)i];
        char *abs = realpath(p, NULL);
        roots[i] = abs ? abs : rb_strdup(p);
        size_t q = 0;
        if (rb_ingest_enqueue_path(ing, collection, p, true, &q) != RB_OK) {
            fprintf(stderr, "ragbox ingest: %s\n", rb_ingest_errmsg(ing));
            cJSON *f = cJSON_CreateObject();
            cJSON_AddStringToObject(f, "path", p);
            cJSON_AddStringToObject(f, "error", rb_ingest_errmsg(ing));
            cJSON_AddItemToArray(fails, f);
            failures++;
        }
        total += q;
    }
    bool bar = !quiet && isatty(2) && total > 1;
    int64_t counts[8] = {0};
    static const char *const actions[8] = {"added", "updated", "unchanged", "renamed",
                                           "deleted", "failed", "quarantined", "retry"};
    int64_t chunks = 0, pages = 0, done = 0;
    int64_t t0 = rb_time_mono_ns();
    /* Run jobs until ours are done. Jobs of other paths that happen to be
     * due run too (they would anyway); a concurrently running ingestd may
     * take some of ours, which we then wait for. */
    for (;;) {
        struct rb_ingest_job_result r;
        int64_t next_due = 0;
        enum rb_status st = rb_ingest_run_one(ing, &r, &next_due);
        if (st == RB_ERR_NOT_FOUND) {
            rb_ingest_job_result_clear(&r);
            break;
        }
        if (st != RB_OK) {
            fprintf(stderr, "ragbox ingest: %s\n", rb_ingest_errmsg(ing));
            rb_ingest_job_result_clear(&r);
            failures++;
            break;
        }
        if (r.path && under(r.path, roots, n_roots)) {
            done++;
            for (int k = 0; k < 8; k++)
                if (r.action && !strcmp(r.action, actions[k]))
                    counts[k]++;
            chunks += r.chunks;
            pages += r.pages;
            if (r.error) {
                failures++;
                if (!bar)
                    fprintf(stderr, "ragbox ingest: %s: %s\n", r.path, r.error);
                cJSON *f = cJSON_CreateObject();
                cJSON_AddStringToObject(f, "path", r.path);
                cJSON_AddStringToObject(f, "error", r.error);
                cJSON_AddItemToArray(fails, f);
            }
            if (bar)
                progress((size_t)done, total, r.path);
        }
        rb_ingest_job_result_clear(&r);
    }
    /* Jobs of ours held by another process (ingestd) or waiting for a retry. */
    for (size_t i = 0; i < n_roots; i++) {
        int64_t pending = 0;
        for (int waited = 0; waited < 600; waited++) {
            if (rb_ingest_pending(ing, roots[i], &pending) != RB_OK || pending == 0)
                break;
            /* a retry of ours is not waited for: it counts as failed now */
            char *state = NULL, *error = NULL;
            if (rb_ingest_file_state(ing, collection, roots[i], &state, &error) == RB_OK && state &&
                strcmp(state, "indexed") != 0) {
                free(state);
                free(error);
                break;
            }
            free(state);
            free(error);
            sleep(1);
        }
    }
    if (bar)
        fputc('\n', stderr);
    double secs = (double)(rb_time_mono_ns() - t0) / 1e9;
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "collection", collection);
        cJSON_AddNumberToObject(o, "files", (double)done);
        for (int k = 0; k < 8; k++)
            cJSON_AddNumberToObject(o, actions[k], (double)counts[k]);
        cJSON_AddNumberToObject(o, "chunks", (double)chunks);
        cJSON_AddNumberToObject(o, "pages", (double)pages);
        cJSON_AddNumberToObject(o, "seconds", secs);
        cJSON_AddBoolToObject(o, "ok", failures == 0);
        cJSON_AddItemToObject(o, "failures", fails);
        fails = NULL;
        char *s = cJSON_PrintUnformatted(o);
        printf("%s\n", s ? s : "{}");
        free(s);
        cJSON_Delete(o);
    } else if (!quiet) {
        printf("%s: %lld added, %lld updated, %lld unchanged, %lld renamed, %lld deleted, "
               "%d failed; %lld chunks in %.1f s\n",
               collection, (long long)counts[0], (long long)counts[1], (long long)counts[2],
               (long long)counts[3], (long long)counts[4], failures, (long long)chunks, secs);
    }
    cJSON_Delete(fails);
    for (size_t i = 0; roots && i < n_roots; i++)
        free(roots[i]);
    free(roots);
    rb_ingest_close(ing);
    rb_index_close(idx);
    rb_engine_model_close(model);
    model = NULL;
    return failures ? RB_EXIT_FAIL : RB_EXIT_OK;
}

int rb_cmd_ingest_status(struct rb_cli *cli, int argc, char **argv)
{
    if (rb_cli_wants_help(argc, argv)) {
        printf("Usage: ragbox ingest status [--json] [--retry-quarantined]\n"
               "\n"
               "Shows the ingest queue (queued and running jobs), files tracked, failures\n"
               "(with their reasons and attempts), quarantined files and throughput of\n"
               "recent documents.\n"
               "\n"
               "Options:\n"
               "      --json               machine-readable output\n"
               "      --retry-quarantined  requeue quarantined files for another try\n");
        return RB_EXIT_OK;
    }
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"retry-quarantined", no_argument, NULL, 'r'},
                                         {NULL, 0, NULL, 0}};
    bool json = false, retry = false;
    int c;
    reset_getopt();
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'j')
            json = true;
        else if (c == 'r')
            retry = true;
        else
            return rb_cli_usage("ingest status", "unknown option");
    }
    if (optind < argc)
        return rb_cli_usage("ingest status", "unexpected argument '%s'", argv[optind]);
    struct rb_index *idx;
    struct rb_ingest *ing;
    int rc = open_all(cli, &idx, &ing);
    if (rc != RB_EXIT_OK)
        return rc;
    if (retry) {
        size_t n = 0;
        if (rb_ingest_retry_quarantined(ing, &n) != RB_OK)
            rc = rb_cli_fail("%s", rb_ingest_errmsg(ing));
        else if (!json)
            printf("requeued %zu quarantined files\n", n);
    }
    struct rb_ingest_status st;
    char *failures = NULL;
    if (rc == RB_EXIT_OK && (rb_ingest_get_status(ing, &st) != RB_OK ||
                             rb_ingest_failures_json(ing, 100, &failures) != RB_OK))
        rc = rb_cli_fail("%s", rb_ingest_errmsg(ing));
    if (rc == RB_EXIT_OK) {
        cJSON *arr = cJSON_Parse(failures);
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "files", (double)st.files);
            cJSON_AddNumberToObject(o, "queued", (double)st.queued);
            cJSON_AddNumberToObject(o, "running", (double)st.running);
            cJSON_AddNumberToObject(o, "done", (double)st.done);
            cJSON_AddNumberToObject(o, "failed", (double)st.failed);
            cJSON_AddNumberToObject(o, "quarantined", (double)st.quarantined);
            cJSON_AddNumberToObject(o, "pages_per_s", st.pages_per_s);
            cJSON_AddNumberToObject(o, "docs_per_s", st.docs_per_s);
            cJSON_AddItemToObject(o, "failures", arr ? arr : cJSON_CreateArray());
            arr = NULL;
            char *s = cJSON_PrintUnformatted(o);
            printf("%s\n", s ? s : "{}");
            free(s);
            cJSON_Delete(o);
        } else {
            printf("files tracked  %lld\nqueue          %lld queued, %lld running\n"
                   "completed      %lld jobs\nfailed         %lld (will retry)\n"
                   "quarantined    %lld\nthroughput     %.1f pages/s, %.2f documents/s "
                   "(last 100 documents)\n",
                   (long long)st.files, (long long)st.queued, (long long)st.running,
                   (long long)st.done, (long long)st.failed, (long long)st.quarantined,
                   st.pages_per_s, st.docs_per_s);
            int n = cJSON_GetArraySize(arr);
            if (n)
                printf("\nfailures:\n");
            for (int i = 0; i < n; i++) {
                cJSON *f = cJSON_GetArrayItem(arr, i);
                printf("  %-11s %s [%s] attempts %d: %s\n", rb_json_str(f, "state"),
                       rb_json_str(f, "path"), rb_json_str(f, "collection"),
                       (int)rb_json_num(f, "attempts", 0), rb_json_str(f, "error"));
            }
        }
        cJSON_Delete(arr);
    }
    free(failures);
    rb_ingest_close(ing);
    rb_index_close(idx);
    rb_engine_model_close(model);
    model = NULL;
    return rc;
}

static volatile int stop_flag;
static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

int rb_cmd_ingestd(struct rb_cli *cli, int argc, char **argv)
{
    if (rb_cli_wants_help(argc, argv)) {
        printf("Usage: ragbox ingestd\n"
               "\n"
               "The ingest daemon: watches the folders of the configuration's [ingest]\n"
               "section with inotify (and rescans them periodically for missed events and\n"
               "network file systems), and keeps their collections in step with them:\n"
               "new and changed files are parsed, chunked and indexed, removed files are\n"
               "removed, renamed files keep their chunks. The queue is durable: after a\n"
               "crash the daemon resumes where it stopped. Stops on SIGTERM/SIGINT.\n"
               "\n"
               "Configuration ([ingest]):\n"
               "  watch = DIR:COLLECTION, DIR2:COLLECTION2   folders to watch\n"
               "  rescan_s = 300             seconds between full rescans\n"
               "  max_attempts = 5           failures before a file is quarantined\n"
               "  embedding_model = PATH     GGUF embedding model (vectors; chunk budgets in\n"
               "                             its tokens); without it: keyword search only\n"
               "  chunk_tokens = 384, chunk_overlap = 48    (per collection: [ingest.NAME])\n"
               "  max_file_mb, max_text_mb, max_unzipped_mb, max_pages, timeout_s,\n"
               "  memory_mb, ocr = true, ocr_dpi = 200, ocr_languages = eng+chi_sim\n");
        return RB_EXIT_OK;
    }
    if (argc > 1)
        return rb_cli_usage("ingestd", "unexpected argument '%s'", argv[1]);
    struct rb_index *idx;
    struct rb_ingest *ing;
    int rc = open_all(cli, &idx, &ing);
    if (rc != RB_EXIT_OK)
        return rc;
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (rb_ingest_daemon_run(ing, &stop_flag) != RB_OK)
        rc = rb_cli_fail("ingestd: %s", rb_ingest_errmsg(ing));
    rb_ingest_close(ing);
    rb_index_close(idx);
    rb_engine_model_close(model);
    model = NULL;
    return rc;
}
