/* libFuzzer target for one ingest parser (RB_FUZZ_FORMAT, a format name such
 * as "pdf" or "pipe" for the sandbox's result format). Parses in process
 * with OCR off and small limits, then chunks the result. */
#include <string.h>

#include "ragbox/ingest.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static const char *const names[] = {"unknown", "pdf", "image", "docx", "xlsx", "pptx",
                                        "odt", "html", "markdown", "text", "csv", "email", "epub", "rtf"};
    struct rb_errmsg err = {{0}};
    struct rb_ingest_doc *doc = NULL;
    if (strcmp(RB_FUZZ_FORMAT, "pipe") == 0) {
        if (rb_ingest_doc_deserialize(data, size, &doc, &err) != RB_OK)
            return 0;
    } else {
        enum rb_ingest_format f = RB_INGEST_FORMAT_UNKNOWN;
        for (int i = 0; i < RB_INGEST_FORMAT_COUNT; i++)
            if (strcmp(names[i], RB_FUZZ_FORMAT) == 0)
                f = (enum rb_ingest_format)i;
        struct rb_ingest_limits lim;
        rb_ingest_limits_default(&lim);
        lim.ocr = false;
        lim.max_text_bytes = 4u << 20;
        lim.max_unzipped_bytes = 16u << 20;
        lim.max_pages = 50;
        lim.max_blocks = 100000;
        if (rb_ingest_parse_buffer(data, size, "fuzz", f, &lim, &doc, &err) != RB_OK)
            return 0;
    }
    struct rb_ingest_chunk_options o;
    rb_ingest_chunk_options_default(&o);
    o.max_tokens = 64;
    struct rb_ingest_chunks chunks;
    if (rb_ingest_chunk(doc, &o, &chunks, &err) == RB_OK)
        rb_ingest_chunks_free(&chunks);
    rb_ingest_doc_free(doc);
    return 0;
}
