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
 * 3. OCR: seconds per scanned page (one page, eng and chi_sim). */
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ragbox/ingest.h"

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

int main(int argc, char **argv)
{
    const char *shared = getenv("RAGBOX_SHARED") ? getenv("RAGBOX_SHARED") : RAGBOX_SHARED_DEFAULT;
    int jobs = 2;
    long max_pdfs = 0;
    static const struct option opts[] = {{"shared", required_argument, NULL, 's'},
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
        else {
            fprintf(stderr, "usage: bench-ingest [--shared DIR] [--jobs N] [--max-pdfs N]\n");
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
    printf("bench-ingest: %zu PDFs from %s, %d worker processes, OCR off for the PDF set\n\n",
           pdfs.n, shared, jobs);
    struct totals t1, ts, tj;
    double c0 = child_cpu();
    double s1 = run_parallel(&pdfs, 1, false, &lim, &t1);
    double c1 = child_cpu();
    double ss = run_parallel(&pdfs, 1, true, &lim, &ts);
    double cs = child_cpu();
    double sj = run_parallel(&pdfs, jobs, true, &lim, &tj);
    double cj = child_cpu();
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
    printf("  %-38s %8.1f %10.2f %12.1f\n", "ragbox sandboxed, 1 process", ts.pages / ss, ss, ts.pages / (cs - c1));
    char label[64];
    snprintf(label, sizeof label, "ragbox sandboxed, %d processes", jobs);
    printf("  %-38s %8.1f %10.2f %12.1f\n", label, tj.pages / sj, sj, tj.pages / (cj - cs));
    printf("  %-38s %8.1f %10.2f %12.1f\n", "baseline pdftotext, 1 process", t1.pages / b1, b1, t1.pages / (cb1 - cj));
    snprintf(label, sizeof label, "baseline pdftotext, %d processes", jobs);
    printf("  %-38s %8.1f %10.2f %12.1f\n", label, t1.pages / bj, bj, t1.pages / (cbj - cb1));
    printf("  goal >= 50 pages/s on 2 cores: %s (wall, this run); %.0f pages/s from CPU time\n\n",
           tj.pages / sj >= 50 ? "met" : "NOT met", 2 * tj.pages / (cj - cs));

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
    for (size_t i = 0; i < pdfs.n; i++)
        free(pdfs.p[i]);
    free(pdfs.p);
    return 0;
}
