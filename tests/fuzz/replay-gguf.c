/* Replays every file in a directory (default: tests/fuzz/corpus/gguf) through
 * the GGUF fuzz entry point: the regression files of past crashes and the seed
 * corpus must all be handled without a crash (run under ASan/UBSan in CI). */
#include <dirent.h>

#include "check.h"
#include "ragbox/common.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int main(int argc, char **argv)
{
    char dir[1024];
    const char *src = getenv("RAGBOX_SOURCE");
    if (argc > 1)
        snprintf(dir, sizeof dir, "%s", argv[1]);
    else
        snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/gguf", src ? src : ".");
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
    CHECK(n >= 4);
    return check_finish();
}
