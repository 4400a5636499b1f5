/* Replays every file of tests/fuzz/corpus/ingest-<format> (argv[1] names the
 * folder) through that ingest parser's fuzz entry point: seeds and the
 * regression files of past crashes must all be handled without a crash (run
 * under ASan/UBSan in CI). */
#include <dirent.h>

#include "check.h"
#include "ragbox/common.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int main(int argc, char **argv)
{
    char dir[1024];
    const char *src = getenv("RAGBOX_SOURCE");
    if (argc > 1)
        snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", src ? src : ".", argv[1]);
    else
        CHECK_SKIP("usage: replay-ingest CORPUS-FOLDER");
    DIR *d = opendir(dir);
    REQUIRE(d != NULL);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        char *data = NULL;
        size_t len = 0;
        if (rb_fs_read_file(path, 64u << 20, &data, &len) != RB_OK)
            continue;
        LLVMFuzzerTestOneInput((const unsigned char *)data, len);
        free(data);
        n++;
    }
    closedir(d);
    fprintf(stderr, "replayed %d files\n", n);
    CHECK(n >= 2);
    return check_finish();
}
