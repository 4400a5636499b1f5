/* A tiny test harness: CHECK macros that count failures and keep going,
 * helpers to find the shared inputs and a scratch directory. Each test file
 * is its own executable; main() returns check_finish(). Exit 77 = skipped. */
#ifndef RAGBOX_TESTS_CHECK_H
#define RAGBOX_TESTS_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int check_failures;
static int check_count;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        check_count++;                                                                             \
        if (!(cond)) {                                                                             \
            check_failures++;                                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                       \
    do {                                                                                           \
        check_count++;                                                                             \
        if (!(cond)) {                                                                             \
            check_failures++;                                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                            \
        check_count++;                                                                             \
        if (check_a_ != check_b_) {                                                                \
            check_failures++;                                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", __FILE__, __LINE__,  \
                    #a, #b, check_a_, check_b_);                                                   \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *check_a_ = (a), *check_b_ = (b);                                               \
        check_count++;                                                                             \
        if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {                           \
            check_failures++;                                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (\"%s\" != \"%s\")\n", __FILE__,        \
                    __LINE__, #a, #b, check_a_ ? check_a_ : "(null)",                              \
                    check_b_ ? check_b_ : "(null)");                                               \
        }                                                                                          \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                                      \
    do {                                                                                           \
        double check_a_ = (double)(a), check_b_ = (double)(b);                                     \
        check_count++;                                                                             \
        if (!(fabs(check_a_ - check_b_) <= (tol))) {                                               \
            check_failures++;                                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s ~= %s (%g vs %g, tol %g)\n", __FILE__,        \
                    __LINE__, #a, #b, check_a_, check_b_, (double)(tol));                          \
        }                                                                                          \
    } while (0)

/* Fatal: stop the test (e.g. a setup step whose failure makes the rest meaningless). */
#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        check_count++;                                                                             \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond);             \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static inline int check_finish(void)
{
    if (check_count == 0) {
        fprintf(stderr, "no checks ran\n");
        return 1;
    }
    fprintf(stderr, "%d checks, %d failed\n", check_count, check_failures);
    return check_failures ? 1 : 0;
}

/* Path under the shared inputs ($RAGBOX_SHARED, default ../shared). Static buffer. */
static inline const char *check_shared(const char *rel)
{
    static char buf[4][4096];
    static int slot;
    const char *root = getenv("RAGBOX_SHARED");
    if (!root)
        root = "../shared";
    char *out = buf[slot++ & 3];
    snprintf(out, 4096, "%s/%s", root, rel);
    return out;
}

/* A fresh, empty scratch directory for this test ($RAGBOX_TEST_TMP/<name>). */
static inline const char *check_tmpdir(const char *name)
{
    static char buf[4][4096];
    static int slot;
    const char *root = getenv("RAGBOX_TEST_TMP");
    char *out = buf[slot++ & 3];
    if (!root)
        root = "/tmp/ragbox-test";
    snprintf(out, 4096, "%s/%s", root, name);
    char cmd[8300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", out, out);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot create %s\n", out);
        exit(1);
    }
    return out;
}

/* Skip (exit 77) with a reason. */
#define CHECK_SKIP(...)                                                                            \
    do {                                                                                           \
        fprintf(stderr, "SKIP: " __VA_ARGS__);                                                     \
        fputc('\n', stderr);                                                                       \
        exit(77);                                                                                  \
    } while (0)

#endif
